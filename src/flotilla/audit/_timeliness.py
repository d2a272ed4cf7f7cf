"""Time checks: values written after the event (future values) and time leakage across a split."""

from __future__ import annotations

from typing import Any

import numpy as np

from flotilla.audit._data import AuditData, Feature
from flotilla.audit._report import Finding
from flotilla.audit._rows import examples, histogram, iso
from flotilla.audit._source import quote
from flotilla.errors import AuditError

__all__ = ["check_future_values", "check_split"]

TRAIN_NAMES = ("train", "training")
SPLIT_TIME_ERROR_SHARE = 0.01


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def check_future_values(data: AuditData) -> list[Finding]:
    """``future_value``: any row whose feature value was written after its event time."""
    timed = [f for f in data.features if f.written]
    if not timed:
        return []
    parts = []
    for i, f in enumerate(timed):
        w, lag = f.written, f"({f.written} - __t)"
        parts += [
            f"count(*) FILTER (WHERE {w} > __t) AS n{i}",
            f"count(*) FILTER (WHERE {w} IS NOT NULL AND __t IS NOT NULL) AS m{i}",
            f"approx_quantile({lag}, [0.5, 0.95]) FILTER (WHERE {w} > __t) AS q{i}",
            f"max({lag}) AS x{i}",
        ]
    row = data.conn.sql(f"SELECT {', '.join(parts)} FROM rows").fetchall()[0]
    findings = []
    for i, f in enumerate(timed):
        late, known, quants, worst = row[4 * i : 4 * i + 4]
        if late:
            findings.append(_future_finding(data, f, late, known, quants, worst))
    return findings


def _future_finding(
    data: AuditData, f: Feature, late: int, known: int, quants: Any, worst: Any
) -> Finding:
    share = late / known
    p50, p95 = (quants or [None, None])[:2]
    idx = data.features.index(f)
    lags = data.sample.get(f"w{idx}", np.array([])) - data.sample["__t"]
    return Finding(
        check="future_value",
        feature=f.name,
        severity="error",
        message=(
            f"{late:,} of {known:,} rows ({share:.2%}) hold a value of '{f.name}' that was "
            "written after the row's event time: at prediction time the model could not have "
            "seen it."
        ),
        evidence={
            "share": share,
            "count": late,
            "rows_with_write_time": known,
            "lag_p50_s": _seconds(p50),
            "lag_p95_s": _seconds(p95),
            "lag_max_s": _seconds(worst),
        },
        examples=examples(
            data,
            {
                data.event_time: "__t",
                f.name: quote(f.name),
                f"{f.name}__written_at": f.written or "NULL",
            },
            f"{f.written} > __t",
            order=f"{f.written} - __t DESC",
        ),
        advice=(
            "Build the training set with a point-in-time join (flotilla features join) so each "
            "row only sees values written at or before its event time, or drop the feature if "
            "it is only known after the event."
        ),
        chart=histogram(lags),
    )


def _split_sides(data: AuditData) -> tuple[list[str], list[str]]:
    values = [
        str(r[0])
        for r in data.conn.sql(
            "SELECT DISTINCT __split FROM rows WHERE __split IS NOT NULL ORDER BY 1"
        ).fetchall()
    ]
    train = [v for v in values if v.strip().lower() in TRAIN_NAMES]
    if not train:
        raise AuditError(
            f"The split column '{data.split}' must mark training rows with 'train'. "
            f"Got the values {values[:10]} instead."
        )
    return train, [v for v in values if v not in train]


def check_split(data: AuditData) -> list[Finding]:
    """``split_time_leakage`` and ``split_entity_overlap`` for each evaluation split."""
    if data.split is None:
        return []
    train, others = _split_sides(data)
    in_train = "__split IN (" + ", ".join("'" + v.replace("'", "''") + "'" for v in train) + ")"
    newest = data.conn.sql(f"SELECT max(__t) FROM rows WHERE {in_train}").fetchall()[0][0]
    findings: list[Finding] = []
    for side in others:
        lit = "'" + side.replace("'", "''") + "'"
        total, older, oldest = data.conn.sql(
            f"SELECT count(*), count(*) FILTER (WHERE __t < {newest!r}), min(__t) "
            f"FROM rows WHERE __split = {lit}"
        ).fetchall()[0]
        if newest is not None and older:
            findings.append(_time_finding(data, side, total, older, oldest, newest))
        if data.entity:
            finding = _entity_finding(data, side, lit, in_train)
            if finding:
                findings.append(finding)
    return findings


def _time_finding(
    data: AuditData, side: str, total: int, older: int, oldest: float, newest: float
) -> Finding:
    share = older / total
    return Finding(
        check="split_time_leakage",
        feature=str(data.split),
        severity="error" if share > SPLIT_TIME_ERROR_SHARE else "warning",
        message=(
            f"{older:,} of {total:,} '{side}' rows ({share:.2%}) are older than the newest "
            "training row: the model is trained on the future of the rows it is tested on, "
            "so the test score overstates what it will do in production."
        ),
        evidence={
            "share": share,
            "count": older,
            "rows": total,
            "overlap_start": iso(oldest),
            "overlap_end": iso(newest),
            "overlap_s": round(newest - oldest, 3),
        },
        examples=examples(
            data,
            {data.event_time: "__t", str(data.split): "__split"},
            f"__split = '{side.replace(chr(39), chr(39) * 2)}' AND __t < {newest!r}",
            "__t",
        ),
        advice=(
            "Split by time: train on rows before a cut-off and test on rows after it "
            f"(here every '{side}' row should be later than {iso(newest)})."
        ),
        chart={
            "kind": "bars",
            "labels": ["older than newest train row", "later"],
            "values": [older, total - older],
            "unit": "rows",
        },
    )


def _entity_finding(data: AuditData, side: str, lit: str, in_train: str) -> Finding | None:
    shared, side_rows, side_entities = data.conn.sql(
        f"WITH tr AS (SELECT DISTINCT __ent FROM rows WHERE {in_train}) "
        "SELECT count(DISTINCT r.__ent) FILTER (WHERE tr.__ent IS NOT NULL), "
        "count(*) FILTER (WHERE tr.__ent IS NOT NULL), count(DISTINCT r.__ent) "
        f"FROM rows r LEFT JOIN tr ON r.__ent = tr.__ent WHERE r.__split = {lit}"
    ).fetchall()[0]
    if not shared:
        return None
    return Finding(
        check="split_entity_overlap",
        feature=str(data.split),
        severity="warning",
        message=(
            f"{shared:,} of {side_entities:,} entities in '{side}' ({side_rows:,} rows) also "
            "appear in training: the model can memorise them, so the test score overstates how "
            "it does on entities it has never seen."
        ),
        evidence={
            "entities": shared,
            "share_of_entities": shared / side_entities,
            "rows": side_rows,
        },
        examples=examples(
            data,
            {data.event_time: "__t", str(data.split): "__split"},
            f"__split = {lit} AND __ent IN (SELECT __ent FROM rows WHERE {in_train})",
            "__ent",
        ),
        advice=(
            "If the model will score entities it has not seen, split by entity (all rows of an "
            "entity on one side); if it scores known entities, this is expected."
        ),
        chart={
            "kind": "bars",
            "labels": ["entities also in train", "new entities"],
            "values": [shared, side_entities - shared],
            "unit": "entities",
        },
    )
