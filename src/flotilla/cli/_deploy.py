"""Deployment commands: ``deploy``, ``deployments`` and ``rollback``."""

from __future__ import annotations

import textwrap
from typing import Any

import typer
import yaml
from rich.markup import escape
from rich.table import Table

from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, fail, open_workspace
from flotilla.errors import DeploymentError, FlotillaError
from flotilla.portfolio import (
    Change,
    DeploymentSpec,
    PortfolioError,
    apply,
    load_portfolio,
    rollback,
)
from flotilla.registry import DeploymentRevision

__all__ = ["register"]

_ACTION_STYLE = {
    "create": "green",
    "update": "yellow",
    "unchanged": "dim",
    "untouched": "magenta",
}


def register(app: typer.Typer, groups: Groups) -> None:
    """Add ``deploy``, ``deployments`` and ``rollback`` to the app."""
    app.command("deploy")(deploy)
    app.command("deployments")(deployments)
    app.command("rollback")(rollback_command)


def _refuse(exc: FlotillaError, json: bool) -> None:
    """Print every problem (as JSON with ``--json``) and exit with status 1."""
    if json:
        problems = exc.problems if isinstance(exc, PortfolioError) else [str(exc)]
        emit_json({"ok": False, "error": str(exc), "problems": problems})
        raise typer.Exit(1)
    fail(escape(str(exc)))


def deploy(
    portfolio: str = typer.Argument(..., help="The portfolio YAML file."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Validate and print the plan; write nothing."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with each revision)."),
    json: bool = JSON_OPTION,
) -> None:
    """Validate a portfolio file and write one deployment revision per changed model.

    Every problem is listed at once and nothing is written when there is any. Models that
    are deployed but missing from the file are left as they are (shown as 'untouched').
    """
    try:
        parsed = load_portfolio(portfolio)
        ws = open_workspace()
        changes = apply(
            parsed, ws.registry, actor=ws.settings.actor, dry_run=dry_run, reason=reason
        )
    except FlotillaError as exc:
        _refuse(exc, json)
        return
    if json:
        emit_json({"ok": True, "dry_run": dry_run, "changes": [c.to_dict() for c in changes]})
        return
    _print_changes(changes, dry_run=dry_run)


def _print_changes(changes: list[Change], *, dry_run: bool) -> None:
    title = "Deployment plan (dry run: nothing written)" if dry_run else "Deployed"
    table = Table(title=title, title_justify="left")
    for column in ("model", "action", "revision", "changes", "chain"):
        table.add_column(column)
    for c in changes:
        style = _ACTION_STYLE[c.action]
        if c.revision is not None:
            rev = f"{c.before or '-'} -> {c.revision}"
        elif c.action in ("create", "update"):
            rev = f"{c.before or '-'} -> (new)"
        else:
            rev = str(c.before)
        keys = ", ".join(c.diff) if c.action == "update" else ""
        table.add_row(
            escape(c.model),
            f"[{style}]{c.action}[/]",
            rev,
            escape(keys),
            escape(_chain(c.spec)),
        )
    console.print(table)
    counts = {a: sum(c.action == a for c in changes) for a in _ACTION_STYLE}
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    console.print(summary or "The portfolio declares no models.")
    if counts["untouched"]:
        console.print(
            "untouched: deployed before but not in this file; left as they are "
            "(add them to the file to change them)."
        )


def _chain(spec: dict[str, Any] | None) -> str:
    if spec is None:
        return ""
    try:
        return DeploymentSpec.from_dict(spec).describe_chain()
    except DeploymentError:
        return "(a spec this version cannot read)"


def deployments(
    model: str | None = typer.Argument(None, help="Show this model's spec and history."),
    json: bool = JSON_OPTION,
) -> None:
    """Show every model's current deployment, or one model's spec and revision history."""
    ws = open_workspace()
    registry = ws.registry
    if model is None:
        current = sorted(registry.current_deployments(), key=lambda r: r.model)
        rows = [_summary(r, _resolved(registry, r.spec.get("live"))) for r in current]
        if json:
            emit_json(rows)
            return
        _print_summary(rows)
        return
    registry.get_model(model)  # ModelNotFoundError names the closest models
    history = sorted(registry.deployment_history(model), key=lambda r: r.revision)
    current_rev = history[-1] if history else None
    if json:
        emit_json(
            {
                "model": model,
                "current": None if current_rev is None else current_rev.to_dict(),
                "history": [r.to_dict() for r in history],
            }
        )
        return
    if current_rev is None:
        console.print(
            f"Model {escape(model)!r} is registered but not deployed. "
            "Add it to a portfolio file and run 'flotilla deploy FILE'."
        )
        return
    _print_model(current_rev, history)


def _resolved(registry: Any, ref: Any) -> str | None:
    try:
        return str(registry.get_version(str(ref)).ref)
    except FlotillaError:
        return None


def _summary(rev: DeploymentRevision, resolved: str | None) -> dict[str, Any]:
    spec = rev.spec
    return {
        "model": rev.model,
        "revision": rev.revision,
        "live": spec.get("live"),
        "live_version": resolved,
        "chain": _chain(spec),
        "deadline_ms": spec.get("deadline_ms"),
        "tier": spec.get("tier"),
        "actor": rev.actor,
        "created_at": rev.created_at.isoformat(),
        "reason": rev.reason,
    }


def _print_summary(rows: list[dict[str, Any]]) -> None:
    if not rows:
        console.print("No deployments yet. Run 'flotilla deploy PORTFOLIO.yaml'.")
        return
    table = Table(title="Deployments", title_justify="left")
    for column in ("model", "rev", "live", "chain", "deadline", "tier", "by", "at"):
        table.add_column(column)
    for r in rows:
        live = (
            r["live"]
            if r["live_version"] in (None, r["live"])
            else (f"{r['live']} (= {r['live_version']})")
        )
        table.add_row(
            escape(r["model"]),
            str(r["revision"]),
            escape(str(live)),
            escape(r["chain"]),
            f"{r['deadline_ms']:g} ms" if isinstance(r["deadline_ms"], int | float) else "?",
            escape(str(r["tier"])),
            escape(r["actor"]),
            r["created_at"][:19].replace("T", " "),
        )
    console.print(table)


def _print_model(current: DeploymentRevision, history: list[DeploymentRevision]) -> None:
    console.print(f"[bold]{escape(current.model)}[/]: revision {current.revision}")
    shown = {k: v for k, v in current.spec.items() if k != "model"}
    text = yaml.safe_dump(shown, sort_keys=False, default_flow_style=None, width=96)
    console.print(escape(textwrap.indent(text.rstrip(), "  ")))
    table = Table(title="History", title_justify="left")
    for column in ("rev", "at", "by", "reason", "changes"):
        table.add_column(column)
    for r in reversed(history):
        keys = ", ".join(r.diff or {}) if r.revision > 1 else "(first deployment)"
        table.add_row(
            str(r.revision),
            r.created_at.isoformat()[:19].replace("T", " "),
            escape(r.actor),
            escape(r.reason or ""),
            escape(keys),
        )
    console.print(table)


def rollback_command(
    model: str = typer.Argument(..., help="The model to roll back."),
    to: int | None = typer.Option(
        None, "--to", help="Revision to re-apply (default: the one before the current)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept with the revision)."),
    json: bool = JSON_OPTION,
) -> None:
    """Re-apply an earlier deployment revision of MODEL as a new revision."""
    ws = open_workspace()
    try:
        rev = rollback(ws.registry, model, to=to, actor=ws.settings.actor, reason=reason)
    except FlotillaError as exc:
        _refuse(exc, json)
        return
    if json:
        emit_json(rev.to_dict())
        return
    changes = "; ".join(
        f"{key}: {_short(c.get('before'))} -> {_short(c.get('after'))}"
        for key, c in (rev.diff or {}).items()
    )
    console.print(
        f"Rolled back {escape(model)}: revision {rev.revision} ({escape(rev.reason or '')})\n"
        f"  changed: {escape(changes)}\n  chain: {escape(_chain(rev.spec))}"
    )


def _short(value: Any) -> str:
    text = "null" if value is None else str(value)
    return text if len(text) <= 60 else text[:57] + "..."
