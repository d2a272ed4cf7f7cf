"""``flotilla audit`` (training-set leakage audit) and ``flotilla features join``."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import typer
from rich.table import Table

from flotilla._durations import read_duration
from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, fail, settings

__all__ = ["parse_ttl", "register"]


def parse_ttl(text: str) -> timedelta:
    """'7d', '12h', '30m', '45s' or '2w' as a timedelta."""
    found = read_duration(text)
    if found is None:
        fail(
            "The --ttl must be a positive duration such as 7d, 12h, 30m or 45s. "
            f"Got {text!r} instead."
        )
    return found


def _evidence(evidence: dict[str, Any]) -> str:
    shown = []
    for key, value in list(evidence.items())[:6]:
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif isinstance(value, dict):
            continue
        shown.append(f"{key}={value}")
    return ", ".join(shown)


def _print_report(report: Any) -> None:
    s = report.summary
    console.print(
        f"Audited {s['rows']:,} rows, {s['features_checked']} features "
        f"(label '{s['label']}', {s['label_kind']}): "
        f"{s['errors']} errors, {s['warnings']} warnings."
    )
    if not report.findings:
        console.print("[green]No leakage found.[/]", markup=True)
        return
    table = Table(show_lines=True)
    for column in ("severity", "check", "feature", "evidence", "advice"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        color = "red" if f.severity == "error" else "yellow"
        table.add_row(
            f"[{color}]{f.severity}[/]", f.check, f.feature, _evidence(f.evidence), f.advice
        )
    console.print(table)
    for f in report.findings:
        console.print(f"- {f.feature}: {f.message}")


def _audit_command(
    training_file: Path = typer.Argument(..., help="Training rows: a Parquet or CSV file."),
    label: str = typer.Option(..., "--label", help="The label column."),
    event_time: str = typer.Option(..., "--event-time", help="The event (prediction) time column."),
    entity: str | None = typer.Option(None, "--entity", help="The entity column."),
    split: str | None = typer.Option(None, "--split", help="Column marking 'train' vs test rows."),
    written_at: str | None = typer.Option(
        None,
        "--written-at",
        help="A long table FILE (entity, feature, written_at) or the SUFFIX of per-feature "
        "write-time columns (default: __written_at).",
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    serving_model: str | None = typer.Option(
        None,
        "--serving-model",
        help="Also compare the feature ages served to MODEL (from its prediction records) "
        "with the training ages (<feature>__written_at columns).",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Audit a training set for label leakage; exit 0 clean, 1 warnings, 2 errors."""
    from flotilla.audit import audit, compare_feature_ages, merge_reports, training_feature_ages

    report = audit(
        training_file,
        label=label,
        event_time=event_time,
        entity=entity,
        split=split,
        written_at=written_at,
        progress=sys.stderr.isatty() and not as_json,
    )
    if serving_model is not None:
        from flotilla.records import RecordStore

        serving = RecordStore(settings().records).feature_ages(serving_model)
        if not serving:
            fail(
                f"No prediction records of {serving_model!r} carry feature_times; send them with "
                'each predict request ("feature_times": [{feature: written_at}, ...]).'
            )
        training = training_feature_ages(training_file, event_time=event_time)
        report = merge_reports(report, compare_feature_ages(training, serving))
    if html is not None:
        report.to_html(html)
    if as_json:
        emit_json(report.to_dict())
    else:
        _print_report(report)
        if html is not None:
            console.print(f"HTML report: {html}")
    raise typer.Exit(report.exit_code)


def _feature_table(spec: str, written_at: str) -> Any:
    from flotilla.audit import FeatureTable

    path, prefix = spec, ""
    if not Path(spec).exists() and ":" in spec:
        path, prefix = spec.rsplit(":", 1)
    return FeatureTable(source=Path(path), written_at=written_at, prefix=prefix)


_OUTPUT_SUFFIXES = frozenset({".parquet", ".pq", ".csv"})


def _join_command(
    events: Path = typer.Argument(..., help="Events: a Parquet or CSV file."),
    features: list[str] = typer.Option(
        ...,
        "--features",
        help="A feature table file (repeat for more); PATH:PREFIX prefixes its columns.",
    ),
    entity: str = typer.Option(..., "--entity", help="The entity column."),
    event_time: str = typer.Option(..., "--event-time", help="The event time column."),
    output: Path = typer.Option(..., "-o", "--output", help="Output file (.parquet or .csv)."),
    ttl: str | None = typer.Option(None, "--ttl", help="Ignore values older than this (7d, 12h)."),
    written_at: str = typer.Option(
        "written_at", "--written-at-column", help="The write-time column of the feature tables."
    ),
    with_written_at: bool = typer.Option(
        False, "--with-written-at", help="Add <feature>__written_at columns (for flotilla audit)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Point-in-time join: each event gets each feature's latest value written at or before it."""
    from flotilla.audit import point_in_time_join, write_table

    if output.suffix.lower() not in _OUTPUT_SUFFIXES:
        fail(
            f"The --output file must end in .parquet or .csv (the format is taken from the "
            f"name). Got {str(output)!r}."
        )
    table = point_in_time_join(
        events,
        [_feature_table(spec, written_at) for spec in features],
        entity=entity,
        event_time=event_time,
        ttl=parse_ttl(ttl) if ttl else None,
        include_written_at=with_written_at,
    )
    write_table(table, output)
    meta = table.schema.metadata or {}
    added = orjson.loads(meta.get(b"flotilla.features", b"[]"))
    result = {
        "output": str(output),
        "rows": table.num_rows,
        "columns": table.column_names,
        "features": added,
    }
    if as_json:
        emit_json(result)
    else:
        console.print(
            f"Wrote {table.num_rows:,} rows with {len(added)} feature columns to {output}"
        )


def register(app: typer.Typer, groups: Groups) -> None:
    """Add ``audit`` and ``features join`` to the app."""
    app.command("audit")(_audit_command)
    groups.features.command("join")(_join_command)
