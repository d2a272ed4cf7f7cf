"""The gateway's ASGI app: KServe V1 data plane, model listing, health, readiness, metrics.

Routing is a handful of string checks on the raw ASGI scope (no framework on the hot path);
other protocols (KServe V2 ``/v2/...``, MLflow ``/invocations``) are added as more entries in
:meth:`Gateway._route`, reusing :meth:`Gateway.predict_records`. Read-only sub-apps mount by
exact path with :meth:`Gateway.mount` (``GET /v1/incidents`` is mounted at startup when the
source is a workspace).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import gc
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol

from flotilla.gateway._chain import Answer, ServedModel
from flotilla.gateway._host import DEFAULT_INLINE_BELOW_S, DeploymentSource, ModelHost
from flotilla.gateway._http import (
    Receive,
    Scope,
    Send,
    dumps,
    header,
    send_bytes,
    send_json,
)
from flotilla.gateway._lag import LoopLag
from flotilla.gateway._process import ProcessPool
from flotilla.gateway._v1 import (
    RequestError,
    RequestIds,
    not_allowed,
    read_instances,
    reject_invalid,
)
from flotilla.gateway.incidents_route import INCIDENTS_PATH, incidents_endpoint
from flotilla.gateway.outcomes_route import OUTCOMES_SUFFIX, post_outcomes
from flotilla.gateway.shadow import ShadowJob, ShadowMirror
from flotilla.monitoring.incidents import IncidentStore
from flotilla.monitoring.metrics import (
    CONTENT_TYPE_LATEST,
    GatewayMetrics,
    HealthMetrics,
    exposition,
)
from flotilla.monitoring.runner import MonitorLoop
from flotilla.records import OutcomeStore, PredictionEvent
from flotilla.types import Clock

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Gateway", "PredictionSink"]

log = logging.getLogger("flotilla.gateway")

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_PREFIX = "/v1/models/"
_PREDICT = ":predict"
_READ_METHODS = frozenset({"GET", "HEAD"})
_METRICS_FLUSH_S = 1.0


def _freeze_heap() -> None:
    gc.collect()
    gc.freeze()


class PredictionSink(Protocol):
    """Where answered requests go after the response (``flotilla.records.RecordWriter``).

    A sink that also has ``record(*fields)`` (the twelve fields of a ``PredictionEvent`` in
    order, as ``RecordWriter.record`` takes them) gets that call instead, and no event object
    is built on the request path.
    """

    def submit(self, event: PredictionEvent) -> bool:
        """Queue one event without blocking; ``False`` when it was dropped."""
        ...


ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Gateway:
    """The ASGI app; build it with :func:`flotilla.gateway.create_app`.

    Args:
        source: deployments and versions, or a zero-argument callable that opens them at
            startup (so each worker opens its own database connections).
        clock: monotonic clock for deadlines and breakers.
        metrics: the gateway's Prometheus metrics.
        executor: the thread pool models run in.
        sink: where each answered request is submitted after the response, or ``None``.
        max_body_bytes: bodies larger than this are answered 413.
        poll_interval_s: how often the host checks for new deployment revisions.
        multiprocess_dir: ``PROMETHEUS_MULTIPROC_DIR`` when several workers serve.
        inline_below_s: native model calls estimated at or under this many seconds run on
            the event loop (see ``create_app``).
        processes: worker processes for python-flavor models (0: they run in threads).
        mirror: runs the deployments' shadows on copies of the requests, after the answer.
        monitor_interval_s: evaluate the alert rules every this many seconds in a background
            thread (workspace sources only); health gauges go to this app's ``/metrics``.
        freeze_gc: after the models load (and after each reload), move every object alive
            into the garbage collector's permanent generation (:func:`gc.freeze`), so that
            full collections no longer scan the loaded models and libraries. Meant for a
            serving process (``flotilla serve``); leave it off when the app is embedded.
    """

    def __init__(
        self,
        *,
        source: Any,
        clock: Clock,
        metrics: GatewayMetrics,
        executor: concurrent.futures.Executor,
        sink: PredictionSink | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        poll_interval_s: float = 1.0,
        multiprocess_dir: str | None = None,
        inline_below_s: float = DEFAULT_INLINE_BELOW_S,
        processes: int = 0,
        mirror: ShadowMirror | None = None,
        monitor_interval_s: float | None = None,
        freeze_gc: bool = False,
    ) -> None:
        self.source = source
        self.freeze_gc = freeze_gc
        self.mirror = mirror
        self.inline_below_s = inline_below_s
        self.processes = processes
        self.process_pool: ProcessPool | None = None
        self.clock = clock
        self.metrics = metrics
        self.executor = executor
        self.sink = sink
        self._record: Callable[..., bool] | None = getattr(sink, "record", None)
        self.max_body_bytes = max_body_bytes
        self.poll_interval_s = poll_interval_s
        self.multiprocess_dir = multiprocess_dir
        self.host: ModelHost | None = None
        self.startup_error: str = ""
        self.mounts: dict[str, ASGIApp] = {}
        self.request_ids = RequestIds()
        self.loop_lag = LoopLag()
        self.outcomes: OutcomeStore | None = None
        self.monitor_interval_s = monitor_interval_s
        self.monitor: MonitorLoop | None = None

    def mount(self, path: str, app: ASGIApp) -> None:
        """Answer requests to exactly ``path`` with the raw ASGI ``app`` (any method)."""
        self.mounts[path] = app

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the source, load every deployment and start the poller (blocking)."""
        source: DeploymentSource = self.source() if callable(self.source) else self.source
        if self.processes > 0 and self.process_pool is None:
            self.process_pool = ProcessPool(self.processes)
        host = ModelHost(
            source,
            clock=self.clock,
            metrics=self.metrics,
            executor=self.executor,
            poll_interval_s=self.poll_interval_s,
            inline_below_s=self.inline_below_s,
            processes=self.process_pool,
        )
        host.start()
        self.host = host
        workspace = getattr(source, "workspace", None)
        registry = getattr(workspace, "registry", None)
        if workspace is not None and registry is not None:
            self.mount(INCIDENTS_PATH, incidents_endpoint(IncidentStore(registry)))
            self.outcomes = OutcomeStore(workspace.settings.records, models=registry)
            if self.monitor_interval_s is not None:
                # evaluation pulls in SciPy (about a second): only when the monitor runs here
                from flotilla.evaluation.promotion import auto_promote

                gauges = HealthMetrics(registry=self.metrics.registry)
                self.monitor = MonitorLoop.for_settings(
                    workspace.settings,
                    interval_s=self.monitor_interval_s,
                    gauges=gauges,
                    after_run=lambda: auto_promote(workspace),
                )
                self.monitor.start()
        if self.mirror is not None:
            self.mirror.start()
        if self.freeze_gc:
            # A full collection of the loaded heap takes tens of milliseconds with the loop
            # stopped; frozen, the collector scans only what requests allocate. After a
            # reload only the new objects are scanned and frozen (garbage cycles among
            # objects frozen before stay: one old runtime's worth per reload at most).
            _freeze_heap()
            host.after_swap = _freeze_heap

    def stop(self) -> None:
        """Stop the poller, close the sink and let model threads go."""
        if self.host is not None:
            self.host.stop()
        if self.monitor is not None:
            self.monitor.close()
        if self.mirror is not None:  # before the sink, so the last shadow records are written
            self.mirror.close()
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.process_pool is not None:
            self.process_pool.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
        ticker: asyncio.TimerHandle | None = None

        def publish_metrics() -> None:  # on the loop's thread, like every tally update
            nonlocal ticker
            self.metrics.loop_lag.set(self.loop_lag.slack_s)
            self.metrics.flush()
            ticker = loop.call_later(_METRICS_FLUSH_S, publish_metrics)

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await loop.run_in_executor(None, self.start)
                except Exception as exc:
                    log.exception("the gateway could not start")
                    text = f"{type(exc).__name__}: {exc}"
                    await send({"type": "lifespan.startup.failed", "message": text})
                    return
                ticker = loop.call_later(_METRICS_FLUSH_S, publish_metrics)
                self.loop_lag.start(loop)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if ticker is not None:
                    ticker.cancel()
                self.loop_lag.stop()
                self.metrics.flush()
                await loop.run_in_executor(None, self.stop)
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing -------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        await self._route(scope, receive, send)

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        mounted = self.mounts.get(path)
        if mounted is not None:
            await mounted(scope, receive, send)
            return
        if path.startswith(_PREFIX):
            name = path[len(_PREFIX) :]
            if name.endswith(_PREDICT):
                if method != "POST":
                    await not_allowed(send, "POST")
                    return
                await self._predict(scope, receive, send, name[: -len(_PREDICT)])
                return
            if method in _READ_METHODS and name and "/" not in name:
                await self._model(send, name)
                return
            if name.endswith(OUTCOMES_SUFFIX) and "/" not in name[: -len(OUTCOMES_SUFFIX)]:
                await self._outcomes(scope, receive, send, name[: -len(OUTCOMES_SUFFIX)])
                return
        elif method in _READ_METHODS:  # uvicorn leaves the body out of a HEAD answer
            if path == "/v1/models":
                await self._models(send)
                return
            if path == "/healthz":
                await send_json(send, 200, {"status": "ok"})
                return
            if path == "/readyz":
                await self._ready(send)
                return
            if path == "/metrics":
                self.metrics.flush()
                text = exposition(self.metrics.registry, multiprocess_dir=self.multiprocess_dir)
                await send_bytes(send, 200, text, content_type=CONTENT_TYPE_LATEST.encode())
                return
        await send_json(send, 404, {"error": f"There is no route {method} {path}."})

    # -- data plane ----------------------------------------------------------------------

    async def _predict(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        start = self.clock.monotonic()
        arrived = self.clock.now() if self.sink is not None else None  # the record's event_time
        request_id = self.request_ids(header(scope, b"x-request-id"))
        rid_header = (b"x-request-id", request_id.encode())
        try:
            served = self._served(name)
            instances, ids, feature_times = await read_instances(
                scope, receive, self.max_body_bytes
            )
            if served.input_policy == "reject" and served.signature is not None:
                reject_invalid(served, instances)
        except RequestError as exc:
            await send_json(send, exc.status, exc.body, headers=[rid_header])
            return
        answer = await self.predict_records(served, instances, start)
        step = answer.step
        degraded = bool(answer.reasons)
        body = {
            "predictions": answer.predictions,
            "request_id": request_id,
            "model": served.name,
            "served_by": {"role": step.role, "ref": step.ref},
            "degraded": degraded,
            "reasons": answer.reasons,
        }
        took_ms = (self.clock.monotonic() - start) * 1000.0
        headers = [
            rid_header,
            (b"x-flotilla-degraded", b"true" if degraded else b"false"),
            (b"server-timing", b"chain;dur=%.3f" % took_ms),
        ]
        await send_bytes(send, 200, dumps(body), headers=headers)
        elapsed = self.clock.monotonic() - start
        served.metrics.duration.observe(elapsed)
        if arrived is not None:
            event_time = arrived
            keys = None if ids is None else [str(i) for i in ids]
            self._submit(
                served, request_id, instances, keys, answer, elapsed, event_time, feature_times
            )
            if served.shadows and self.mirror is not None:
                self._mirror(served, request_id, instances, keys, event_time)

    async def predict_records(
        self, served: ServedModel, instances: list[Any], start: float
    ) -> Answer:
        """Answer ``instances`` with ``served``'s chain (shared by every protocol's route)."""
        metrics = served.metrics
        metrics.in_flight.inc()
        try:
            answer = await served.answer(instances, start, self.clock, self.loop_lag.slack_s)
        finally:
            metrics.in_flight.dec()
        metrics.served(answer.step.role)
        return answer

    def _served(self, name: str) -> ServedModel:
        host = self.host
        models = host.state.models if host is not None else {}
        served = models.get(name)
        if served is None:
            close = difflib.get_close_matches(name, list(models), n=3, cutoff=0.5)
            hint = f" Closest: {', '.join(close)}." if close else ""
            raise RequestError(
                404,
                {
                    "error": f"No model named {name!r} is served.{hint} "
                    "GET /v1/models lists the served models.",
                    "suggestions": close,
                },
            )
        return served

    def _submit(
        self,
        served: ServedModel,
        request_id: str,
        instances: list[Any],
        ids: list[str] | None,
        answer: Answer,
        elapsed: float,
        event_time: datetime,
        feature_times: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            record = self._record
            if record is not None:  # a RecordWriter: no event object, about 1 us
                record(
                    request_id, served.name, answer.step.ref, answer.step.role, instances,
                    answer.predictions, ids, elapsed * 1000.0, bool(answer.reasons),
                    answer.reasons, event_time, feature_times,
                )  # fmt: skip
                return
            assert self.sink is not None
            self.sink.submit(
                PredictionEvent(
                    request_id=request_id,
                    model=served.name,
                    ref=answer.step.ref,
                    role=answer.step.role,
                    inputs=instances,
                    predictions=answer.predictions,
                    ids=ids,
                    latency_ms=elapsed * 1000.0,
                    degraded=bool(answer.reasons),
                    reasons=answer.reasons,
                    event_time=event_time,
                    feature_times=feature_times,
                )
            )
        except Exception:  # recording must never break serving
            log.exception("could not submit the prediction record of %s", request_id)

    def _mirror(
        self,
        served: ServedModel,
        request_id: str,
        instances: list[Any],
        ids: list[str] | None,
        event_time: datetime,
    ) -> None:
        assert self.mirror is not None
        for shadow in served.shadows:
            if shadow.predictor is None:
                continue
            try:
                self.mirror.offer(
                    ShadowJob(
                        request_id=request_id,
                        model=served.name,
                        ref=shadow.ref,
                        predictor=shadow.predictor,
                        records=instances,
                        ids=ids,
                        event_time=event_time,
                        sample=shadow.sample,
                    )
                )
            except Exception:  # shadows must never break serving
                log.exception("could not mirror %s to %s", request_id, shadow.ref)

    async def _outcomes(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        if scope["method"] != "POST":
            await not_allowed(send, "POST")
            return
        if self.outcomes is None:
            await send_json(send, 503, {"error": "Outcomes need a workspace-backed gateway."})
            return
        await post_outcomes(self.outcomes, scope, receive, send, name, self.max_body_bytes)

    # -- control plane (read-only) ---------------------------------------------------------

    async def _models(self, send: Send) -> None:
        host = self.host
        models = host.state.models if host is not None else {}
        listing = [served.describe() for _, served in sorted(models.items())]
        await send_json(send, 200, {"models": listing})

    async def _model(self, send: Send, name: str) -> None:
        try:
            served = self._served(name)
        except RequestError as exc:
            await send_json(send, exc.status, exc.body)
            return
        await send_json(send, 200, served.describe())

    async def _ready(self, send: Send) -> None:
        host = self.host
        if host is None:
            reason = self.startup_error or "the models are still loading"
            await send_json(send, 503, {"ready": False, "error": reason, "failures": []})
            return
        failures = host.state.failures
        status = 503 if failures else 200
        await send_json(
            send,
            status,
            {"ready": not failures, "models": len(host.state.models), "failures": failures},
        )
