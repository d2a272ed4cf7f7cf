"""Reference profiles: streamed summaries of a training file, and drift against them.

A profile is a JSON-safe dict (stored per version with ``registry.set_profile``)::

    {"format": "flotilla-profile/1", "source": "train.parquet", "rows": 120000,
     "fields": {"age": {"kind": "numeric", "role": "input", "type": "double", "count": ...,
                        "null_count": ..., "null_rate": ..., "min": ..., "max": ..., "mean": ...,
                        "std": ..., "quantiles": [1001 values], "histogram": {...},
                        "sample_size": ...},
                "plan": {"kind": "categorical", "frequencies": {"basic": 80000, ...},
                         "other_count": 0, ...}}}

Counts, nulls, min, max, mean and the (population) standard deviation are exact. Quantiles and
the histogram come from a uniform sample of up to 100,000 values per field (exact below that).
Categories keep the 1,000 most frequent with their counts; the rest is ``other_count``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from flotilla.errors import ConfigError
from flotilla.monitoring._accumulators import CategoricalAccumulator, NumericAccumulator
from flotilla.monitoring._columns import OTHER, column_kind
from flotilla.signature import Signature

__all__ = ["PROFILE_FORMAT", "build_profile", "is_profile", "profile_to_reference"]

PROFILE_FORMAT = "flotilla-profile/1"
_BATCH_ROWS = 65_536
_SIGNATURE_KINDS = {
    "float": ("numeric",),
    "int": ("numeric",),
    "timestamp": ("numeric", "categorical"),  # a CSV may keep timestamps as strings
    "bool": ("categorical",),
    "string": ("categorical",),
    "category": ("categorical",),
}


def is_profile(value: Any) -> bool:
    """Whether ``value`` is a profile dict made by :func:`build_profile`."""
    return isinstance(value, Mapping) and value.get("format") == PROFILE_FORMAT


def build_profile(
    path: str | Path,
    *,
    signature: Signature | None = None,
    output_column: str | None = None,
    progress: bool = True,
    batch_rows: int = _BATCH_ROWS,
) -> dict[str, Any]:
    """Stream a Parquet or CSV file in batches and summarise every field (bounded memory).

    Args:
        path: the training or validation file (``.parquet``/``.pq`` or ``.csv``/``.tsv``).
        signature: profile the signature's inputs (which must all be in the file with
            compatible types); without one, every column is profiled.
        output_column: also profile this column as the model's output (role ``output``).
        progress: show a progress bar on stderr.
        batch_rows: rows per batch read.

    Returns:
        The profile dict (JSON-safe).

    Raises:
        ConfigError: the file cannot be read, or columns are missing or of the wrong type.

    Example:
        >>> profile = build_profile("train.parquet", progress=False)  # doctest: +SKIP
        >>> profile["fields"]["age"]["null_rate"]  # doctest: +SKIP
        0.02
    """
    p = Path(path)
    schema, batches, total = _open(p, batch_rows)
    plan = _plan(schema, signature, output_column, p)
    accs: dict[str, NumericAccumulator | CategoricalAccumulator] = {
        name: NumericAccumulator() if kind == "numeric" else CategoricalAccumulator()
        for name, (kind, _) in plan.items()
    }
    rows = 0
    with _progress(progress, total, p.name) as advance:
        for batch in batches:
            for name, acc in accs.items():
                acc.add(batch.column(name))
            rows += batch.num_rows
            advance(batch.num_rows)
    fields: dict[str, Any] = {}
    for name, acc in accs.items():
        summary = acc.summary()
        summary["role"] = plan[name][1]
        summary["type"] = str(schema.field(name).type)
        fields[name] = summary
    return {"format": PROFILE_FORMAT, "source": p.name, "rows": rows, "fields": fields}


def _open(path: Path, batch_rows: int) -> tuple[pa.Schema, Iterator[pa.RecordBatch], int | None]:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if not path.is_file():
        raise ConfigError(f"The data file {str(path)!r} does not exist or is not a file.")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            pf = pq.ParquetFile(path)
            return (
                pf.schema_arrow,
                _guard(pf.iter_batches(batch_size=batch_rows), path),
                (pf.metadata.num_rows),
            )
        if suffix in (".csv", ".tsv"):
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=1 << 22),
                parse_options=pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ","),
            )
            return reader.schema, _guard(iter(reader), path), None
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(f"The data file {str(path)!r} cannot be read: {exc}") from exc
    raise ConfigError(
        f"The data file {str(path)!r} must be Parquet (.parquet) or CSV (.csv, .tsv). "
        f"Got {suffix or 'no extension'!r} instead."
    )


def _guard(batches: Iterator[pa.RecordBatch], path: Path) -> Iterator[pa.RecordBatch]:
    try:
        yield from batches
    except (pa.ArrowException, OSError) as exc:
        raise ConfigError(
            f"The data file {str(path)!r} could not be read to the end: {exc}. A CSV column "
            "whose type changes after the first block can be fixed by converting to Parquet."
        ) from exc


def _plan(
    schema: pa.Schema, signature: Signature | None, output: str | None, path: Path
) -> dict[str, tuple[str, str]]:
    """``{field: (kind, role)}``; raises ConfigError listing every missing or mistyped field."""
    wanted: dict[str, tuple[tuple[str, ...] | None, str]] = {}
    if signature is None:
        wanted = {n: (None, "input") for n in schema.names if n != output}
    else:
        wanted = {f.name: (_SIGNATURE_KINDS[f.type], "input") for f in signature.inputs}
    if output is not None:
        wanted[output] = (None, "output")
    problems: list[str] = []
    plan: dict[str, tuple[str, str]] = {}
    for name, (allowed, role) in wanted.items():
        if name not in schema.names:
            problems.append(f"{name!r} is missing")
            continue
        kind: str | None = column_kind(schema.field(name).type)
        if kind == "null":
            kind = "numeric" if allowed is None else allowed[0]
        if kind is None or (allowed is not None and kind not in allowed):
            expected = "" if allowed is None else f" but the signature wants {allowed[0]} values"
            problems.append(f"{name!r} has type {schema.field(name).type}{expected}")
            continue
        plan[name] = (kind, role)
    if problems:
        raise ConfigError(
            f"The reference file {path.name!r} does not fit: {'; '.join(problems)}. "
            f"Its columns are {', '.join(schema.names)}."
        )
    return plan


class _progress:
    """A rich progress bar on stderr (or nothing), counting rows."""

    def __init__(self, enabled: bool, total: int | None, label: str) -> None:
        self.enabled, self.total, self.label = enabled, total, label
        self._bar: Any = None

    def __enter__(self) -> Any:
        if not self.enabled:
            return lambda n: None
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self._bar = Progress(
            TextColumn("profiling {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        task = self._bar.add_task(self.label, total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()


def profile_to_reference(profile: Mapping[str, Any], *, max_rows: int = 10_000) -> pa.Table:
    """A synthetic reference table reproducing a profile, for :func:`compare_columns`.

    The table has ``min(rows, max_rows)`` rows. Each field keeps the profile's null rate;
    numbers are the profile's quantile function at evenly spaced probabilities; categories
    keep their frequencies (rounded by largest remainder) and pool the rest into
    ``__other__``, which absorbs current categories the reference does not name. KS p-values
    therefore use at most ``max_rows`` reference rows (conservative for larger files).
    """
    if not is_profile(profile):
        raise ConfigError(
            f"Not a Flotilla profile (expected format {PROFILE_FORMAT!r}); build one with "
            "`flotilla models profile NAME@N FILE`."
        )
    n_rows = min(int(profile.get("rows", 0)), max_rows)
    columns: dict[str, pa.Array] = {}
    for name, summary in profile["fields"].items():
        n_null = round(float(summary.get("null_rate") or 0.0) * n_rows)
        m = n_rows - n_null
        if summary["kind"] == "numeric":
            values: list[Any] = _numeric_values(summary, m)
            col_type: pa.DataType = pa.float64()
        else:
            values = _categorical_values(summary, m)
            col_type = pa.string()
        columns[name] = pa.array(values + [None] * n_null, type=col_type)
    return pa.table(columns) if columns else pa.table({})


def _numeric_values(summary: Mapping[str, Any], m: int) -> list[Any]:
    quantiles = summary.get("quantiles")
    if not quantiles or m <= 0:
        return [None] * max(m, 0)
    qs = np.asarray(quantiles, dtype=np.float64)
    probs = np.linspace(0.0, 1.0, qs.size)
    values: list[Any] = np.interp((np.arange(m) + 0.5) / m, probs, qs).tolist()
    return values


def _categorical_values(summary: Mapping[str, Any], m: int) -> list[Any]:
    freqs = {str(k): int(v) for k, v in (summary.get("frequencies") or {}).items()}
    other = int(summary.get("other_count") or 0)
    total = sum(freqs.values()) + other
    if total == 0 or m <= 0:
        return [None] * max(m, 0)
    keys = [*freqs, OTHER]
    counts = np.asarray([*freqs.values(), other], dtype=np.float64) * m / total
    whole = np.floor(counts).astype(int)
    remainder = m - int(whole.sum())
    whole[np.argsort(-(counts - whole), kind="stable")[:remainder]] += 1
    named = {k: int(c) for k, c in zip(keys[:-1], whole[:-1], strict=True) if c > 0}
    pooled = int(whole[-1])
    if pooled == 0 and (other > 0 or len(named) < len(freqs)) and named:
        largest = max(named, key=lambda k: named[k])  # keep rare categories representable
        named[largest] -= 1
        pooled = 1
    out: list[Any] = []
    for key, count in named.items():
        out.extend([key] * count)
    return out + [OTHER] * pooled
