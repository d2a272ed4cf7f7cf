"""``flotilla serve`` refuses out-of-range pool options before it starts anything."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from flotilla.gateway.app import factory

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "'--threads' option must be at least 1"),
        (["--inline-below-ms", "-1"], "'--inline-below-ms' option must be 0"),
        (["--shadow-deadline-ms", "0"], "'--shadow-deadline-ms' option must be a positive"),
        (["--shadow-threads", "0"], "'--shadow-threads' option must be at least 1"),
        (["--shadow-queue", "0"], "'--shadow-queue' option must be at least 1"),
    ],
    ids=["threads", "inline-below-ms", "shadow-deadline", "shadow-threads", "shadow-queue"],
)
def test_bad_pool_options_are_refused(flotilla: Run, args: list[str], message: str) -> None:
    proc = flotilla("serve", *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr


def test_the_worker_app_takes_the_shadow_options_from_serve(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # `serve` hands its options to each uvicorn worker through the environment
    monkeypatch.setenv("FLOTILLA_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FLOTILLA_SHADOW_DEADLINE_MS", "250")
    monkeypatch.setenv("FLOTILLA_SHADOW_THREADS", "2")
    monkeypatch.setenv("FLOTILLA_SHADOW_QUEUE", "7")
    monkeypatch.setenv("FLOTILLA_RECORDS_HELPER", "0")
    app = factory()
    try:
        mirror = app.mirror
        assert mirror is not None
        assert (mirror.deadline_s, mirror.concurrency, mirror.capacity) == (0.25, 2, 7)
    finally:
        app.stop()


def test_an_unreachable_registry_stops_serve_before_it_starts(flotilla: Run) -> None:
    proc = flotilla(
        "serve", check=False, env={"FLOTILLA_DB_URL": "postgresql://postgres@127.0.0.1:1/nope"}
    )
    assert proc.returncode == 1
    assert "Cannot use the registry database" in proc.stderr
    assert "Flotilla gateway on" not in proc.stdout  # no banner for a server that never ran


def test_serve_says_when_nothing_is_deployed(tmp_path: Path) -> None:
    import os
    import sys

    # uvicorn.run replaced by a no-op: only what `serve` prints before it starts is checked
    code = (
        "import uvicorn; uvicorn.run = lambda *a, **k: None\n"
        "from flotilla.cli.main import main; main(['serve', '--port', '8999'])\n"
    )
    env = {**os.environ, "FLOTILLA_HOME": str(tmp_path / "home")}
    env.pop("FLOTILLA_DB_URL", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    out = " ".join(proc.stdout.split())
    assert "Flotilla gateway on http://127.0.0.1:8999" in out
    assert "No model is deployed yet" in out and "flotilla deploy PORTFOLIO.yaml" in out
