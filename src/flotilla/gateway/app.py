"""The app factory: :func:`create_app` for code and tests, :func:`factory` for uvicorn workers."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from flotilla.clock import SystemClock
from flotilla.gateway._app import DEFAULT_MAX_BODY_BYTES, Gateway, PredictionSink
from flotilla.gateway._host import DEFAULT_INLINE_BELOW_S, DeploymentSource
from flotilla.gateway._pool import ModelPool
from flotilla.gateway._source import WorkspaceSource
from flotilla.gateway.shadow import ShadowJob, ShadowMirror
from flotilla.monitoring.metrics import GatewayMetrics
from flotilla.records import RecordWriter
from flotilla.settings import Settings
from flotilla.types import Clock

__all__ = ["create_app", "factory"]

_DEFAULT_THREADS = 64


def create_app(
    target: Any,
    *,
    clock: Clock | None = None,
    metrics: GatewayMetrics | None = None,
    sink: PredictionSink | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_threads: int = _DEFAULT_THREADS,
    poll_interval_s: float = 1.0,
    device: str = "cpu",
    multiprocess_dir: str | None = None,
    inline_below_ms: float = DEFAULT_INLINE_BELOW_S * 1000,
    processes: int = 0,
    shadow_deadline_s: float = 1.0,
    shadow_capacity: int = 1000,
    shadow_threads: int = 4,
    monitor_interval_s: float | None = None,
    freeze_gc: bool = False,
) -> Gateway:
    """Build the gateway ASGI app; models load when the server starts (ASGI lifespan).

    Args:
        target: a :class:`~flotilla.settings.Settings` (the workspace is opened at startup),
            an open :class:`~flotilla.workspace.Workspace`, or any
            :class:`~flotilla.gateway.DeploymentSource`.
        clock: monotonic clock for deadlines and breakers (default: the system clock).
        metrics: Prometheus metrics (default: a fresh, private registry).
        sink: receives one :class:`~flotilla.records.PredictionEvent` per answered request
            after the response, e.g. a started :class:`~flotilla.records.RecordWriter`; it
            is closed at shutdown. A ``RecordWriter`` without an ``on_drop`` callback gets
            one that counts its drops in ``flotilla_records_dropped_total``.
        max_body_bytes: bodies larger than this are answered 413 (default 10 MiB).
        max_threads: model calls that run at once in the thread pool; a call abandoned at
            its deadline stops counting (see :class:`~flotilla.gateway._pool.ModelPool`).
        poll_interval_s: how often new deployment revisions and alias moves are looked for.
        device: ``cpu`` or ``gpu`` for the runtimes.
        multiprocess_dir: the ``PROMETHEUS_MULTIPROC_DIR`` shared by several workers.
        inline_below_ms: calls of native flavors (onnx, lightgbm, sklearn) whose learned
            cost for the request's rows is at most this many milliseconds run on the event
            loop, without the hop to a pool thread; longer ones, and every ``python`` model,
            run in the pool. The cost is measured at load and on every call; ``0`` sends
            every call to the pool.
        processes: run ``python``-flavor models in this many worker processes instead of
            threads (0, the default: threads). Pure-Python models hold the GIL while they
            compute; in processes they no longer slow the event loop and the other models
            down. Each call then pays a pickle round trip (tens of microseconds); a call
            unanswered for 30 s has its worker killed and replaced. Needs a workspace target.
        shadow_deadline_s: the most one shadow call may take (then abandoned, recorded as
            ``timeout``). Shadows run only when a ``sink`` records their predictions.
        shadow_capacity: shadow jobs waiting at most; beyond it they are dropped and counted.
        shadow_threads: shadow calls running at once.
        monitor_interval_s: when set (and the target is a workspace), the alert rules are
            evaluated in the background every this many seconds (``serve --monitor``) and the
            health gauges are exposed on this app's ``/metrics``.
        freeze_gc: once the models are loaded (and after each reload), freeze the heap
            out of the garbage collector's reach (:func:`gc.freeze`): full collections then
            scan only what requests allocate, not the libraries and models (tens of
            milliseconds with the loop stopped). ``flotilla serve`` turns it on; leave it
            off when the app is embedded in a process of your own.

    Raises:
        ConfigError: a parameter is out of range.

    Example:
        >>> from flotilla.settings import Settings
        >>> app = create_app(Settings(home="/tmp/fl"))  # then: uvicorn.run(app)
    """
    from flotilla.errors import ConfigError

    if max_body_bytes < 1:
        raise ConfigError(
            f"The 'max_body_bytes' of create_app must be positive. Got {max_body_bytes} instead."
        )
    if not inline_below_ms >= 0:
        raise ConfigError(
            "The 'inline_below_ms' of create_app must be 0 (always the thread pool) or more. "
            f"Got {inline_below_ms} instead."
        )
    if processes < 0:
        raise ConfigError(
            f"The 'processes' of create_app must be 0 (threads) or more. Got {processes} instead."
        )
    if max_threads < 1:
        raise ConfigError(
            f"The 'max_threads' of create_app must be at least 1. Got {max_threads} instead."
        )
    source: DeploymentSource | Callable[[], DeploymentSource]
    if isinstance(target, Settings):
        settings = target

        def open_source() -> DeploymentSource:
            from flotilla.workspace import Workspace

            return WorkspaceSource(Workspace.open(settings), device=device)

        source = open_source
    elif hasattr(target, "registry") and hasattr(target, "load"):
        source = WorkspaceSource(target, device=device)
    else:
        source = target
    metrics = metrics or GatewayMetrics()
    if isinstance(sink, RecordWriter) and sink.on_drop is None:
        sink.on_drop = metrics.records_dropped.inc
    return Gateway(
        source=source,
        clock=clock or SystemClock(),
        metrics=metrics,
        executor=ModelPool(max_threads, name="flotilla-model"),
        sink=sink,
        max_body_bytes=max_body_bytes,
        poll_interval_s=poll_interval_s,
        multiprocess_dir=multiprocess_dir,
        inline_below_s=inline_below_ms / 1000.0,
        processes=processes,
        monitor_interval_s=monitor_interval_s,
        freeze_gc=freeze_gc,
        mirror=None
        if sink is None
        else ShadowMirror(
            deadline_s=shadow_deadline_s,
            sink=sink,
            capacity=shadow_capacity,
            concurrency=shadow_threads,
            on_drop=_count_shadow_drop(metrics),
            on_result=_count_shadow_call(metrics),
        ),
    )


def _count_shadow_drop(metrics: GatewayMetrics) -> Callable[[ShadowJob], None]:
    def count(job: ShadowJob) -> None:
        metrics.shadow_dropped.labels(job.model).inc()

    return count


def _count_shadow_call(metrics: GatewayMetrics) -> Callable[[ShadowJob, str, float], None]:
    def count(job: ShadowJob, outcome: str, _seconds: float) -> None:
        metrics.shadow_calls.labels(job.model, outcome).inc()

    return count


def factory() -> Gateway:
    """The app of one uvicorn worker, configured from the environment (``flotilla serve``).

    Reads ``FLOTILLA_*`` settings, ``FLOTILLA_MAX_BODY_BYTES``, ``FLOTILLA_RECORDS``
    (``0`` turns prediction records off), ``FLOTILLA_MONITOR_INTERVAL`` (seconds; runs the
    monitor loop in this worker), ``FLOTILLA_FLUSH_INTERVAL`` (seconds between record
    flushes, default 1), ``FLOTILLA_RECORDS_HELPER`` (``0`` writes records in a thread of
    this process instead of a helper process), ``FLOTILLA_THREADS``, ``FLOTILLA_PROCESSES``,
    ``FLOTILLA_INLINE_BELOW_MS`` and ``FLOTILLA_SHADOW_DEADLINE_MS`` / ``_THREADS`` / ``_QUEUE``
    (see ``create_app``) and ``PROMETHEUS_MULTIPROC_DIR``.
    """
    settings = Settings.from_env()
    env = os.environ
    sink = None
    if env.get("FLOTILLA_RECORDS", "1") != "0":
        flush = float(env.get("FLOTILLA_FLUSH_INTERVAL", "") or 1.0)
        helper = env.get("FLOTILLA_RECORDS_HELPER", "1") != "0"
        writer = RecordWriter(settings.records, flush_interval=flush, helper_process=helper)
        writer.start()
        sink = writer
    default_inline_ms = DEFAULT_INLINE_BELOW_S * 1000
    limit = env.get("FLOTILLA_MAX_BODY_BYTES", "")
    return create_app(
        settings,
        sink=sink,
        max_body_bytes=int(limit) if limit.isdigit() else DEFAULT_MAX_BODY_BYTES,
        multiprocess_dir=env.get("PROMETHEUS_MULTIPROC_DIR") or None,
        inline_below_ms=float(env.get("FLOTILLA_INLINE_BELOW_MS", "") or default_inline_ms),
        max_threads=int(env.get("FLOTILLA_THREADS", "") or _DEFAULT_THREADS),
        processes=int(env.get("FLOTILLA_PROCESSES", "") or 0),
        shadow_deadline_s=float(env.get("FLOTILLA_SHADOW_DEADLINE_MS", "") or 1000.0) / 1000.0,
        shadow_threads=int(env.get("FLOTILLA_SHADOW_THREADS", "") or 4),
        shadow_capacity=int(env.get("FLOTILLA_SHADOW_QUEUE", "") or 1000),
        monitor_interval_s=float(env["FLOTILLA_MONITOR_INTERVAL"])
        if env.get("FLOTILLA_MONITOR_INTERVAL")
        else None,
        freeze_gc=True,
    )
