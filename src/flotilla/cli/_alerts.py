"""Alert and incident commands: ``monitor run|rules|alerts|ack`` and ``incidents ...``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, open_workspace
from flotilla.clock import utcnow
from flotilla.monitoring._alert_state import AlertStateStore
from flotilla.monitoring.incidents import Incident, IncidentStore
from flotilla.monitoring.notify import FileSink, Sink, WebhookSink, sinks_from_config
from flotilla.monitoring.rules import load_rules
from flotilla.monitoring.runner import (
    HealthReportSource,
    MonitorSummary,
    default_rules_path,
    run_monitor,
)
from flotilla.records import OutcomeStore, RecordStore

__all__ = ["register"]

_RULES = typer.Option(
    None, "--rules", help="Alert rules YAML (default: $FLOTILLA_HOME/alerts.yaml, else shipped)."
)
_NOTE = typer.Option(..., "--note", help="What was done or found (stored in the audit trail).")


def _when(value: Any) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M")


def monitor_run(
    rules: Path | None = _RULES,
    webhook: str | None = typer.Option(None, "--webhook", help="Also POST to this JSON URL."),
    notify_file: Path | None = typer.Option(
        None, "--notify-file", help="Also append notifications as JSON lines to this file."
    ),
    budget: float = typer.Option(30.0, "--budget", min=0.1, help="Seconds for all sends."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Evaluate the alert rules once (for cron): notify, open and re-notify incidents."""
    ws = open_workspace()
    ruleset = load_rules(rules or default_rules_path(ws.settings))
    sinks: list[Sink] = sinks_from_config(ruleset.notify, base=Path(ws.settings.home))
    if notify_file is not None:
        sinks.append(FileSink(notify_file))
    if webhook is not None:
        hook = WebhookSink(webhook)
        hook._check()
        sinks.append(hook)
    records = Path(ws.settings.records)
    source = HealthReportSource(
        RecordStore(records),
        registry=ws.registry,
        outcomes=OutcomeStore(records, models=ws.registry),
    )
    summary = run_monitor(ws.registry, source=source, rules=ruleset, sinks=sinks, budget_s=budget)
    from flotilla.evaluation.promotion import auto_promote

    promoted = auto_promote(ws)
    if as_json:
        emit_json({**summary.to_dict(), "auto_promotions": [asdict(p) for p in promoted]})
        return
    _print_summary(summary)
    for p in promoted:
        outcome = f"promoted (revision {p.revision})" if p.revision else (p.error or p.verdict)
        console.print(f"auto-promotion of {p.model}: {p.challenger} → {outcome}")


def _print_summary(summary: MonitorSummary) -> None:
    ev = summary.evaluation
    console.print(
        f"Evaluated {summary.rules} rule(s) on {summary.models} model(s) at {_when(ev.at)} UTC: "
        f"{len(ev.firing)} alert(s) firing, {len(ev.notifications)} notification(s) "
        f"({summary.failed_sends} failed send(s)), {len(ev.opened)} incident(s) opened, "
        f"{len(ev.renotified)} re-notified."
    )
    for group in ev.firing:
        console.print(
            f"  FIRING {escape(group.rule)} [{group.severity}] {escape(group.group)}: "
            f"{escape(', '.join(group.models))} since {_when(group.started_at)}",
            markup=False,
        )
    for problem in ev.errors:
        console.print(f"  warning: {problem}", markup=False)


def monitor_rules(rules: Path | None = _RULES, as_json: bool = JSON_OPTION) -> None:
    """Validate and show the alert rules in effect."""
    ws = open_workspace()
    ruleset = load_rules(rules or default_rules_path(ws.settings))
    rows = [
        {
            "name": r.name,
            "condition": r.describe(),
            "severity": r.severity,
            "group_by": list(r.group_by),
            "models": list(r.models),
            "cooldown_s": None if r.cooldown is None else r.cooldown.total_seconds(),
            "incident": r.incident,
            "incident_after_s": None
            if r.incident_after is None
            else r.incident_after.total_seconds(),
        }
        for r in ruleset.rules
    ]
    if as_json:
        emit_json({"source": ruleset.source, "rules": rows})
        return
    table = Table(title=f"Alert rules from {ruleset.source}")
    for col in ("name", "condition", "severity", "group by", "incident"):
        table.add_column(col)
    for r in ruleset.rules:
        escalate = (
            "yes" if r.incident else (f"after {r.incident_after}" if r.incident_after else "no")
        )
        table.add_row(r.name, r.describe(), r.severity, ",".join(r.group_by), escalate)
    console.print(table)


def monitor_alerts(as_json: bool = JSON_OPTION) -> None:
    """List the alerts that fire now (one per rule and group)."""
    ws = open_workspace()
    firing = [g for g in AlertStateStore(ws.registry.engine).groups() if g.firing]
    if as_json:
        emit_json([g.to_dict() for g in firing])
        return
    if not firing:
        console.print("No alert fires.")
        return
    table = Table(title="Firing alerts")
    for col in ("rule", "severity", "group", "models", "since", "acknowledged"):
        table.add_column(col)
    for g in firing:
        table.add_row(
            g.rule,
            g.severity,
            g.group,
            ", ".join(g.models),
            _when(g.started_at),
            g.acknowledged_by or "-",
        )
    console.print(table)


def monitor_ack(
    rule: str = typer.Argument(..., help="The rule name."),
    group: str = typer.Argument(..., help="The group key, e.g. model=churn."),
    note: str = _NOTE,
) -> None:
    """Acknowledge a firing alert so that it does not escalate to an incident."""
    ws = open_workspace()
    state = AlertStateStore(ws.registry.engine)
    found = state.acknowledge(rule, group, actor=ws.actor, at=utcnow())
    ws.registry.record_event(
        "alert.ack",
        model=found.models[0] if len(found.models) == 1 else None,
        subject=f"alert:{rule}:{group}",
        before=None,
        after=found.to_dict(),
        reason=note,
        actor=ws.actor,
    )
    console.print(f"Acknowledged alert {rule} for {group}.", markup=False)


def _incident_table(found: list[Incident]) -> Table:
    table = Table(title="Incidents (details with --json)")
    for col in ("id", "state", "severity", "rule", "models", "owner", "opened"):
        table.add_column(col, no_wrap=col in {"id", "rule", "models"})
    for inc in found:
        table.add_row(
            str(inc.id),
            inc.state,
            inc.severity,
            inc.rule,
            ", ".join(inc.models),
            inc.owner,
            _when(inc.opened_at),
        )
    return table


def incidents_list(
    show_all: bool = typer.Option(False, "--all", help="Include resolved incidents."),
    state: str | None = typer.Option(None, "--state", help="open, acknowledged or resolved."),
    as_json: bool = JSON_OPTION,
) -> None:
    """List incidents (unresolved ones unless --all or --state)."""
    ws = open_workspace()
    found = IncidentStore(ws.registry).list(state=state, include_resolved=show_all)
    if as_json:
        emit_json([i.to_dict() for i in found])
        return
    if not found:
        console.print("No incidents." if show_all else "No open incidents.")
        return
    console.print(_incident_table(found))


def incidents_ack(
    incident_id: int = typer.Argument(..., metavar="ID", help="The incident id."),
    note: str = _NOTE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Acknowledge an open incident: someone is on it; re-notification stops."""
    ws = open_workspace()
    inc = IncidentStore(ws.registry).ack(incident_id, note=note, actor=ws.actor)
    if as_json:
        emit_json(inc.to_dict())
        return
    console.print(f"Incident {inc.id} acknowledged by {inc.acknowledged_by}.", markup=False)


def incidents_resolve(
    incident_id: int = typer.Argument(..., metavar="ID", help="The incident id."),
    note: str = _NOTE,
    as_json: bool = JSON_OPTION,
) -> None:
    """Resolve an incident (closes it)."""
    ws = open_workspace()
    inc = IncidentStore(ws.registry).resolve(incident_id, note=note, actor=ws.actor)
    if as_json:
        emit_json(inc.to_dict())
        return
    console.print(f"Incident {inc.id} resolved by {inc.resolved_by}.", markup=False)


def register(app: typer.Typer, groups: Groups) -> None:
    """Add ``monitor run|rules|alerts|ack`` and ``incidents list|ack|resolve``."""
    groups.monitor.command("run")(monitor_run)
    groups.monitor.command("rules")(monitor_rules)
    groups.monitor.command("alerts")(monitor_alerts)
    groups.monitor.command("ack")(monitor_ack)
    groups.incidents.command("list")(incidents_list)
    groups.incidents.command("ack")(incidents_ack)
    groups.incidents.command("resolve")(incidents_resolve)
