"""``flotilla monitor report [MODEL]``: health of one model, or of the portfolio by trouble."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from flotilla._durations import read_duration, read_utc_time
from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, fmt_value, open_workspace
from flotilla.errors import ConfigError

__all__ = ["parse_end", "parse_window", "register"]

_SERIES_STEPS = 24


def parse_window(text: str, *, what: str = "--window") -> timedelta:
    """``30m``, ``1h``, ``1d``, ``7d``, ``2w`` (also ``s``) as a positive timedelta.

    Raises:
        ConfigError: anything else, with the accepted forms.
    """
    found = read_duration(text or "", whole=True)
    if found is None:
        raise ConfigError(
            f"The {what} must be a positive whole number and a unit s, m, h, d or w "
            f"(e.g. 30m, 1h, 1d, 7d). Got {text!r} instead."
        )
    return found


def parse_end(text: str | None) -> datetime:
    """The window's end: ISO date or time (naive means UTC), or now when ``None``."""
    if text is None:
        return datetime.now(UTC)
    moment = read_utc_time(text)
    if moment is None:
        raise ConfigError(
            "The --end must be an ISO date or time such as 2026-03-01 or 2026-03-01T12:00:00Z. "
            f"Got {text!r} instead."
        )
    return moment


def _fmt(value: Any, digits: int = 3) -> str:
    return fmt_value(value, digits)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f}%"


def _portfolio_table(reports: list[Any], start: datetime, end: datetime) -> Table:
    table = Table(title=f"Portfolio health {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC")
    for col in ("model", "status", "trouble", "traffic", "prev", "fallback", "errors",
                "p99 ms", "drifted", "perf", "est."):  # fmt: skip
        left = col in ("model", "status")
        table.add_column(col, justify="left" if left else "right", no_wrap=left)
    for r in reports:
        m = r.metrics
        status = r.status
        shown = {"ok": "[green]ok[/]", "trouble": "[red]trouble[/]"}.get(
            status, "[yellow]no traffic[/]"
        )
        drifted = "-" if m["drifted_fields"] is None else f"{int(m['drifted_fields'])}"
        table.add_row(
            r.model, shown, f"{r.trouble_score:.2f}", str(int(m["traffic"] or 0)),
            str(int(m["previous_traffic"] or 0)), _pct(m["fallback_rate"]),
            _pct(m["error_rate"]), _fmt(m["latency_p99_ms"]), drifted,
            _fmt(m["performance"]), _fmt(m["estimated_performance"]),
        )  # fmt: skip
    return table


def _model_tables(report: Any) -> list[Table]:
    m = report.metrics
    serving = Table(title=f"Health of {report.model} ({report.status}, live {report.live_ref})")
    serving.add_column("number")
    serving.add_column("value", justify="right")
    for key in ("traffic", "previous_traffic", "rows", "latency_p50_ms", "latency_p99_ms",
                "error_rate", "fallback_rate", "shadow_dropped", "labeled"):  # fmt: skip
        serving.add_row(key, _fmt(m[key], 4))
    serving.add_row("trouble score", f"{report.trouble_score:.3f}")
    roles = Table(title="Traffic by role")
    for col in ("role", "requests", "rows"):
        roles.add_column(col, justify="left" if col == "role" else "right")
    for role, v in report.traffic_by_role.items():
        roles.add_row(role, str(v["requests"]), str(v["rows"]))
    reasons = Table(title="Fallback rate by first reason")
    reasons.add_column("reason")
    reasons.add_column("rate", justify="right")
    for key, value in m.items():
        if key.startswith("fallback_rate_"):
            reasons.add_row(key.removeprefix("fallback_rate_"), _pct(value))
    tables = [serving, roles, reasons]
    if report.drift:
        drift = Table(title="Drifted fields, ranked")
        for col in ("field", "test", "value", "threshold", "drifted", "JS", "nulls"):
            drift.add_column(col, justify="left" if col == "field" else "right")
        for d in report.drift:
            mark = "[red]YES[/]" if d["drifted"] else ("-" if d["drifted"] is None else "no")
            nulls = f"{_fmt(d['null_rate_reference'], 2)}>{_fmt(d['null_rate_current'], 2)}"
            drift.add_row(
                d["name"], _fmt(d["test"]), _fmt(d["statistic"]), _fmt(d["threshold"]), mark,
                _fmt(d["jensen_shannon"]), nulls,
            )  # fmt: skip
        tables.append(drift)
    return tables


def _print_model(report: Any) -> None:
    for table in _model_tables(report):
        console.print(table)
    m = report.metrics
    if not report.drift:
        console.print(f"Drift: {report.drift_note}.")
    if m["prediction_drift"] is not None:
        console.print(
            f"Prediction drift (Jensen-Shannon of the output): {m['prediction_drift']:.3g}"
        )
    if report.performance is not None:
        p = report.performance
        console.print(
            f"Performance on {p['labeled']} labeled rows: {p['metric']} = {_fmt(p['value'], 4)}"
        )
    else:
        console.print("Performance: no labeled rows in this window.")
    if report.cbpe is not None:
        c = report.cbpe
        console.print(
            f"Estimated without labels (CBPE, {c['rows']} rows): ROC AUC {_fmt(c['roc_auc'], 4)}, "
            f"accuracy {_fmt(c['accuracy'], 4)}, F1 {_fmt(c['f1'], 4)}. Assumes: "
            + "; ".join(c["assumptions"])
            + "."
        )
    for finding in report.feature_ages:
        console.print(f"[yellow]Feature age:[/] {escape(finding['message'])}")
    for note in report.notes:
        console.print(f"  note: {note}")


def monitor_report(
    model: str | None = typer.Argument(None, help="One model (default: the whole portfolio)."),
    window: str = typer.Option("1d", "--window", help="Window length: 30m, 1h, 1d, 7d, ..."),
    end: str | None = typer.Option(None, "--end", help="End of the window (ISO; default now)."),
    html: Path | None = typer.Option(
        None, "--html", help="Write a self-contained HTML report (needs MODEL)."
    ),
    step: str | None = typer.Option(
        None, "--step", help="Step of the HTML charts (default: the window / 24)."
    ),
    workers: int = typer.Option(2, "--workers", help="Models computed at once (portfolio)."),
    json: bool = JSON_OPTION,
) -> None:
    """Health of MODEL over the window, or one screen for the portfolio sorted by trouble.

    Traffic, p50/p99 latency, error and fallback rates (by reason), drifted fields ranked
    against the live version's reference profile, prediction drift, performance on labels
    and the CBPE estimate for probability models.
    """
    from flotilla.monitoring.health import health_report, health_series, portfolio_health
    from flotilla.monitoring.health_html import write_health_html
    from flotilla.records import OutcomeStore, RecordStore

    length = parse_window(window)
    stop = parse_end(end)
    start = stop - length
    if html is not None and model is None:
        raise ConfigError("--html draws one model's report; name the MODEL.")
    ws = open_workspace()
    store = RecordStore(ws.settings.records)
    outcomes = OutcomeStore(ws.settings.records, models=ws.registry)
    if model is None:
        reports = portfolio_health(
            store,
            None,
            start=start,
            end=stop,
            registry=ws.registry,
            outcomes=outcomes,
            workers=workers,
        )
        if json:
            emit_json({"start": start, "end": stop, "models": [r.to_dict() for r in reports]})
            return
        console.print(_portfolio_table(reports, start, stop))
        return
    ws.registry.get_model(model)  # a clear error for an unknown model
    report = health_report(
        store, model, start=start, end=stop, registry=ws.registry, outcomes=outcomes
    )
    if html is not None:
        every = parse_window(step, what="--step") if step else length / _SERIES_STEPS
        series = health_series(
            store, model, start=start, end=stop, step=every, registry=ws.registry
        )
        write_health_html(html, report, series)
    if json:
        emit_json(report.to_dict())
        return
    _print_model(report)
    if html is not None:
        console.print(f"Wrote {html}")


def register(app: typer.Typer, groups: Groups) -> None:
    """Add ``monitor report`` to the app."""
    groups.monitor.command("report")(monitor_report)
