"""The registry commands through the real console entry point."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Run = Callable[..., subprocess.CompletedProcess[str]]

MODEL_PY = (
    "class Echo:\n    def predict(self, records):\n        return [r['x'] for r in records]\n"
)


def _files(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "echo.py").write_text(MODEL_PY)
    sig = tmp_path / "sig.yaml"
    sig.write_text("inputs:\n  - {name: x, type: float, min: 0}\noutput: {kind: score}\n")
    return tmp_path / "echo.py", sig


def test_register_show_alias_check_trail(flotilla: Run, tmp_path: Path) -> None:
    model, sig = _files(tmp_path)
    assert "ready" in flotilla("init").stdout
    args = ["models", "register", "echo", "--flavor", "python", "--artifact", str(model)]
    args += ["--entry", "echo:Echo", "--signature", str(sig), "--metric", "rmse=0.1"]
    assert flotilla(*args).stdout.strip() == "echo@1"
    assert flotilla(*args, "--alias", "champion").stdout.strip() == "echo@2"
    shown = json.loads(flotilla("models", "show", "echo", "--json").stdout)
    assert shown["name"] == "echo" and shown["task"] == "regression"
    assert [v["version"] for v in shown["versions"]] == [1, 2]
    assert shown["versions"][0]["metrics"] == {"rmse": 0.1}
    assert shown["aliases"] == {"champion": 2}
    flotilla("models", "alias", "echo@1", "champion")
    assert json.loads(flotilla("models", "show", "echo", "--json").stdout)["aliases"] == {
        "champion": 1
    }
    listed = json.loads(flotilla("models", "list", "--json").stdout)
    assert [m["name"] for m in listed] == ["echo"]
    check = json.loads(flotilla("models", "check", "echo@champion", "--json").stdout)
    assert check["ok"] is True
    table = flotilla("models", "check", "echo@champion").stdout  # the terminal form too
    assert "Conformance of echo@1" in table and "one_per_record" in table and "FAIL" not in table
    (tmp_path / "rude.py").write_text(  # registers (it answers), but changes its input
        "class Rude:\n    def predict(self, records):\n"
        "        out = [r['x'] for r in records]\n"
        "        for r in records:\n            r['x'] = -1.0\n"
        "        return out\n"
    )
    rude = ["models", "register", "rude", "--flavor", "python", "--artifact"]
    rude += [str(tmp_path / "rude.py"), "--entry", "rude:Rude", "--signature", str(sig)]
    flotilla(*rude)
    failed = flotilla("models", "check", "rude@1", check=False)
    assert failed.returncode == 1
    assert "FAIL" in failed.stdout and "input_unchanged" in failed.stdout
    trail = json.loads(flotilla("audit-trail", "--model", "echo", "--json").stdout)
    assert len(trail) >= 4
    assert "alias.set" in flotilla("audit-trail").stdout


def test_errors_are_one_clear_line(flotilla: Run, tmp_path: Path) -> None:
    model, sig = _files(tmp_path)
    bad = flotilla("models", "register", "echo", "--flavor", "tensorflow", check=False)
    assert bad.returncode != 0
    assert "flavor must be one of" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad_name = flotilla(
        "models", "register", "Bad Name", "--flavor", "python", "--artifact", str(model),
        "--entry", "echo:Echo", "--signature", str(sig), check=False,
    )  # fmt: skip
    assert bad_name.returncode != 0 and "Bad Name" in bad_name.stderr
    typo = tmp_path / "typo.yaml"
    typo.write_text("inputs:\n  - {name: x, type: flaot}\noutput: {kind: score}\n")
    bad_sig = flotilla(
        "models", "register", "echo", "--flavor", "python", "--artifact", str(model),
        "--entry", "echo:Echo", "--signature", str(typo), check=False,
    )  # fmt: skip
    assert bad_sig.returncode != 0 and "Did you mean 'float'" in bad_sig.stderr
    missing = flotilla("models", "show", "nope", check=False)
    assert missing.returncode != 0 and "nope" in missing.stderr
    debug = flotilla("--debug", "models", "show", "nope", check=False)
    assert "Traceback" in debug.stderr


def test_unreachable_postgres_is_explained(flotilla: Run) -> None:
    proc = flotilla(
        "init", check=False, env={"FLOTILLA_DB_URL": "postgresql+psycopg://postgres@127.0.0.1:1/x"}
    )
    assert proc.returncode != 0
    assert "127.0.0.1:1" in proc.stderr
