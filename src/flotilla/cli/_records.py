"""Records commands: ``records query|tail|compact|check`` and ``outcomes ingest``."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import typer
from rich.table import Table

from flotilla.cli._groups import Groups
from flotilla.cli._output import (
    JSON_OPTION,
    console,
    emit_json,
    err_console,
    open_workspace,
    settings,
)
from flotilla.records import (
    CompactStep,
    CorruptSegmentWarning,
    OutcomeStore,
    RecordStore,
    read_outcome_file,
)

__all__ = ["register"]

T = TypeVar("T")
_SHOWN_ROWS = 200
_CELL_CHARS = 60


@contextmanager
def _warnings_as_lines() -> Iterator[None]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptSegmentWarning)
        yield
    for item in caught:
        err_console.print(f"[yellow]warning:[/] {item.message}", markup=True, highlight=False)


def _run(action: Callable[[], T]) -> T:
    with _warnings_as_lines():
        return action()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat(timespec="milliseconds") if isinstance(value, datetime) else str(value)
    return text if len(text) <= _CELL_CHARS else text[: _CELL_CHARS - 1] + "…"


def _print_table(table: pa.Table, title: str) -> None:
    rows = table.slice(0, _SHOWN_ROWS).to_pylist()
    out = Table(title=title)
    for name in table.column_names:
        out.add_column(name, overflow="fold")
    for row in rows:
        out.add_row(*(_cell(row[name]) for name in table.column_names))
    console.print(out)
    if table.num_rows > _SHOWN_ROWS:
        console.print(f"{table.num_rows - _SHOWN_ROWS} more rows not shown; use --limit or --json.")


def _store() -> RecordStore:
    return RecordStore(settings().records)


def records_query(
    sql: str = typer.Argument(..., help="SQL over the views 'predictions' and 'outcomes'."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N rows."),
    json: bool = JSON_OPTION,
) -> None:
    """Run SQL on the prediction and outcome records (DuckDB)."""
    relation = _run(lambda: _store().query(sql))
    if limit is not None:
        relation = relation.limit(limit)
    table = _run(relation.to_arrow_table)  # a damaged segment is found (and skipped) here
    if json:
        emit_json(table.to_pylist())
        return
    _print_table(table, f"{table.num_rows} rows")


def records_tail(
    model: str = typer.Argument(..., help="The model whose latest records to show."),
    n: int = typer.Option(20, "-n", "--rows", min=1, help="How many records."),
    json: bool = JSON_OPTION,
) -> None:
    """Show the latest prediction records of a model, newest first."""
    store = _store()
    table = _run(lambda: store.tail(model, n).to_arrow_table())
    if json:
        emit_json(table.to_pylist())
        return
    if not table.num_rows:
        others = store.models("predictions")
        known = f" Models with records: {', '.join(others)}." if others else ""
        console.print(f"No prediction records of {model!r} yet.{known}", markup=False)
        return
    columns = ["event_time", "request_id", "row", "role", "ref", "prediction", "latency_ms"]
    columns += ["degraded", "reasons", "caller_id", "inputs"]
    _print_table(table.select(columns), f"Latest {table.num_rows} records of {model}")


def records_compact(
    model: str | None = typer.Option(None, "--model", help="Only this model's partitions."),
    json: bool = JSON_OPTION,
) -> None:
    """Merge small segments per partition; never loses or double counts a record."""
    store = _store()
    with console.status("compacting…") as status:

        def progress(step: CompactStep) -> None:
            status.update(f"{step.partition.parent.name}/{step.partition.name}: {step.step}")

        report = _run(lambda: store.compact(model, progress=None if json else progress))
    if json:
        emit_json(report.to_dict())
        return
    console.print(
        f"Compacted {len(report.merged)} group(s) in {report.partitions} partition(s): "
        f"{report.segments_before} → {report.segments_after} segments, {report.rows} rows."
    )
    for item in report.skipped:
        err_console.print(f"[yellow]skipped corrupted:[/] {item['path']} ({item['error']})")


def records_check(json: bool = JSON_OPTION) -> None:
    """Read every segment and report corrupted ones (exit 1 when any)."""
    report = _store().check()
    if json:
        emit_json(report.to_dict())
    else:
        state = "[green]ok[/]" if report.ok else "[red]CORRUPTED SEGMENTS[/]"
        console.print(f"{state}: {report.segments} readable segments, {report.rows} rows.")
        if report.journals:
            console.print(f"{report.journals} interrupted compaction(s); the next query repairs.")
        for item in report.corrupted:
            console.print(f"[red]corrupted:[/] {item['path']}", soft_wrap=True)
            console.print(f"    {item['error']}", soft_wrap=True)
        if report.corrupted:
            console.print("Queries skip these segments; move them away once inspected.")
    if not report.ok:
        raise typer.Exit(1)


def outcomes_ingest(
    file: Path = typer.Argument(..., help="Outcomes: .csv, .parquet or .jsonl."),
    model: str = typer.Option(..., "--model", help="The model the outcomes belong to."),
    json: bool = JSON_OPTION,
) -> None:
    """Ingest delayed ground truth; reports accepted, rejected and unmatched outcomes."""
    rows = read_outcome_file(file)
    registry = open_workspace().registry
    store = OutcomeStore(settings().records, models=registry)
    report = store.ingest(model, rows)
    unmatched = 0
    if report.accepted:
        relation = _run(lambda: store.unmatched(model))
        batch = relation.filter(f"written_at = TIMESTAMPTZ '{report.written_at}'")
        unmatched = batch.to_arrow_table().num_rows
    result = {**report.to_dict(), "unmatched": unmatched}
    if json:
        emit_json(result)
    else:
        console.print(
            f"{report.accepted} accepted, {len(report.rejected)} rejected, "
            f"{unmatched} unmatched (kept; they match no prediction yet)."
        )
        for item in report.rejected[:20]:
            err_console.print(f"[red]rejected:[/] {item['error']}", highlight=False)
        if len(report.rejected) > 20:
            err_console.print(f"… and {len(report.rejected) - 20} more (use --json).")
    if report.rejected:
        raise typer.Exit(1)


def register(app: typer.Typer, groups: Groups) -> None:
    """Add the records and outcomes commands."""
    groups.records.command("query")(records_query)
    groups.records.command("tail")(records_tail)
    groups.records.command("compact")(records_compact)
    groups.records.command("check")(records_check)
    groups.outcomes.command("ingest")(outcomes_ingest)
