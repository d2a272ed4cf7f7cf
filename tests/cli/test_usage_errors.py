"""Command-line usage errors: click's usage line and the problem, exit 2, never "unexpected"."""

from __future__ import annotations

import pytest

from flotilla.cli.main import main


@pytest.mark.parametrize(
    ("argv", "usage", "problem"),
    [
        (["nosuch"], "Usage: flotilla [OPTIONS] COMMAND", "No such command 'nosuch'"),
        (["models", "lst"], "Usage: flotilla models", "Did you mean 'list'?"),
        (["records", "tail"], "Usage: flotilla records tail", "Missing argument"),
        (["records", "tail", "churn", "--limit", "3"], "flotilla records tail", "--limit"),
        (["serve", "--port", "eighty"], "Usage: flotilla serve", "Invalid value for '--port'"),
    ],
)
def test_usage_errors_show_usage_and_exit_2(
    argv: list[str], usage: str, problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert usage in err and problem in err
    assert "Try 'flotilla" in err and "--help' for help" in err
    assert "unexpected" not in err


def test_a_command_error_still_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["serve", "--workers", "0"])
    assert exited.value.code == 1
    assert "The '--workers' option must be at least 1" in capsys.readouterr().err
