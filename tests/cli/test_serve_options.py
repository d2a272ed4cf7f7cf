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
