"""``flotilla quickstart``: what ``make demo`` runs."""

from __future__ import annotations

from pathlib import Path

import typer

from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, open_workspace

__all__ = ["register"]


def quickstart(
    workdir: Path | None = typer.Option(
        None, "--workdir", help="Where data and artifacts go (default <home>/quickstart)."
    ),
    json: bool = JSON_OPTION,
) -> None:
    """Train a churn classifier, a recommender and a fraud scorer on synthetic data, audit the
    churn training data for leakage, and register everything with static fallbacks."""
    from flotilla.quickstart import print_result, run_quickstart

    ws = open_workspace()
    if not json:
        console.print(f"Flotilla quickstart in [bold]{ws.settings.home}[/] ...")
    result = run_quickstart(ws, workdir=workdir)
    if json:
        emit_json(result.to_dict())
        return
    print_result(result, console)


def register(app: typer.Typer, groups: Groups) -> None:
    """Add the quickstart command."""
    app.command("quickstart")(quickstart)
