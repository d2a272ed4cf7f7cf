"""The command groups (``flotilla models ...``, ``flotilla records ...``) shared by modules."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields

import typer

__all__ = ["Groups"]


def _group(help_text: str) -> typer.Typer:
    return typer.Typer(help=help_text, no_args_is_help=True, rich_markup_mode=None)


@dataclass(frozen=True)
class Groups:
    """Sub-apps that several modules add commands to."""

    models: typer.Typer
    records: typer.Typer
    outcomes: typer.Typer
    monitor: typer.Typer
    incidents: typer.Typer
    features: typer.Typer

    @classmethod
    def create(cls) -> Groups:
        return cls(
            models=_group("Register, list, inspect and check model versions."),
            records=_group("Query, tail, compact and check prediction records."),
            outcomes=_group("Ingest delayed ground truth (outcomes)."),
            monitor=_group("Drift, health reports and alert rules."),
            incidents=_group("Incidents that need a person: list, acknowledge, resolve."),
            features=_group("Point-in-time correct feature joins."),
        )

    def items(self) -> Iterator[tuple[str, typer.Typer]]:
        for f in fields(self):
            yield f.name, getattr(self, f.name)
