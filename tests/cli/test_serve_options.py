"""``flotilla serve`` refuses out-of-range pool options before it starts anything."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "'--threads' option must be at least 1"),
        (["--inline-below-ms", "-1"], "'--inline-below-ms' option must be 0"),
    ],
    ids=["threads", "inline-below-ms"],
)
def test_bad_pool_options_are_refused(flotilla: Run, args: list[str], message: str) -> None:
    proc = flotilla("serve", *args, check=False)
    assert proc.returncode != 0
    assert message in proc.stdout + proc.stderr
