"""``flotilla monitor run`` evaluates the rules and auto-promotes challengers in one pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flotilla.cli.main import app


def test_monitor_run_reports_auto_promotions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLOTILLA_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)
    result = CliRunner().invoke(app, ["monitor", "run", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["auto_promotions"] == []
    assert "evaluation" in data or "rules" in data
