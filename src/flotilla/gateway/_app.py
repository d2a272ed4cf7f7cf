"""The gateway's ASGI app: KServe V1 data plane, model listing, health, readiness, metrics.

Routing is a handful of string checks on the raw ASGI scope (no framework on the hot path);
other protocols (KServe V2 ``/v2/...``, MLflow ``/invocations``) are added as more entries in
:meth:`Gateway._route`, reusing :meth:`Gateway.predict_records`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import difflib
import logging
import uuid
from typing import Any, Protocol

from flotilla.gateway._chain import Answer, ServedModel
from flotilla.gateway._host import DeploymentSource, ModelHost
from flotilla.gateway._http import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    dumps,
    header,
    parse_json,
    read_body,
    send_bytes,
    send_json,
)
from flotilla.gateway._steps import format_violations
from flotilla.monitoring.metrics import CONTENT_TYPE_LATEST, GatewayMetrics, exposition
from flotilla.records import PredictionEvent
from flotilla.types import Clock

__all__ = ["DEFAULT_MAX_BODY_BYTES", "Gateway", "PredictionSink"]

log = logging.getLogger("flotilla.gateway")

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
_PREFIX = "/v1/models/"
_PREDICT = ":predict"
_MAX_REQUEST_ID = 128


class PredictionSink(Protocol):
    """Where answered requests go after the response (``flotilla.records.RecordWriter``)."""

    def submit(self, event: PredictionEvent) -> bool:
        """Queue one event without blocking; ``False`` when it was dropped."""
        ...


class _RequestError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("error", ""))
        self.status = status
        self.body = body


def _bad(message: str) -> _RequestError:
    return _RequestError(400, {"error": message})


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
    """

    def __init__(
        self,
        *,
        source: Any,
        clock: Clock,
        metrics: GatewayMetrics,
        executor: concurrent.futures.ThreadPoolExecutor,
        sink: PredictionSink | None = None,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        poll_interval_s: float = 1.0,
        multiprocess_dir: str | None = None,
    ) -> None:
        self.source = source
        self.clock = clock
        self.metrics = metrics
        self.executor = executor
        self.sink = sink
        self.max_body_bytes = max_body_bytes
        self.poll_interval_s = poll_interval_s
        self.multiprocess_dir = multiprocess_dir
        self.host: ModelHost | None = None
        self.startup_error: str = ""

    # -- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Open the source, load every deployment and start the poller (blocking)."""
        source: DeploymentSource = self.source() if callable(self.source) else self.source
        host = ModelHost(
            source,
            clock=self.clock,
            metrics=self.metrics,
            executor=self.executor,
            poll_interval_s=self.poll_interval_s,
        )
        host.start()
        self.host = host

    def stop(self) -> None:
        """Stop the poller, close the sink and let model threads go."""
        if self.host is not None:
            self.host.stop()
        close = getattr(self.sink, "close", None)
        if callable(close):
            close()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        loop = asyncio.get_running_loop()
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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
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
        if path.startswith(_PREFIX):
            name = path[len(_PREFIX) :]
            if name.endswith(_PREDICT):
                if method != "POST":
                    await _not_allowed(send, "POST")
                    return
                await self._predict(scope, receive, send, name[: -len(_PREDICT)])
                return
            if method == "GET" and name and "/" not in name:
                await self._model(send, name)
                return
        elif method == "GET":
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
                text = exposition(self.metrics.registry, multiprocess_dir=self.multiprocess_dir)
                await send_bytes(send, 200, text, content_type=CONTENT_TYPE_LATEST.encode())
                return
        await send_json(send, 404, {"error": f"There is no route {method} {path}."})

    # -- data plane ----------------------------------------------------------------------

    async def _predict(self, scope: Scope, receive: Receive, send: Send, name: str) -> None:
        start = self.clock.monotonic()
        request_id = _request_id(header(scope, b"x-request-id"))
        rid_header = (b"x-request-id", request_id.encode())
        try:
            served = self._served(name)
            instances, ids = await self._read_instances(scope, receive)
            if served.input_policy == "reject" and served.signature is not None:
                _reject_invalid(served, instances)
        except _RequestError as exc:
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
        headers = [rid_header, (b"x-flotilla-degraded", b"true" if degraded else b"false")]
        await send_bytes(send, 200, dumps(body), headers=headers)
        elapsed = self.clock.monotonic() - start
        served.metrics.duration.observe(elapsed)
        if self.sink is not None:
            self._submit(served, request_id, instances, ids, answer, elapsed)

    async def predict_records(
        self, served: ServedModel, instances: list[Any], start: float
    ) -> Answer:
        """Answer ``instances`` with ``served``'s chain (shared by every protocol's route)."""
        metrics = served.metrics
        metrics.in_flight.inc()
        try:
            answer = await served.answer(instances, start, self.clock)
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
            raise _RequestError(
                404,
                {
                    "error": f"No model named {name!r} is served.{hint} "
                    "GET /v1/models lists the served models.",
                    "suggestions": close,
                },
            )
        return served

    async def _read_instances(
        self, scope: Scope, receive: Receive
    ) -> tuple[list[Any], list[Any] | None]:
        try:
            raw = await read_body(scope, receive, self.max_body_bytes)
        except BodyTooLarge:
            raise _RequestError(
                413,
                {
                    "error": f"The request body is larger than the limit of "
                    f"{self.max_body_bytes} bytes; send fewer instances per request."
                },
            ) from None
        try:
            data = parse_json(raw)
        except ValueError as exc:
            raise _bad(f"The request body is not valid JSON: {exc}.") from None
        if not isinstance(data, dict):
            raise _bad(
                'The request body must be a JSON object like {"instances": [{...}]}. '
                f"Got a JSON {type(data).__name__} instead."
            )
        instances = data.get("instances")
        if not isinstance(instances, list) or not instances:
            got = "nothing" if instances is None else _describe(instances)
            raise _bad(
                "The 'instances' of the request must be a non-empty list of records, "
                f'as in {{"instances": [{{"age": 31}}]}}. Got {got} instead.'
            )
        ids = data.get("ids")
        if ids is not None and (not isinstance(ids, list) or len(ids) != len(instances)):
            raise _bad(
                f"The 'ids' of the request must be a list with one id per instance "
                f"({len(instances)}). Got {_describe(ids)} instead."
            )
        return instances, ids

    def _submit(
        self,
        served: ServedModel,
        request_id: str,
        instances: list[Any],
        ids: list[Any] | None,
        answer: Answer,
        elapsed: float,
    ) -> None:
        assert self.sink is not None
        try:
            self.sink.submit(
                PredictionEvent(
                    request_id=request_id,
                    model=served.name,
                    ref=answer.step.ref,
                    role=answer.step.role,
                    inputs=instances,
                    predictions=answer.predictions,
                    ids=None if ids is None else [str(i) for i in ids],
                    latency_ms=elapsed * 1000.0,
                    degraded=bool(answer.reasons),
                    reasons=answer.reasons,
                    event_time=self.clock.now(),
                )
            )
        except Exception:  # recording must never break serving
            log.exception("could not submit the prediction record of %s", request_id)

    # -- control plane (read-only) ---------------------------------------------------------

    async def _models(self, send: Send) -> None:
        host = self.host
        models = host.state.models if host is not None else {}
        listing = [served.describe() for _, served in sorted(models.items())]
        await send_json(send, 200, {"models": listing})

    async def _model(self, send: Send, name: str) -> None:
        try:
            served = self._served(name)
        except _RequestError as exc:
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


def _reject_invalid(served: ServedModel, instances: list[Any]) -> None:
    assert served.signature is not None
    violations = [v.to_dict() for v in served.signature.validate(instances)]
    if violations:
        raise _RequestError(
            422,
            {
                "error": f"{len(violations)} input violation(s) for model {served.name!r}: "
                + format_violations(violations),
                "violations": violations,
            },
        )


def _request_id(given: bytes | None) -> str:
    if given and len(given) <= _MAX_REQUEST_ID:
        text = given.decode("latin-1")
        if text.isprintable():
            return text
    return uuid.uuid4().hex


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


async def _not_allowed(send: Send, allowed: str) -> None:
    await send_json(
        send,
        405,
        {"error": f"This route only answers {allowed}."},
        headers=[(b"allow", allowed.encode())],
    )
