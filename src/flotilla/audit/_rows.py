"""Example rows for findings, made JSON-ready (times as ISO 8601 UTC)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flotilla.audit._data import AuditData

__all__ = ["examples", "histogram", "iso", "jsonable"]

MAX_EXAMPLES = 5


def iso(epoch: float | None) -> str | None:
    """Epoch seconds as an ISO 8601 UTC string."""
    if epoch is None or (isinstance(epoch, float) and math.isnan(epoch)):
        return None
    return dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).isoformat()


def jsonable(value: Any) -> Any:
    """A value that orjson and the HTML report can show."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)


def examples(
    data: AuditData, columns: dict[str, str], where: str, order: str = ""
) -> list[dict[str, Any]]:
    """Up to five rows of the ``rows`` view matching ``where``; ``columns`` maps out -> SQL."""
    wanted = dict(columns)
    if data.entity:
        wanted = {data.entity: "__ent", **wanted}
    select = ", ".join(f'{sql} AS "c{i}"' for i, sql in enumerate(wanted.values()))
    order_by = f" ORDER BY {order}" if order else ""
    table = data.conn.sql(
        f"SELECT {select} FROM rows WHERE {where}{order_by} LIMIT {MAX_EXAMPLES}"
    ).to_arrow_table()
    out = []
    for row in table.to_pylist():
        item = {}
        for i, name in enumerate(wanted):
            value = row[f"c{i}"]
            item[name] = (
                iso(value)
                if wanted[name] in ("__t",) or name.endswith("written_at")
                else jsonable(value)
            )
        out.append(item)
    return out


def histogram(values: NDArray[np.float64], bins: int = 24) -> dict[str, Any]:
    """Chart data: a histogram of ``values`` (nan dropped) with an edge and a marker at zero.

    Zero (the event time) is always a bin edge, so late writes never share a bar with
    timely ones.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return {}
    lo, hi = float(finite.min()), float(finite.max())
    if lo < 0 < hi:
        left = max(1, min(bins - 1, round(bins * -lo / (hi - lo))))
        edges = np.r_[np.linspace(lo, 0.0, left + 1)[:-1], np.linspace(0.0, hi, bins - left + 1)]
    else:
        edges = np.histogram_bin_edges(finite, bins=bins)
    counts, edges = np.histogram(finite, bins=edges)
    return {"kind": "histogram", "edges": edges.tolist(), "counts": counts.tolist(), "marker": 0.0}
