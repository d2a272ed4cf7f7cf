"""``flotilla compare MODEL --challenger REF``: the named shadow is judged, not the default."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from typer.testing import CliRunner, Result

from flotilla.cli.main import app
from flotilla.errors import AliasNotFoundError, ModelNotFoundError, VersionNotFoundError
from flotilla.settings import Settings
from flotilla.workspace import Workspace
from shadow_support import deploy_churn, record_labeled, register_tiny

Run = Callable[..., subprocess.CompletedProcess[str]]
# signal strength of each version's probabilities (0: coin flips)
SIGNAL = {"churn@1": 0.8, "churn@2": 2.0, "churn@3": 0.0}
N = 400


@pytest.fixture
def home(tmp_path: Path) -> tuple[Settings, dict[str, Any]]:
    """churn@1 live with churn@2 (better) and churn@3 (worse) in the shadows, both answering
    every request, 400 labeled requests over 3 days, an alias ``churn@candidate`` -> 3, and a
    second model ``other``. Returns the settings and the data each version saw."""
    settings = Settings(home=tmp_path / "home", actor="setup")
    ws = Workspace.open(settings)
    versions = [("churn", 0.4), ("churn", 0.6), ("churn", 0.7), ("other", 0.1)]
    register_tiny(ws, tmp_path, versions, module="tiny_challenger_model")
    ws.registry.set_alias("churn", "candidate", 3, actor="setup")
    policy = {"min_labeled": 200, "min_days": 1, "metric": "logloss"}
    deploy_churn(ws, shadows=("churn@2", "churn@3"), promotion=policy, actor="setup")
    rng = np.random.default_rng(12)
    y = rng.integers(0, 2, N)
    probs = {
        ref: 1 / (1 + np.exp(-(signal * (2 * y - 1) + rng.normal(size=N))))
        for ref, signal in SIGNAL.items()
    }
    record_labeled(
        settings.records, probs, y, days=3, label_delay=timedelta(0), prefix="q", latency_ms=2.0
    )
    return settings, {"y": y, **probs}


def invoke(settings: Settings, *args: str) -> Result:
    """Run the CLI in this process; errors stay in ``result.exception``."""
    env = {"FLOTILLA_HOME": str(settings.home), "FLOTILLA_ACTOR": "cli-tester"}
    return CliRunner().invoke(app, list(args), env=env)


def _json(result: Result) -> dict[str, Any]:
    assert result.exit_code == 0, result.output + repr(result.exception)
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def _logloss(data: dict[str, Any], ref: str) -> float:
    return float(skm.log_loss(data["y"], data[ref], labels=[0, 1]))


@pytest.fixture(autouse=True)
def _no_db_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOTILLA_DB_URL", raising=False)


@pytest.mark.parametrize(
    ("given", "judged", "verdict"),
    [
        (None, "churn@2", "promote"),  # default: the deployment's first shadow
        ("churn@2", "churn@2", "promote"),
        ("churn@3", "churn@3", "reject"),
        ("churn@candidate", "churn@3", "reject"),  # an alias resolves to its exact version
    ],
    ids=["default", "first-shadow", "second-shadow", "alias"],
)
def test_challenger_picks_the_given_shadow(
    home: tuple[Settings, dict[str, Any]], given: str | None, judged: str, verdict: str
) -> None:
    settings, data = home
    args = ["compare", "churn", "--json"] + ([] if given is None else ["--challenger", given])
    out = _json(invoke(settings, *args))
    assert (out["champion"], out["challenger"], out["metric"]) == ("churn@1", judged, "logloss")
    assert out["verdict"] == verdict
    assert out["labeled_pairs"] == N
    # the numbers are those of the judged shadow's own predictions
    assert out["champion_metric"]["value"] == pytest.approx(_logloss(data, "churn@1"))
    assert out["challenger_metric"]["value"] == pytest.approx(_logloss(data, judged))
    want = _logloss(data, judged) - _logloss(data, "churn@1")
    assert out["difference"]["value"] == pytest.approx(want)


def test_challenger_in_the_table_output(home: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = home
    result = invoke(settings, "compare", "churn", "--challenger", "churn@3")
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "churn@1 (champion) vs churn@3 (challenger)" in result.stdout
    assert "verdict: reject" in result.stdout


@pytest.mark.parametrize(
    ("ref", "error", "words"),
    [
        ("churn@9", VersionNotFoundError, ("churn", "9")),
        ("churn@nope", AliasNotFoundError, ("churn", "nope")),
        ("ghost@1", ModelNotFoundError, ("ghost",)),
    ],
    ids=["unknown-version", "unknown-alias", "unknown-model"],
)
def test_unknown_challenger_is_a_clear_error(
    home: tuple[Settings, dict[str, Any]], ref: str, error: type[Exception], words: tuple[str, ...]
) -> None:
    settings, _ = home
    result = invoke(settings, "compare", "churn", "--challenger", ref, "--json")
    assert result.exit_code != 0
    assert isinstance(result.exception, error)
    message = str(result.exception)
    assert all(w in message for w in words), message
    assert result.stdout == ""  # no half-written JSON report


def test_unknown_challenger_through_the_real_command(
    flotilla: Run, home: tuple[Settings, dict[str, Any]]
) -> None:
    """What a user sees: exit 1, one line naming the versions there are, no traceback."""
    settings, _ = home
    env = {"FLOTILLA_HOME": str(settings.home)}
    proc = flotilla("compare", "churn", "--challenger", "churn@9", "--json", check=False, env=env)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "Model 'churn' has no version 9. Its versions are 1, 2, 3." in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_challenger_of_another_model_is_refused(home: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = home
    result = invoke(settings, "compare", "churn", "--challenger", "other@1", "--json")
    assert result.exit_code != 0
    assert "other@1" in str(result.exception) and "churn" in str(result.exception)


def test_the_live_version_is_no_challenger(home: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = home
    result = invoke(settings, "compare", "churn", "--challenger", "churn@1", "--json")
    assert result.exit_code != 0
    assert "live version" in str(result.exception)
