"""The model host: loads every current deployment and follows new revisions and alias moves.

At :meth:`ModelHost.start` the host builds a :class:`HostState` (one
:class:`~flotilla.gateway._chain.ServedModel` per deployed model, every version loaded), then
polls ``deployments_version()`` every ``poll_interval_s`` in a background thread. When the
number changes it builds the next state off the request path, reusing loaded runtimes,
breakers and bulkheads by resolved reference, and swaps it in with one assignment; requests
already running keep the state they started with.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from flotilla.gateway._breaker import BreakerConfig, CircuitBreaker
from flotilla.gateway._chain import ChainStep, ServedModel, ShadowStep, budget_reserves
from flotilla.gateway._process import ProcessPool
from flotilla.gateway._steps import (
    CallCost,
    ModelCall,
    ModelStep,
    NotLoadedCall,
    Slots,
    StaticCall,
)
from flotilla.monitoring.metrics import GatewayMetrics, ModelMetrics, step_label
from flotilla.portfolio.spec import DeploymentSpec, StaticStep
from flotilla.signature import Signature
from flotilla.types import Clock, Predictor

__all__ = [
    "DEFAULT_INLINE_BELOW_S",
    "INLINE_FLAVORS",
    "PROCESS_FLAVORS",
    "DeploymentSource",
    "HostState",
    "ModelHost",
]

log = logging.getLogger("flotilla.gateway")

INLINE_FLAVORS = frozenset({"onnx", "lightgbm", "sklearn"})
"""Flavors whose calls are pure computation and may run on the event loop when short.
``python`` models may sleep or do I/O, so they always run in the thread pool."""

PROCESS_FLAVORS = frozenset({"python"})
"""Flavors that hold the GIL while they compute: run in worker processes when asked."""

DEFAULT_INLINE_BELOW_S = 0.00025
"""Calls estimated at or under this many seconds run inline (about the cost of the hop to a
pool thread and back, measured on the development machine)."""


class DeploymentSource(Protocol):
    """Where the host reads deployments and loads versions (a Workspace adapter in production)."""

    def deployments_version(self) -> int:
        """A number that changes whenever a deployment or an alias changes."""
        ...

    def current_deployments(self) -> list[Any]:
        """The current revision of every deployment (``.model``, ``.revision``, ``.spec``)."""
        ...

    def resolve(self, ref: str) -> Any:
        """The version a reference names now (``.ref``, ``.flavor``, ``.signature``)."""
        ...

    def load(self, version: Any, *, device: str | None = None) -> Predictor:
        """A loaded predictor for ``version`` (sha256-verified artifact), on ``device``
        (``cpu`` or ``gpu``; ``None``: the source's default)."""
        ...


@dataclass(frozen=True)
class HostState:
    """What the gateway serves now: models by name, and what failed to load."""

    version: int
    models: dict[str, ServedModel] = field(default_factory=dict)
    failures: list[dict[str, str]] = field(default_factory=list)


def _signature(version: Any) -> Signature | None:
    sig = getattr(version, "signature", None)
    if sig is None or isinstance(sig, Signature):
        return sig
    return Signature.from_dict(sig)


class ModelHost:
    """Loads and serves every deployed model; follows changes with a background poller.

    Args:
        source: deployments and versions (see :class:`DeploymentSource`).
        clock: monotonic clock for deadlines and breakers.
        metrics: the gateway's metrics.
        executor: the thread pool models run in.
        poll_interval_s: how often to check ``deployments_version()``.
        inline_below_s: calls of :data:`INLINE_FLAVORS` estimated at or under this many
            seconds run on the event loop (see :class:`~flotilla.gateway._steps.ModelCall`);
            0 sends every call to the pool. Static versions always run inline.
        processes: when given, versions of :data:`PROCESS_FLAVORS` run in these worker
            processes (loaded there from the source's ``runtime_spec``), not in this one.
    """

    def __init__(
        self,
        source: DeploymentSource,
        *,
        clock: Clock,
        metrics: GatewayMetrics,
        executor: concurrent.futures.Executor,
        poll_interval_s: float = 1.0,
        inline_below_s: float = DEFAULT_INLINE_BELOW_S,
        processes: ProcessPool | None = None,
        after_swap: Callable[[], Any] | None = None,
    ) -> None:
        self.source = source
        self.after_swap = after_swap
        self.processes = processes
        self.inline_below_s = inline_below_s
        self.clock = clock
        self.metrics = metrics
        self.executor = executor
        self.poll_interval_s = poll_interval_s
        self.state = HostState(version=-1)
        self._runtimes: dict[tuple[str, str | None], Predictor] = {}
        self._breakers: dict[tuple[str, str], CircuitBreaker] = {}
        self._slots: dict[tuple[str, str], Slots] = {}
        self._costs: dict[tuple[str, str | None], CallCost] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load every current deployment, then start the poller thread."""
        self.refresh(force=True)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="flotilla-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the poller (waits for a rebuild in progress to finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def refresh(self, *, force: bool = False) -> bool:
        """Rebuild and swap the state if the deployments changed; True when swapped."""
        with self._lock:
            version = self.source.deployments_version()
            if not force and version == self.state.version:
                return False
            self.state = self._build(version)
            if self.after_swap is not None:
                self.after_swap()
            return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_interval_s):
            try:
                if self.refresh():
                    log.info("deployments changed; now serving version %s", self.state.version)
            except Exception:  # keep serving the last good state
                log.exception("could not refresh the deployments; serving the previous state")

    def _build(self, version: int) -> HostState:
        models: dict[str, ServedModel] = {}
        failures: list[dict[str, str]] = []
        used: set[str] = set()
        for deployment in self.source.current_deployments():
            try:
                served = self._build_model(deployment, failures, used)
            except Exception as exc:
                log.exception("could not build the chain of %r", deployment.model)
                failures.append({"model": deployment.model, "ref": "*", "error": str(exc)})
                continue
            models[served.name] = served
        self._runtimes = {key: rt for key, rt in self._runtimes.items() if key[0] in used}
        return HostState(version=version, models=models, failures=failures)

    def _build_model(
        self, deployment: Any, failures: list[dict[str, str]], used: set[str]
    ) -> ServedModel:
        name: str = deployment.model
        spec = DeploymentSpec.from_dict(deployment.spec, model=name)
        metrics = self.metrics.for_model(name)
        live = getattr(spec.live, "ref", spec.live)
        refs: list[Any] = [live, *spec.fallbacks]
        kinds = ["static" if isinstance(r, StaticStep) else "model" for r in refs]
        reserves = budget_reserves(spec.deadline_ms / 1000.0, kinds)
        breaker_config = BreakerConfig(**spec.breaker.to_dict())
        steps: list[ChainStep] = []
        device = "gpu" if spec.tier == "gpu" else None  # None: the source's default
        live_ref, live_sig = str(live), None
        for pos, (item, reserve) in enumerate(zip(refs, reserves, strict=True)):
            if isinstance(item, StaticStep):
                step_metrics = metrics.step(step_label(pos, static=True))
                call = StaticCall(item.answer)
                steps.append(ChainStep(f"static:{name}", "static", call, reserve, step_metrics))
                continue
            text = getattr(item, "ref", item)
            step = self._model_step(
                name, pos, text, reserve, spec.max_concurrency, breaker_config, metrics, device
            )
            if not step.loaded:
                failures.append({"model": name, "ref": step.ref, "error": step.load_error})
            used.add(step.ref)
            steps.append(step)
            if pos == 0:
                live_ref = step.ref
                live_sig = getattr(step.call, "signature", None)
        return ServedModel(
            name=name,
            revision=int(deployment.revision),
            live_ref=live_ref,
            deadline_s=spec.deadline_ms / 1000.0,
            input_policy=spec.input_policy,
            signature=live_sig,
            steps=tuple(steps),
            metrics=metrics,
            spec=dict(deployment.spec),
            shadows=tuple(
                self._shadow(s.ref, s.sample, metrics, used, device) for s in spec.shadows
            ),
        )

    def _shadow(
        self,
        ref: str,
        sample: float,
        metrics: ModelMetrics,
        used: set[str],
        device: str | None = None,
    ) -> ShadowStep:
        try:
            version = self.source.resolve(ref)
            resolved: str = version.ref
            predictor = self._runtime(resolved, version, metrics, device)
        except Exception as exc:
            return ShadowStep(ref, sample, None, f"{type(exc).__name__}: {exc}"[:500])
        used.add(resolved)
        return ShadowStep(resolved, sample, predictor)

    def _model_step(
        self,
        model: str,
        pos: int,
        ref: str,
        reserve: float,
        limit: int,
        breaker_config: BreakerConfig,
        metrics: ModelMetrics,
        device: str | None = None,
    ) -> ChainStep:
        role = "live" if pos == 0 else "fallback"
        try:
            version = self.source.resolve(ref)
            resolved: str = version.ref
            predictor = self._runtime(resolved, version, metrics, device)
        except Exception as exc:
            detail = f"{type(exc).__name__}: {exc}"[:500]
            step_metrics = metrics.step(step_label(pos, static=False))
            return ChainStep(
                ref, role, NotLoadedCall(detail), reserve, step_metrics, None, False, detail
            )
        static = getattr(version, "flavor", "") == "static"
        step_metrics = metrics.step(step_label(pos, static=static))
        signature = _signature(version)
        model_call = self._call(resolved, version, predictor, signature, metrics, device)
        if static:  # the same answer whatever the input: no guard may refuse it
            return ChainStep(
                resolved, "static", model_call, reserve, step_metrics, model_call=model_call
            )
        breaker = self._breaker(model, resolved, breaker_config, step_metrics.set_breaker)
        call = ModelStep(
            model_call,
            signature=signature,
            output=_output(signature),
            breaker=breaker,
            limit=limit,
            slots=self._slots.setdefault((model, resolved), Slots()),
        )
        return ChainStep(
            resolved,
            role,
            call,
            reserve,
            step_metrics,
            breaker,
            model_call=model_call,
        )

    def _call(
        self,
        ref: str,
        version: Any,
        predictor: Predictor,
        signature: Signature | None,
        metrics: ModelMetrics,
        device: str | None,
    ) -> ModelCall:
        flavor = getattr(version, "flavor", "")
        if flavor == "static":
            return ModelCall(
                predictor,
                executor=self.executor,
                clock=self.clock,
                inline_below_s=math.inf,
                enforce_deadline=False,
            )
        cost = self._costs.setdefault((ref, device), CallCost())
        call = ModelCall(
            predictor,
            executor=self.executor,
            clock=self.clock,
            on_late=metrics.late_results.inc,
            inline_below_s=self.inline_below_s if flavor in INLINE_FLAVORS else 0.0,
            cost=cost,
        )
        if cost.samples == 0 and signature is not None:
            call.calibrate(signature.sample_records(1))
        return call

    def _runtime(
        self, ref: str, version: Any, metrics: ModelMetrics, device: str | None = None
    ) -> Predictor:
        found = self._runtimes.get((ref, device))
        if found is not None:
            return found
        try:
            predictor = self._loader(version, device)
            load = getattr(predictor, "load", None)
            if callable(load):
                load()
        except Exception:
            metrics.load_failed()
            raise
        self._runtimes[(ref, device)] = predictor
        return predictor

    def _loader(self, version: Any, device: str | None) -> Predictor:
        """Load ``version`` here, or as a proxy into the process pool (python flavor)."""
        spec_of = getattr(self.source, "runtime_spec", None)
        flavor = getattr(version, "flavor", "")
        if self.processes is not None and flavor in PROCESS_FLAVORS and callable(spec_of):
            return self.processes.predictor(spec_of(version))
        return self.source.load(version, device=device)

    def _breaker(
        self, model: str, ref: str, config: BreakerConfig, on_change: Callable[[str], None]
    ) -> CircuitBreaker:
        key = (model, ref)
        found = self._breakers.get(key)
        if found is None or found.config != config:
            found = CircuitBreaker(config, clock=self.clock, on_change=on_change)
            self._breakers[key] = found
            on_change("closed")
        return found


def _output(signature: Signature | None) -> Any:
    return None if signature is None else signature.output
