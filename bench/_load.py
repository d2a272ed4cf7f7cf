"""Shared load-generation helpers for the benches (run from ``bench/*.py``).

- :func:`python_load` runs a closed-loop HTTP/1.1 keep-alive client (raw asyncio sockets, one
  connection per concurrent user) in a *separate process* (this file run as a script) and
  returns every request's own latency, so percentiles are not corrected for coordinated
  omission. It tops out near a few thousand requests/s on this machine.
- :func:`wrk_load` runs ``wrk`` (when installed) for throughput; its latency percentiles are
  wrk's own (wrk 4 corrects them for coordinated omission; reported as such).
- :func:`start_server` / :func:`stop_server` run a server command and wait for it to answer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "free_port",
    "percentile",
    "python_load",
    "start_server",
    "stop_server",
    "summarize",
    "wrk_load",
]


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` percentile (0-100) of ``values`` by nearest rank; NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def start_server(
    cmd: list[str], port: int, *, env: dict[str, str] | None = None, ready_path: str = "/healthz"
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` and wait (up to 90 s) until ``GET ready_path`` answers 200."""
    log = tempfile.NamedTemporaryFile(prefix="bench-server-", suffix=".log", delete=False)
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    began = time.monotonic()
    while time.monotonic() - began < 90:
        if proc.poll() is not None:
            raise RuntimeError(f"server {cmd} exited; see {log.name}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(f"GET {ready_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise RuntimeError(f"server {cmd} did not answer within 90 s; see {log.name}")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server gracefully (SIGINT), then kill it after 20 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system, all threads) used so far by ``pid`` and its descendants.

    Read from ``/proc`` (Linux); ``None`` elsewhere. Descendants count while they live
    (``mlflow models serve`` runs its server as a child process).
    """
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(used.get(p, 0.0) for p in tree)


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """req/s, p50, p99 (ms) and non-2xx of one load run."""
    lat = result.get("latencies_ms", [])
    return {
        "requests": result["requests"],
        "rps": result["requests"] / result["seconds"],
        "p50_ms": result.get("p50_ms", percentile(lat, 50)),
        "p99_ms": result.get("p99_ms", percentile(lat, 99)),
        "non_2xx": result["non_2xx"],
        "client": result["client"],
        "cpu_us_per_request": (
            result["cpu_s"] / result["requests"] * 1e6
            if result.get("cpu_s") is not None and result["requests"]
            else None
        ),
    }


def python_load(
    port: int,
    requests: list[dict[str, Any]],
    *,
    concurrency: int,
    seconds: float,
    keep: bool = False,
) -> dict[str, Any]:
    """Run the closed-loop client in a separate process; ``requests`` = [{path, body}]."""
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        spec = Path(tmp) / "requests.json"
        out = Path(tmp) / "out.json"
        spec.write_text(json.dumps(requests))
        cmd = [
            sys.executable,
            __file__,
            "--port",
            str(port),
            "--requests",
            str(spec),
            "--concurrency",
            str(concurrency),
            "--seconds",
            str(seconds),
            "--out",
            str(out),
        ]
        if keep:
            cmd.append("--keep")
        subprocess.run(cmd, check=True, timeout=seconds + 120)
        result: dict[str, Any] = json.loads(out.read_text())
        return result


_WRK_LUA = """
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
"""


def wrk_load(
    port: int, path: str, body: str, *, concurrency: int, seconds: float, threads: int = 1
) -> dict[str, Any] | None:
    """Run wrk against ``path`` with ``body``; ``None`` when wrk is not installed."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(_WRK_LUA.format(body=json.dumps(body)))
        script = fh.name
    try:
        proc = subprocess.run(
            [
                wrk,
                f"-t{threads}",
                f"-c{concurrency}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                "-s",
                script,
                f"http://127.0.0.1:{port}{path}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        os.unlink(script)
    text = proc.stdout
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    secs = float(re.search(r"requests in ([\d.]+)s", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {
        "requests": total,
        "seconds": secs,
        "p50_ms": _wrk_ms(text, "50%"),
        "p99_ms": _wrk_ms(text, "99%"),
        "non_2xx": int(bad.group(1)) if bad else 0,
        "socket_errors": errors.group(1) if errors else "",
        "client": "wrk (latency corrected for coordinated omission)",
    }


def _wrk_ms(text: str, label: str) -> float:
    found = re.search(rf"^\s*{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", text, re.MULTILINE)
    if found is None:
        return float("nan")
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


# -- the client process -------------------------------------------------------------------


async def _user(
    port: int,
    requests: list[tuple[bytes, int]],
    stop_at: float,
    results: list[Any],
    keep: bool,
    seed: int,
) -> None:
    rng = random.Random(seed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    clock = time.perf_counter
    try:
        while clock() < stop_at:
            raw, index = requests[rng.randrange(len(requests))]
            began = clock()
            writer.write(raw)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            server_ms = None
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
                elif keep and line[:14].lower() == b"server-timing:" and b"dur=" in line:
                    server_ms = float(line.split(b"dur=", 1)[1].split(b",", 1)[0])
            body = await reader.readexactly(length)
            took = (clock() - began) * 1000
            if keep:
                results.append((index, status, took, body, server_ms))
            else:
                results.append((index, status, took, None, None))
    finally:
        writer.close()


async def _run(
    port: int, specs: list[dict[str, Any]], concurrency: int, seconds: float, keep: bool
) -> dict[str, Any]:
    requests = []
    for i, spec in enumerate(specs):
        body = spec["body"].encode()
        head = (
            f"POST {spec['path']} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        requests.append((head + body, i))
    results: list[Any] = []
    began = time.perf_counter()
    stop_at = began + seconds
    await asyncio.gather(
        *(_user(port, requests, stop_at, results, keep, seed) for seed in range(concurrency))
    )
    took = time.perf_counter() - began
    out: dict[str, Any] = {
        "requests": len(results),
        "seconds": took,
        "non_2xx": sum(1 for r in results if not 200 <= r[1] < 300),
        "latencies_ms": [r[2] for r in results],
        "client": "python closed loop (each request's own latency)",
    }
    if keep:
        out["responses"] = [
            {"index": r[0], "status": r[1], "ms": r[2], "body": json.loads(r[3]), "server_ms": r[4]}
            for r in results
        ]
    return out


def _main() -> None:
    parser = argparse.ArgumentParser(description="Closed-loop HTTP load (used by the benches).")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", type=Path, required=True)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", action="store_true", help="keep every response body")
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    specs = json.loads(args.requests.read_text())
    result = asyncio.run(_run(args.port, specs, args.concurrency, args.seconds, args.keep))
    args.out.write_text(json.dumps(result))


if __name__ == "__main__":
    _main()
