"""Turning Arrow columns into the arrays the drift statistics need, with nulls counted."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from flotilla.errors import ConfigError

ColumnKind = Literal["numeric", "categorical", "null"]
TOP_CATEGORIES = 1000
OTHER = "__other__"


def column_kind(dtype: pa.DataType) -> ColumnKind | None:
    """``numeric``, ``categorical``, ``null`` (all values null) or ``None`` (unsupported)."""
    if pa.types.is_null(dtype):
        return "null"
    if pa.types.is_dictionary(dtype):
        return column_kind(dtype.value_type)
    if (
        pa.types.is_integer(dtype)
        or pa.types.is_floating(dtype)
        or pa.types.is_decimal(dtype)
        or pa.types.is_temporal(dtype)
    ):
        return "numeric"
    if pa.types.is_boolean(dtype) or pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return "categorical"
    return None


@dataclass(frozen=True)
class NumericColumn:
    """Finite values of a numeric column and how many rows were null, NaN or infinite."""

    values: NDArray[np.float64]
    n_rows: int
    n_null: int


@dataclass(frozen=True)
class CategoricalColumn:
    """Counts per category of a categorical column (nulls excluded)."""

    counts: dict[str, int]
    n_rows: int
    n_null: int


def numeric_column(col: pa.ChunkedArray | pa.Array) -> NumericColumn:
    """Finite float64 values of ``col``; nulls, NaN and ±inf are counted as nulls."""
    dtype = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    if pa.types.is_dictionary(col.type):
        col = col.cast(dtype)
    if pa.types.is_null(dtype):
        return NumericColumn(np.empty(0), len(col), len(col))
    if pa.types.is_temporal(dtype):
        col = _temporal_to_seconds(col)
    arr = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    finite = np.isfinite(arr)
    return NumericColumn(arr[finite], len(arr), int((~finite).sum()))


def _temporal_to_seconds(col: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    if pa.types.is_timestamp(col.type):
        ts = pc.cast(col, pa.timestamp("us", tz=col.type.tz))
        return pc.divide(pc.cast(pc.cast(ts, pa.int64()), pa.float64()), 1e6)
    if pa.types.is_date(col.type):
        days = pc.cast(pc.cast(col, pa.date32()), pa.int32())
        return pc.multiply(pc.cast(days, pa.float64()), 86400.0)
    return pc.cast(pc.cast(col, pa.int64()), pa.float64())  # time / duration: raw units


def categorical_column(col: pa.ChunkedArray | pa.Array) -> CategoricalColumn:
    """Counts per category of ``col`` (values as strings), with the null count."""
    if pa.types.is_dictionary(col.type):
        col = col.cast(col.type.value_type)
    n_null = col.null_count
    if pa.types.is_null(col.type):
        return CategoricalColumn({}, len(col), len(col))
    vc = pc.value_counts(pc.cast(col, pa.string()) if not pa.types.is_string(col.type) else col)
    counts: dict[str, int] = {}
    for value, count in zip(
        vc.field("values").to_pylist(), vc.field("counts").to_pylist(), strict=True
    ):
        if value is not None:
            counts[str(value)] = int(count)
    return CategoricalColumn(counts, len(col), n_null)


def aligned_counts(
    reference: dict[str, int],
    current: dict[str, int],
    *,
    top: int = TOP_CATEGORIES,
    min_expected: float = 5.0,
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """Counts of both samples over the same categories, sorted by name.

    With more than ``top`` categories in the union (high cardinality), work stays bounded:
    reference categories are kept in order of reference frequency, at most ``top`` of them
    and only while the current sample expects at least ``min_expected`` rows of them
    (reference share × n_current, Cochran's rule for chi-square); everything else, in both
    samples, is pooled into ``__other__``. Choosing by the reference alone keeps the choice
    independent of the current data, so the pooling adds no selection bias.
    """
    keys = sorted(reference.keys() | current.keys())
    if len(keys) <= top:
        return (
            keys,
            np.asarray([reference.get(k, 0) for k in keys], np.int64),
            np.asarray([current.get(k, 0) for k in keys], np.int64),
        )
    n_ref = max(sum(reference.values()), 1)
    n_cur = sum(current.values())
    ranked = sorted(reference.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    kept = sorted(k for k, c in ranked if c / n_ref * n_cur >= min_expected and k != OTHER)
    kept_set = set(kept)
    ref = [reference.get(k, 0) for k in kept]
    cur = [current.get(k, 0) for k in kept]
    ref.append(sum(v for k, v in reference.items() if k not in kept_set))
    cur.append(sum(v for k, v in current.items() if k not in kept_set))
    return [*kept, OTHER], np.asarray(ref, np.int64), np.asarray(cur, np.int64)


def check_columns(
    reference: pa.Schema, current: pa.Schema, fields: Sequence[str] | None
) -> list[tuple[str, ColumnKind]]:
    """The fields to compare and their kind; raises ConfigError listing every problem."""
    names = list(reference.names) if fields is None else list(fields)
    problems: list[str] = []
    out: list[tuple[str, ColumnKind]] = []
    missing_ref = [n for n in names if n not in reference.names]
    missing_cur = [n for n in names if n not in current.names]
    if missing_ref:
        problems.append(f"missing from the reference: {', '.join(missing_ref)}")
    if missing_cur:
        problems.append(f"missing from the current data: {', '.join(missing_cur)}")
    for name in names:
        if name in missing_ref or name in missing_cur:
            continue
        ref_t, cur_t = reference.field(name).type, current.field(name).type
        ref_k, cur_k = column_kind(ref_t), column_kind(cur_t)
        if ref_k is None or cur_k is None:
            bad = ref_t if ref_k is None else cur_t
            problems.append(f"{name!r} has the unsupported type {bad}")
        elif "null" not in (ref_k, cur_k) and ref_k != cur_k:
            problems.append(f"{name!r} is {ref_t} in the reference but {cur_t} in the current data")
        else:
            out.append((name, ref_k if ref_k != "null" else cur_k))
    if problems:
        raise ConfigError(
            "The reference and current data cannot be compared: "
            + "; ".join(problems)
            + ". Fix the files or pick comparable fields with --fields."
        )
    return out


def read_table(path: Path, *, columns: Iterable[str] | None = None) -> pa.Table:
    """Read a Parquet or CSV file into an Arrow table; clear ConfigError when it cannot."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ConfigError(f"The data file {str(path)!r} does not exist or is not a file.")
    cols = None if columns is None else list(columns)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(path, columns=cols)
        if suffix in (".csv", ".tsv"):
            opts = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
            conv = pacsv.ConvertOptions(include_columns=cols) if cols else None
            return pacsv.read_csv(path, parse_options=opts, convert_options=conv)
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(f"The data file {str(path)!r} cannot be read: {exc}") from exc
    raise ConfigError(
        f"The data file {str(path)!r} must be Parquet (.parquet) or CSV (.csv, .tsv). "
        f"Got {suffix or 'no extension'!r} instead."
    )


def as_table(data: Any) -> pa.Table:
    """An Arrow table from a table, a record batch or a mapping of column arrays."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, dict):
        return pa.table(data)
    raise ConfigError(
        f"Drift needs a pyarrow Table (or a profile dict as reference). Got {type(data).__name__}."
    )
