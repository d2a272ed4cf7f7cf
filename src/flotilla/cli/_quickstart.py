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
    serve_demo: bool = typer.Option(
        False,
        "--serve-demo",
        help="Also serve the portfolio, show curl examples, simulate traffic and outcomes, "
        "and compare churn's challenger (what make demo runs).",
    ),
    requests: int = typer.Option(800, "--requests", help="Simulated requests in the demo."),
    keep_serving: bool = typer.Option(
        False, "--keep-serving", help="With --serve-demo: keep serving until Ctrl-C."
    ),
    json: bool = JSON_OPTION,
) -> None:
    """Train a churn classifier, a recommender and a fraud scorer on synthetic data, audit the
    churn training data for leakage, and register everything with static fallbacks."""
    from flotilla.quickstart import print_demo, print_result, run_demo, run_quickstart

    ws = open_workspace()
    if not json:
        console.print(f"Flotilla quickstart in [bold]{ws.settings.home}[/] ...")
    result = run_quickstart(ws, workdir=workdir)
    if not json:
        print_result(result, console)
    if serve_demo:
        result.demo = run_demo(ws, requests=requests, keep_serving=keep_serving)
        if not json:
            print_demo(result.demo, console)
    if json:
        emit_json(result.to_dict())


def register(app: typer.Typer, groups: Groups) -> None:
    """Add the quickstart command."""
    app.command("quickstart")(quickstart)
