"""The ``flotilla`` command: one Typer app, each command group in its own module."""

from __future__ import annotations

import sys
import traceback

import click
import typer
from rich.markup import escape

from flotilla.cli import (
    _alerts,
    _audit,
    _deploy,
    _evaluation,
    _health,
    _monitor,
    _quickstart,
    _records,
    _registry,
    _serve,
)
from flotilla.cli._groups import Groups
from flotilla.cli._output import STATE, err_console
from flotilla.errors import FlotillaError

__all__ = ["app", "main"]

app = typer.Typer(
    name="flotilla",
    help="Flotilla: keep a portfolio of ML models available, honest and auditable.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show a full traceback on errors."),
) -> None:
    STATE.debug = debug


groups = Groups.create()
for name, sub in groups.items():
    app.add_typer(sub, name=name)
for module in (
    _registry,
    _deploy,
    _serve,
    _records,
    _evaluation,
    _monitor,
    _health,
    _alerts,
    _audit,
    _quickstart,
):
    module.register(app, groups)


def _usage_error(exc: Exception) -> bool:
    """Whether ``exc`` is a command-line usage error (unknown command, missing argument,
    bad option value): click's own, or those of the click that Typer >= 0.20 vendors (its
    ``typer._click`` classes are not ``click.ClickException`` subclasses)."""
    return isinstance(exc, click.ClickException) or any(
        cls.__name__ == "ClickException" for cls in type(exc).__mro__
    )


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script; errors print one line unless ``--debug``.

    Usage errors print the command's usage line and the problem, as click does, and exit 2.
    """
    args = sys.argv[1:] if argv is None else argv
    STATE.debug = "--debug" in args
    try:
        rv = app(args=args, prog_name="flotilla", standalone_mode=False)
    except FlotillaError as exc:
        if STATE.debug:
            traceback.print_exc()
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", markup=True, highlight=False)
        sys.exit(1)
    except (click.exceptions.Abort, typer.Abort):
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # an unexpected failure: one line, traceback with --debug
        if _usage_error(exc):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(int(exc.exit_code))  # type: ignore[attr-defined]
        if STATE.debug:
            traceback.print_exc()
        err_console.print(
            f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(str(exc))} "
            "(run again with --debug for the traceback)",
            markup=True,
            highlight=False,
        )
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)
