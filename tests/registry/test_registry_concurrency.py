"""Real processes registering versions of one model at once get distinct numbers."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from flotilla.registry import Registry
from flotilla.settings import Settings

PROCESSES = 4
EACH = 5

WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from flotilla.registry import Registry
    from flotilla.settings import Settings

    home, url, go, me = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    reg = Registry.open(Settings(home=home, db_url=url, actor=me))
    (go.parent / f"ready-{me}").touch()
    deadline = time.monotonic() + 60
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    for i in range(int(sys.argv[5])):
        v = reg.register_version(
            "churn", flavor="static", artifact=None, params={"i": i}, actor=me
        )
        print(v.version, flush=True)
    print("rev", reg.put_deployment("churn", {"by": me}, actor=me).revision, flush=True)
    reg.close()
    """
)


@pytest.mark.slow
def test_concurrent_processes_get_distinct_versions(settings: Settings, tmp_path: Path) -> None:
    with Registry.open(settings) as reg:
        reg.create_model("churn", task="classification", actor="setup")
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WORKER,
                str(settings.home),
                settings.db_url,
                str(go),
                f"worker{n}",
                str(EACH),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in range(PROCESSES)
    ]
    try:
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("ready-*"))) < PROCESSES:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    printed = [line.split() for out, _ in outputs for line in out.splitlines() if line]
    numbers = sorted(int(x[0]) for x in printed if x[0] != "rev")
    revisions = sorted(int(x[1]) for x in printed if x[0] == "rev")
    assert numbers == list(range(1, PROCESSES * EACH + 1))
    assert revisions == list(range(1, PROCESSES + 1))
    with Registry.open(settings) as reg:
        assert [v.version for v in reg.list_versions("churn")] == numbers
        registered = [e for e in reg.audit_trail() if e.action == "version.register"]
        assert len(registered) == PROCESSES * EACH
        assert {e.actor for e in registered} == {f"worker{n}" for n in range(PROCESSES)}
        assert len(reg.deployment_history("churn")) == PROCESSES
