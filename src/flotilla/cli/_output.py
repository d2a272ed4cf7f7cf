"""Shared CLI plumbing: consoles, JSON output, error exits, opening the workspace."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from flotilla.settings import Settings

if TYPE_CHECKING:
    from flotilla.workspace import Workspace

__all__ = [
    "STATE",
    "console",
    "emit_json",
    "err_console",
    "fail",
    "fmt_value",
    "open_workspace",
    "settings",
]

# Piped output (no terminal) would get rich's 80-column default and squeeze tables; use a
# wide page instead unless COLUMNS says otherwise.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 160
console = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

JSON_OPTION = typer.Option(False, "--json", help="Print machine-readable JSON instead of tables.")


@dataclass
class _State:
    debug: bool = False


STATE = _State()


def _default(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    return str(obj)


def fmt_value(value: Any, digits: int = 4) -> str:
    """A table cell: ``-`` for missing, yes/no for bools, ``digits`` significant for floats."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def emit_json(data: Any) -> None:
    """Write ``data`` as indented JSON to stdout."""
    sys.stdout.write(
        orjson.dumps(
            data, default=_default, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
        ).decode()
        + "\n"
    )
    sys.stdout.flush()


def fail(message: str, code: int = 1) -> NoReturn:
    """Print one clear error line to stderr and exit with ``code``."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    raise typer.Exit(code)


def settings() -> Settings:
    """Settings from the environment (``FLOTILLA_*``), built at the edge."""
    return Settings.from_env()


def open_workspace() -> Workspace:
    """Open the workspace of the current settings, applying migrations on first use."""
    from flotilla.workspace import Workspace

    return Workspace.open(settings())
