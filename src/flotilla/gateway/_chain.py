"""A served model: its fallback chain, run step by step inside the request's deadline."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from flotilla.gateway._breaker import CircuitBreaker
from flotilla.gateway._steps import ModelCall, StepCall, StepFailure
from flotilla.monitoring.metrics import ModelMetrics, StepMetrics
from flotilla.signature import Signature
from flotilla.types import Clock, Predictor, Record

__all__ = ["Answer", "ChainStep", "ServedModel", "ShadowStep", "budget_reserves"]

_FALLBACK_SHARE = 0.2
_MAX_RESERVE_SHARE = 0.5
_STATIC_RESERVE_S = 0.001


@dataclass(frozen=True, slots=True)
class ChainStep:
    """One step of a served chain.

    Attributes:
        ref: what answers (``recs@3`` or ``static:recs``).
        role: ``live``, ``fallback`` or ``static``.
        call: the folded step call.
        reserve_s: seconds of the deadline kept for the steps after this one.
        metrics: the step's metric children.
        breaker: the step's circuit breaker (``None`` for static steps).
        loaded: whether the step's version loaded (static steps always are).
        load_error: why it did not load, if it did not.
        model_call: the innermost call of a model step (where it runs and what it costs).
    """

    ref: str
    role: str
    call: StepCall
    reserve_s: float
    metrics: StepMetrics
    breaker: CircuitBreaker | None = None
    loaded: bool = True
    load_error: str = ""
    model_call: ModelCall | None = None

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ref": self.ref, "role": self.role, "loaded": self.loaded}
        if self.breaker is not None:
            out["breaker"] = self.breaker.snapshot()
        call = self.model_call
        if call is not None and self.role != "static":
            per_row = call.cost.per_row
            out["inline"] = call.runs_inline(1)
            out["call_cost_us"] = None if math.isinf(per_row) else round(per_row * 1e6, 1)
        if self.load_error:
            out["load_error"] = self.load_error
        return out


@dataclass(frozen=True, slots=True)
class ShadowStep:
    """A challenger mirrored after the answer (``predictor`` is ``None`` if it did not load)."""

    ref: str
    sample: float
    predictor: Predictor | None
    load_error: str = ""

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ref": self.ref,
            "sample": self.sample,
            "loaded": self.predictor is not None,
        }
        if self.load_error:
            out["load_error"] = self.load_error
        return out


@dataclass(frozen=True, slots=True)
class Answer:
    """What the chain answered and why it is degraded (if it is)."""

    predictions: list[Any]
    step: ChainStep
    reasons: list[dict[str, str]]


@dataclass(frozen=True, kw_only=True)
class ServedModel:
    """Everything the request path needs for one model, swapped as a whole on reload.

    Attributes:
        name: the model's name.
        revision: the deployment revision served.
        live_ref: the resolved live version (``recs@3``).
        deadline_s: the request's deadline in seconds.
        input_policy: ``fallback`` or ``reject``.
        signature: the live version's signature (validated first under ``reject``).
        steps: the chain, live first, static last.
        metrics: the model's metric children.
        shadows: challengers that get a sampled copy of each request after the answer.
    """

    name: str
    revision: int
    live_ref: str
    deadline_s: float
    input_policy: str
    signature: Signature | None
    steps: tuple[ChainStep, ...]
    metrics: ModelMetrics
    spec: dict[str, Any] = field(default_factory=dict)
    shadows: tuple[ShadowStep, ...] = ()

    @property
    def loaded(self) -> bool:
        """Whether every model step of the chain loaded."""
        return all(step.loaded for step in self.steps)

    async def answer(
        self, records: list[Record], start: float, clock: Clock, slack_s: float = 0.0
    ) -> Answer:
        """Run the chain: each step gets the deadline minus its reserve; static never fails.

        ``slack_s`` (how late the event loop runs its timers now, see
        :class:`~flotilla.gateway._lag.LoopLag`) shortens every budget too, by at most
        10% of the deadline, so that a late timer still lets the chain answer in time.
        """
        reasons: list[dict[str, str]] = []
        deadline = start + self.deadline_s - min(slack_s, _MAX_SLACK_SHARE * self.deadline_s)
        metrics = self.metrics
        for step in self.steps:
            began = clock.monotonic()
            try:
                predictions = await step.call(records, deadline - step.reserve_s)
            except Exception as exc:  # StepFailure, or a bug in a wrapper: never an error page
                failure = (
                    exc
                    if isinstance(exc, StepFailure)
                    else StepFailure("error", f"{type(exc).__name__}: {exc}"[:500])
                )
                step.metrics.duration.observe(clock.monotonic() - began)
                reason = {"ref": step.ref, "reason": failure.reason}
                if failure.detail:
                    reason["detail"] = failure.detail
                reasons.append(reason)
                metrics.fallback(failure.reason)
                continue
            step.metrics.duration.observe(clock.monotonic() - began)
            return Answer(predictions, step, reasons)
        # Unreachable with a static last step; kept so a broken chain still answers.
        last = self.steps[-1]
        return Answer([None] * len(records), last, reasons)

    def describe(self) -> dict[str, Any]:
        """The model's state for ``GET /v1/models``."""
        failed = [s.ref for s in self.steps if not s.loaded]
        live = self.steps[0]
        status = "ok"
        if failed:
            status = "not_loaded" if live.ref in failed else "degraded"
        elif live.breaker is not None and live.breaker.state != "closed":
            status = "degraded"
        return {
            "name": self.name,
            "revision": self.revision,
            "live": self.live_ref,
            "deadline_ms": round(self.deadline_s * 1000, 3),
            "input_policy": self.input_policy,
            "loaded": not failed,
            "status": status,
            "chain": [s.describe() for s in self.steps],
            "shadows": [s.describe() for s in self.shadows],
        }


_MAX_SLACK_SHARE = 0.1


def budget_reserves(deadline_s: float, kinds: list[str]) -> list[float]:
    """Seconds of the deadline each step leaves to the steps after it.

    ``kinds`` holds ``"model"`` or ``"static"`` per step. A model fallback reserves 20% of the
    deadline, the static step 1 ms (or 5% when the deadline is tiny); all reserves together
    keep at most half of the deadline, so the live step always has at least the other half.

    Example:
        >>> [round(r, 4) for r in budget_reserves(0.05, ["model", "model", "static"])]
        [0.011, 0.001, 0.0]
    """
    own = [
        min(_STATIC_RESERVE_S, 0.05 * deadline_s) if k == "static" else _FALLBACK_SHARE * deadline_s
        for k in kinds
    ]
    reserves: list[float] = []
    for i in range(len(kinds)):
        reserves.append(min(sum(own[i + 1 :]), _MAX_RESERVE_SHARE * deadline_s))
    return reserves
