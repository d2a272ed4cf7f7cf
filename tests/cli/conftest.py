from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def flotilla(tmp_path: Path) -> Run:
    """Run the real ``flotilla`` command in a subprocess with a temporary home."""
    home = tmp_path / "home"

    def run(
        *args: str, check: bool | None = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "FLOTILLA_HOME": str(home), "FLOTILLA_ACTOR": "cli-tester"}
        full_env.pop("FLOTILLA_DB_URL", None)
        full_env.update(env or {})
        proc = subprocess.run(
            [sys.executable, "-m", "flotilla", *args],
            capture_output=True,
            text=True,
            env=full_env,
            cwd=tmp_path,
            timeout=240,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"flotilla {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    return run
