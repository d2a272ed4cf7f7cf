"""The ``audit`` entry point: prepare the data, run every check, assemble the report."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flotilla.audit._data import MAX_CLASSES, AuditData, prepare
from flotilla.audit._leakage import check_nulls
from flotilla.audit._proxies import check_values
from flotilla.audit._report import AuditReport, Finding, make_summary, sort_findings
from flotilla.audit._source import DEFAULT_MEMORY_LIMIT, connect
from flotilla.audit._timeliness import check_future_values, check_split

__all__ = ["DEFAULT_SAMPLE_ROWS", "audit"]

DEFAULT_SAMPLE_ROWS = 200_000
_STEPS: list[tuple[str, Callable[[AuditData], list[Finding]]]] = [
    ("future values", check_future_values),
    ("missingness vs label", check_nulls),
    ("copies, too-good features, identifiers", check_values),
    ("split", check_split),
]


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[Callable[[str], None]]:
    if not enabled:
        yield lambda _label: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("audit: {task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("reading", total=total)

        def advance(label: str) -> None:
            bar.update(task, advance=1, description=label)

        yield advance


def audit(
    data: Path | str | Any,
    *,
    label: str,
    event_time: str,
    entity: str | None = None,
    split: str | None = None,
    written_at: Path | str | Any | None = None,
    progress: bool = False,
    sample_rows: int = DEFAULT_SAMPLE_ROWS,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
    seed: int = 0,
) -> AuditReport:
    """Audit a training set for label leakage and feature timeliness.

    Args:
        data: the training rows: a Parquet/CSV path (or a folder of Parquet files), a
            ``pyarrow.Table`` or a ``pandas.DataFrame``.
        label: the label column.
        event_time: the column with each row's prediction (event) time; naive times are UTC.
        entity: the entity column (needed for a written-at table and the split entity check).
        split: a column marking ``train`` rows and evaluation rows (any other value).
        written_at: where write times come from: ``None`` (columns named
            ``<feature>__written_at``), another suffix string, or a long table
            (path or ``pyarrow.Table``) with columns ``entity, feature, written_at``.
        progress: show a progress bar on stderr.
        sample_rows: the size of the uniform sample used for AUC-based checks.
        memory_limit: DuckDB's memory limit for the full-data scans (spills beyond it).
        seed: the seed of the sample and of the out-of-fold encoding.

    Returns:
        An :class:`AuditReport`; ``exit_code`` is 0 when clean, 1 for warnings, 2 for errors.

    Raises:
        AuditError: a missing column (the message lists the columns), an event time that does
            not parse (the message shows a value), zero rows, a constant label.

    Example:
        >>> report = audit("train.parquet", label="churned", event_time="ts")  # doctest: +SKIP
        >>> report.exit_code  # doctest: +SKIP
        2
    """
    if sample_rows < 100:
        from flotilla.errors import AuditError

        raise AuditError(
            f"The 'sample_rows' of audit must be at least 100. Got {sample_rows} instead."
        )
    conn = connect(memory_limit, nan_safe=True)
    try:
        with _progress(progress, len(_STEPS) + 1) as advance:
            prepared = prepare(
                data,
                label=label,
                event_time=event_time,
                entity=entity,
                split=split,
                written_at=written_at,
                sample_rows=sample_rows,
                seed=seed,
                conn=conn,
            )
            advance("read and sampled")
            findings: list[Finding] = []
            if prepared.capped_classes:
                findings.append(_cardinality_finding(prepared))
            for name, step in _STEPS:
                findings.extend(step(prepared))
                advance(name)
        ordered = sort_findings(findings)
        return AuditReport(findings=ordered, summary=_summary(prepared, ordered))
    finally:
        conn.close()


def _summary(data: AuditData, findings: list[Finding]) -> dict[str, Any]:
    return make_summary(
        rows=data.rows,
        features=[f.name for f in data.features],
        findings=findings,
        extra={
            "label": data.label,
            "label_kind": data.label_kind,
            "label_classes": data.label_classes,
            "rows_without_label": data.dropped_null_labels,
            "sample_rows": int(data.sample["__cls"].size),
            "features_with_write_times": sum(1 for f in data.features if f.written),
        },
    )


def _cardinality_finding(data: AuditData) -> Finding:
    covered = float(sum(data.positive(t).mean() for t in data.targets))
    return Finding(
        check="label_cardinality",
        feature=data.label,
        severity="warning",
        message=(
            f"The label '{data.label}' has {data.label_classes:,} classes; the checks scored the "
            f"{MAX_CLASSES} most frequent one-vs-rest (they cover {covered:.1%} of the sampled "
            "rows) and lumped the rest together."
        ),
        evidence={"classes": data.label_classes, "checked": MAX_CLASSES, "covered": covered},
        advice=(
            "If this is a regression target, store it as a number; if the rare classes matter, "
            "audit them on a subset or group them first."
        ),
    )
