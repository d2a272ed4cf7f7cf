"""CLI commands of this group (filled in by the component that owns them)."""

from __future__ import annotations

import typer

from flotilla.cli._groups import Groups


def register(app: typer.Typer, groups: Groups) -> None:
    """Add this module's commands to the app."""
