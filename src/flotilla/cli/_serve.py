"""``flotilla serve``: run the gateway with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import typer

from flotilla.cli._groups import Groups
from flotilla.cli._output import console, fail, open_workspace, settings

__all__ = ["register", "serve"]


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Interface to listen on."),
    port: int = typer.Option(8000, "--port", help="TCP port to listen on."),
    workers: int = typer.Option(1, "--workers", help="Worker processes (each loads every model)."),
    max_body_mb: float = typer.Option(
        10.0, "--max-body-mb", help="Bodies larger than this many MiB are answered 413."
    ),
    records: bool = typer.Option(
        True, "--records/--no-records", help="Write a prediction record per request."
    ),
    flush_interval: float = typer.Option(
        1.0, "--flush-interval", help="Seconds between flushes of prediction records to disk."
    ),
    records_helper: bool = typer.Option(
        True,
        "--records-helper/--no-records-helper",
        help="Convert and write prediction records in a helper process per worker, off the "
        "serving process's interpreter lock (--no-records-helper: in a thread).",
    ),
    monitor: bool = typer.Option(
        False, "--monitor", help="Evaluate the alert rules in the background (one worker)."
    ),
    monitor_interval: float = typer.Option(
        300.0, "--monitor-interval", help="Seconds between two evaluations with --monitor."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="uvicorn's log level."),
    threads: int = typer.Option(
        64,
        "--threads",
        help="Model calls that run at once in the thread pool, per worker (calls abandoned "
        "at their deadline do not count).",
    ),
    processes: int = typer.Option(
        0,
        "--processes",
        help="Run python-flavor models in this many worker processes per server worker, "
        "instead of threads (0: threads).",
    ),
    inline_below_ms: float = typer.Option(
        0.25,
        "--inline-below-ms",
        help="Native model calls (onnx, lightgbm, sklearn) learned to take at most this many "
        "ms run on the event loop, without the thread hop; 0: always the thread pool.",
    ),
    shadow_deadline_ms: float = typer.Option(
        1000.0,
        "--shadow-deadline-ms",
        help="The most one shadow call may take; a slower one is abandoned and recorded as "
        "a timeout.",
    ),
    shadow_threads: int = typer.Option(
        4, "--shadow-threads", help="Shadow calls that run at once, per worker."
    ),
    shadow_queue: int = typer.Option(
        1000,
        "--shadow-queue",
        help="Shadow jobs that may wait, per worker; beyond it they are dropped and counted "
        "(flotilla_shadow_dropped_total).",
    ),
) -> None:
    """Serve every deployed model (KServe V1 API, /metrics, /healthz, /readyz).

    New deployment revisions and alias moves are picked up within 2 s without a restart.
    """
    import uvicorn

    if workers < 1:
        fail(f"The '--workers' option must be at least 1. Got {workers} instead.")
    if not 0 < port < 65536:
        fail(f"The '--port' option must be in 1..65535. Got {port} instead.")
    if monitor and workers > 1:
        fail(
            "The '--monitor' option runs the alert loop inside the single serving process; "
            "with --workers > 1 schedule 'flotilla monitor run' (e.g. from cron) instead."
        )
    if monitor_interval <= 0:
        fail(f"The '--monitor-interval' option must be positive. Got {monitor_interval} instead.")
    if flush_interval <= 0:
        fail(f"The '--flush-interval' option must be positive. Got {flush_interval} instead.")
    if max_body_mb <= 0:
        fail(f"The '--max-body-mb' option must be positive. Got {max_body_mb} instead.")
    current = settings()
    os.environ["FLOTILLA_HOME"] = str(current.home)
    os.environ["FLOTILLA_DB_URL"] = current.db_url
    os.environ["FLOTILLA_MAX_BODY_BYTES"] = str(int(max_body_mb * 1024 * 1024))
    os.environ["FLOTILLA_RECORDS"] = "1" if records else "0"
    os.environ["FLOTILLA_FLUSH_INTERVAL"] = str(flush_interval)
    os.environ["FLOTILLA_RECORDS_HELPER"] = "1" if records_helper else "0"
    if monitor:
        os.environ["FLOTILLA_MONITOR_INTERVAL"] = str(monitor_interval)
    else:
        os.environ.pop("FLOTILLA_MONITOR_INTERVAL", None)
    if processes < 0:
        fail(f"The '--processes' option must be 0 (threads) or more. Got {processes} instead.")
    os.environ["FLOTILLA_PROCESSES"] = str(processes)
    if threads < 1:
        fail(f"The '--threads' option must be at least 1. Got {threads} instead.")
    os.environ["FLOTILLA_THREADS"] = str(threads)
    if not inline_below_ms >= 0:
        fail(
            "The '--inline-below-ms' option must be 0 (always the thread pool) or more. "
            f"Got {inline_below_ms} instead."
        )
    os.environ["FLOTILLA_INLINE_BELOW_MS"] = str(inline_below_ms)
    if not shadow_deadline_ms > 0:
        fail(
            "The '--shadow-deadline-ms' option must be a positive number of milliseconds. "
            f"Got {shadow_deadline_ms} instead."
        )
    for name, value in (("--shadow-threads", shadow_threads), ("--shadow-queue", shadow_queue)):
        if value < 1:
            fail(f"The '{name}' option must be at least 1. Got {value} instead.")
    os.environ["FLOTILLA_SHADOW_DEADLINE_MS"] = str(shadow_deadline_ms)
    os.environ["FLOTILLA_SHADOW_THREADS"] = str(shadow_threads)
    os.environ["FLOTILLA_SHADOW_QUEUE"] = str(shadow_queue)
    deployed = _deployed_models()
    metrics_dir: Path | None = None
    if workers > 1:
        metrics_dir = Path(tempfile.mkdtemp(prefix="flotilla-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    console.print(
        f"Flotilla gateway on http://{host}:{port} ({workers} worker(s)); "
        f"registry {current.db_url}",
        markup=False,
    )
    if not deployed:
        console.print(
            "No model is deployed yet: every predict call answers 404 until "
            "'flotilla deploy PORTFOLIO.yaml' writes a deployment (picked up within 2 s, "
            "no restart needed).",
            markup=False,
        )
    try:
        uvicorn.run(
            "flotilla.gateway.app:factory",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level=log_level,
            access_log=False,
            # Flotilla never reads the client's address or scheme: X-Forwarded-* rewriting
            # would cost every request a middleware frame and a header scan for nothing
            proxy_headers=False,
            server_header=False,  # one header less to validate and send per response
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _deployed_models() -> int:
    """How many models have a current deployment (opening the registry here also reports an
    unreachable or unmigrated database before any worker starts)."""
    registry = open_workspace().registry
    try:
        return len(registry.current_deployments())
    finally:
        registry.close()


def register(app: typer.Typer, groups: Groups) -> None:
    """Add ``serve`` to the app."""
    app.command("serve")(serve)
