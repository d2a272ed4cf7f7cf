"""A served model's chain: order of steps, reasons, and the static step that always answers."""

from __future__ import annotations

import asyncio
from typing import Any

from flotilla.gateway import ChainStep, ServedModel, StepFailure
from flotilla.gateway._steps import StaticCall
from flotilla.monitoring.metrics import GatewayMetrics
from flotilla.testing import FakeClock


class Failing:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.deadlines: list[float] = []

    async def __call__(self, records: list[Any], deadline: float) -> list[Any]:
        self.deadlines.append(deadline)
        raise self.exc


def served(*calls: Any) -> ServedModel:
    metrics = GatewayMetrics().for_model("recs")
    steps = [
        ChainStep(f"recs@{i + 1}", "live" if i == 0 else "fallback", c, 0.01, metrics.step("x"))
        for i, c in enumerate(calls)
    ]
    steps.append(
        ChainStep(
            "static:recs", "static", StaticCall({"items": [1, 2]}), 0.0, metrics.step("static")
        )
    )
    return ServedModel(
        name="recs",
        revision=1,
        live_ref="recs@1",
        deadline_s=0.05,
        input_policy="fallback",
        signature=None,
        steps=tuple(steps),
        metrics=metrics,
    )


def test_reasons_are_listed_in_chain_order_and_static_answers() -> None:
    live = Failing(StepFailure("timeout", "no answer within 39 ms"))
    lite = Failing(StepFailure("circuit_open"))
    model = served(live, lite)
    answer = asyncio.run(model.answer([{}, {}], 100.0, FakeClock()))
    assert answer.predictions == [[1, 2], [1, 2]]
    assert answer.step.role == "static"
    assert answer.reasons == [
        {"ref": "recs@1", "reason": "timeout", "detail": "no answer within 39 ms"},
        {"ref": "recs@2", "reason": "circuit_open"},
    ]
    assert live.deadlines == [100.0 + 0.05 - 0.01]  # the request deadline minus the reserve


def test_an_unexpected_exception_in_a_step_is_an_error_not_a_crash() -> None:
    model = served(Failing(TypeError("bug")))
    answer = asyncio.run(model.answer([{}], 0.0, FakeClock()))
    assert answer.reasons[0]["reason"] == "error"
    assert "TypeError: bug" in answer.reasons[0]["detail"]
    assert answer.step.ref == "static:recs"


def test_describe_reports_status() -> None:
    described = served(Failing(StepFailure("error"))).describe()
    assert described["status"] == "ok"
    assert [s["role"] for s in described["chain"]] == ["live", "static"]


def test_loop_slack_shortens_each_budget_up_to_a_tenth_of_the_deadline() -> None:
    live = Failing(StepFailure("timeout"))
    model = served(live)
    asyncio.run(model.answer([{}], 100.0, FakeClock(), slack_s=0.002))
    asyncio.run(model.answer([{}], 100.0, FakeClock(), slack_s=1.0))  # capped: 5 ms of 50
    assert live.deadlines == [
        100.0 + 0.05 - 0.002 - 0.01,
        100.0 + 0.05 - 0.005 - 0.01,
    ]
