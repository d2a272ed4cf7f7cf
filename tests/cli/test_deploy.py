"""``flotilla deploy``, ``deployments`` and ``rollback`` through the command's entry point.

Most calls run ``flotilla.cli.main.main`` in-process (the real entry point, with its exit
codes and error printing); one test runs the installed command in a subprocess.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from flotilla.cli.main import main
from flotilla.registry import Registry
from flotilla.settings import Settings
from flotilla.signature import Signature

Run = Callable[..., subprocess.CompletedProcess[str]]


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(
    home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run ``flotilla ARGS`` in-process on the fixture home; returns code, stdout, stderr."""
    monkeypatch.setenv("FLOTILLA_HOME", str(home / "home"))
    monkeypatch.setenv("FLOTILLA_ACTOR", "cli-tester")
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    monkeypatch.chdir(home)

    def run(*args: str, check: bool = True) -> Result:
        capsys.readouterr()
        with pytest.raises(SystemExit) as info:
            main(list(args))
        captured = capsys.readouterr()
        code = info.value.code if isinstance(info.value.code, int) else 1
        if check and code != 0:
            raise AssertionError(f"flotilla {' '.join(args)} exited {code}\n{captured.err}")
        return Result(code, captured.out, captured.err)

    return run


PORTFOLIO = """\
models:
  churn:
    live: churn@champion
    deadline_ms: {deadline}
    fallbacks: [churn@1, churn-base]
"""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The fixture home of ``flotilla`` with churn@1, churn@2 (champion) and churn-base@1."""
    registry = Registry.open(Settings(home=tmp_path / "home", actor="tester"))
    signature = Signature.from_dict(
        {"inputs": [{"name": "age", "type": "float"}], "output": {"kind": "probability"}}
    )
    for name, flavor, params in (
        ("churn", "python", {"answer": 0.3}),
        ("churn", "python", {"answer": 0.6}),
        ("churn-base", "static", {"value": 0.1}),
    ):
        registry.ensure_model(name, task="classification", signature=signature, actor="tester")
        registry.register_version(
            name,
            flavor=flavor,
            artifact=None,
            entry="m:Model" if flavor == "python" else None,
            params=params,
            signature=signature,
            actor="tester",
        )
    registry.set_alias("churn", "champion", 2, actor="tester")
    registry.close()
    return tmp_path


def _write(home: Path, text: str, name: str = "portfolio.yaml") -> str:
    (home / name).write_text(text, encoding="utf-8")
    return name


def test_deploy_dry_run_apply_and_unchanged(cli: Callable[..., Result], home: Path) -> None:
    path = _write(home, PORTFOLIO.format(deadline=40))
    dry = json.loads(cli("deploy", path, "--dry-run", "--json").stdout)
    assert dry["dry_run"] is True
    assert [(c["model"], c["action"], c["revision"]) for c in dry["changes"]] == [
        ("churn", "create", None)
    ]
    assert json.loads(cli("deployments", "--json").stdout) == []

    text = cli("deploy", path).stdout
    assert "churn" in text and "create" in text and "1 create" in text

    again = json.loads(cli("deploy", path, "--json").stdout)
    assert again["changes"][0]["action"] == "unchanged"
    rows = json.loads(cli("deployments", "--json").stdout)
    assert rows[0]["model"] == "churn" and rows[0]["revision"] == 1
    assert rows[0]["live_version"] == "churn@2"
    assert rows[0]["actor"] == "cli-tester"
    assert rows[0]["chain"] == "churn@champion -> churn@1 -> churn-base"


def test_the_installed_command_deploys(flotilla: Run, home: Path) -> None:
    path = _write(home, PORTFOLIO.format(deadline=40))
    out = json.loads(flotilla("deploy", path, "--json").stdout)
    assert [(c["model"], c["action"], c["revision"]) for c in out["changes"]] == [
        ("churn", "create", 1)
    ]
    bad = _write(home, "models:\n  churn: {live: churn@1, deadline_ms: 0}\n", "bad.yaml")
    proc = flotilla("deploy", bad, check=False)
    assert proc.returncode == 1
    assert "line 2: The 'deadline_ms' of model 'churn' must be a number greater than 0" in (
        proc.stderr
    )


def test_deploy_refuses_with_every_problem(cli: Callable[..., Result], home: Path) -> None:
    bad = _write(
        home,
        "models:\n  churn:\n    live: churn@champ\n    fallbacks: [churn@1, churn@1]\n",
    )
    proc = cli("deploy", bad, check=False)
    assert proc.returncode == 1
    assert "has 3 problems" in proc.stderr
    assert "no alias 'champ'" in proc.stderr and "Did you mean 'champion'?" in proc.stderr
    assert "'churn@1' appears twice" in proc.stderr
    assert "does not end in a static step" in proc.stderr
    assert "{static: {value: 0.0}}" in proc.stderr
    out = json.loads(cli("deploy", bad, "--json", check=False).stdout)
    assert out["ok"] is False and len(out["problems"]) == 3

    syntax = _write(home, "models:\n  churn: {live: churn@1\n", "broken.yaml")
    proc = cli("deploy", syntax, check=False)
    assert proc.returncode == 1
    assert "YAML syntax error at line 3, column 1" in proc.stderr
    assert json.loads(cli("deployments", "--json").stdout) == []


def test_history_and_rollback(cli: Callable[..., Result], home: Path) -> None:
    cli("deploy", _write(home, PORTFOLIO.format(deadline=40)))
    cli("deploy", _write(home, PORTFOLIO.format(deadline=60)), "--reason", "slow peak")
    detail = json.loads(cli("deployments", "churn", "--json").stdout)
    assert [r["revision"] for r in detail["history"]] == [1, 2]
    assert detail["current"]["reason"] == "slow peak"
    assert detail["current"]["diff"] == {"deadline_ms": {"before": 40.0, "after": 60.0}}
    text = cli("deployments", "churn").stdout
    assert "revision 2" in text and "slow peak" in text

    back = json.loads(cli("rollback", "churn", "--json").stdout)
    assert back["revision"] == 3 and back["spec"]["deadline_ms"] == 40.0
    assert back["actor"] == "cli-tester"

    missing = cli("rollback", "churn", "--to", "9", check=False)
    assert missing.returncode == 1
    assert "no deployment revision 9" in missing.stderr
    unknown = cli("deployments", "nope", check=False)
    assert unknown.returncode == 1 and "No model is named 'nope'" in unknown.stderr
