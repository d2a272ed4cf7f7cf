"""DeploymentSpec and its parts: defaults, round trips, range checks, step forms."""

from __future__ import annotations

from typing import Any

import pytest

from flotilla.errors import DeploymentError
from flotilla.portfolio import (
    BreakerSpec,
    DeploymentSpec,
    PortfolioError,
    PromotionPolicy,
    RefStep,
    ShadowSpec,
    StaticStep,
    diff_specs,
)


def _spec(**extra: Any) -> dict[str, Any]:
    return {"live": "recs@champion", "fallbacks": [{"static": {"items": [1, 2]}}], **extra}


def test_defaults_and_round_trip() -> None:
    spec = DeploymentSpec.from_dict(_spec(), model="recs")
    assert spec.deadline_ms == 100.0
    assert spec.input_policy == "fallback"
    assert spec.max_concurrency == 32
    assert spec.breaker == BreakerSpec()
    assert spec.tier == "cpu"
    assert spec.shadows == ()
    assert spec.promotion is None
    data = spec.to_dict()
    assert data["model"] == "recs"
    assert DeploymentSpec.from_dict(data) == spec


def test_full_spec_round_trip() -> None:
    raw = _spec(
        deadline_ms=50,
        fallbacks=["recs-lite@2", {"ref": "recs-lite"}, {"static": {"value": "x"}}],
        input_policy="reject",
        max_concurrency=4,
        breaker={"failure_rate": 0.25, "min_requests": 5, "window_s": 2, "open_s": 1},
        tier="gpu",
        shadows=[{"ref": "recs@4", "sample": 0.25}, "recs@5"],
        promotion={"min_labeled": 10, "min_days": 0, "metric": "ndcg@10", "auto": True},
    )
    spec = DeploymentSpec.from_dict(raw, model="recs")
    assert spec.fallbacks == (
        RefStep("recs-lite@2"),
        RefStep("recs-lite"),
        StaticStep({"value": "x"}),
    )
    assert spec.shadows == (ShadowSpec(ref="recs@4", sample=0.25), ShadowSpec(ref="recs@5"))
    assert spec.breaker.open_s == 1.0
    assert spec.promotion == PromotionPolicy(
        min_labeled=10, min_days=0, metric="ndcg@10", auto=True
    )
    assert spec.chain_refs() == ["recs@champion", "recs-lite@2", "recs-lite"]
    assert spec.describe_chain() == "recs@champion -> recs-lite@2 -> recs-lite -> static 'x'"
    assert DeploymentSpec.from_dict(spec.to_dict()) == spec
    assert diff_specs(spec.to_dict(), spec.to_dict()) == {}


def test_ref_step_parts() -> None:
    assert RefStep("recs@champion").model == "recs"
    assert RefStep("recs@champion").selector == "champion"
    assert RefStep("recs").selector is None
    assert StaticStep({"items": [3, 4]}).answer == [3, 4]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        pytest.param(
            {"deadline_ms": 0},
            "'deadline_ms' of model 'recs' must be a number greater than 0. Got 0",
            id="deadline-zero",
        ),
        pytest.param({"deadline_ms": -5.0}, "greater than 0", id="deadline-negative"),
        pytest.param({"deadline_ms": "fast"}, "Got 'fast' (str) instead", id="deadline-type"),
        pytest.param(
            {"max_concurrency": 0},
            "'max_concurrency' of model 'recs' must be an integer >= 1",
            id="concurrency",
        ),
        pytest.param({"max_concurrency": 2.5}, "integer >= 1. Got 2.5", id="concurrency-float"),
        pytest.param({"input_policy": "rejct"}, "Did you mean 'reject'?", id="policy"),
        pytest.param(
            {"tier": "tpu"}, "'tier' of model 'recs' must be one of 'cpu', 'gpu'", id="tier"
        ),
        pytest.param(
            {"breaker": {"failure_rate": 1.5}},
            "'failure_rate' of the breaker of model 'recs' must be a number in (0, 1]",
            id="breaker-rate",
        ),
        pytest.param(
            {"breaker": {"min_requests": 0}}, "'min_requests' of the breaker", id="breaker-min"
        ),
        pytest.param(
            {"breaker": {"window_s": 0}}, "'window_s' of the breaker", id="breaker-window"
        ),
        pytest.param({"breaker": {"opn_s": 1}}, "Did you mean 'open_s'?", id="breaker-key"),
        pytest.param(
            {"breaker": 5}, "'breaker' of model 'recs' must be a mapping", id="breaker-type"
        ),
        pytest.param(
            {"shadows": [{"ref": "recs@4", "sample": 0}]},
            "'sample' of shadow 1 of model 'recs' must be a number in (0, 1]",
            id="shadow-zero",
        ),
        pytest.param(
            {"shadows": [{"ref": "recs@4", "sample": 1.5}]}, "(0, 1]. Got 1.5", id="shadow-big"
        ),
        pytest.param(
            {"shadows": "recs@4"}, "'shadows' of model 'recs' must be a list", id="shadows-type"
        ),
        pytest.param({"promotion": {"metric": "ndcg"}}, "ndcg@k", id="metric"),
        pytest.param({"promotion": {"min_labeled": 0}}, "'min_labeled'", id="min-labeled"),
        pytest.param(
            {"promotion": {"auto": "yes"}},
            "'auto' of the promotion policy of model 'recs' must be true or false",
            id="auto",
        ),
        pytest.param(
            {"fallbacks": ["Recs@2"]},
            "Fallback 1 of model 'recs' must be a reference",
            id="bad-ref",
        ),
        pytest.param(
            {"fallbacks": [{"static": {"value": [1, 2]}}]},
            "Use {static: {items: [...]}}",
            id="static-list-value",
        ),
        pytest.param(
            {"fallbacks": [{"static": {"value": float("nan")}}]}, "finite number", id="static-nan"
        ),
        pytest.param(
            {"fallbacks": [{"static": {"itms": [1]}}]}, "Did you mean 'items'?", id="static-key"
        ),
        pytest.param(
            {"fallbacks": [{"static": {"items": [1.5]}}]}, "list of item ids", id="static-items"
        ),
        pytest.param(
            {"fallbacks": [{"statik": {"value": 1}}]}, "Did you mean 'static'?", id="step-key"
        ),
        pytest.param({"fallbacks": [3]}, "Got 3 instead", id="step-type"),
        pytest.param({"live": None}, "has no 'live' step", id="no-live"),
        pytest.param({"live": 3}, "'live' of model 'recs' must be a reference", id="live-type"),
        pytest.param(
            {"deadlin_ms": 5},
            "Unknown key 'deadlin_ms' in model 'recs'. Did you mean 'deadline_ms'?",
            id="unknown-key",
        ),
        pytest.param({"model": "other"}, "must match the key 'recs'", id="model-mismatch"),
    ],
)
def test_bad_values_are_named(extra: dict[str, Any], needle: str) -> None:
    raw = _spec(**extra)
    if raw.get("live") is None:
        raw.pop("live")
    with pytest.raises(PortfolioError) as info:
        DeploymentSpec.from_dict(raw, model="recs")
    assert isinstance(info.value, DeploymentError)
    assert needle in str(info.value)


def test_every_problem_is_reported_at_once() -> None:
    raw = _spec(deadline_ms=0, tier="tpu", breaker={"open_s": -1}, fallbacks=["x@"])
    with pytest.raises(PortfolioError) as info:
        DeploymentSpec.from_dict(raw, model="recs")
    assert len(info.value.problems) == 4


def test_constructors_validate_too() -> None:
    with pytest.raises(DeploymentError, match="greater than 0"):
        DeploymentSpec(model="recs", live="recs@1", deadline_ms=0)
    with pytest.raises(DeploymentError, match="model name"):
        DeploymentSpec(model="Recs!", live="recs@1")
    with pytest.raises(DeploymentError, match="reference"):
        DeploymentSpec(model="recs", live="recs@@1")
    with pytest.raises(DeploymentError, match="failure_rate"):
        BreakerSpec(failure_rate=0)
    with pytest.raises(DeploymentError, match="sample"):
        ShadowSpec(ref="recs@2", sample=2)
    with pytest.raises(DeploymentError, match="metric"):
        PromotionPolicy(metric="precision")
    with pytest.raises(DeploymentError, match="exactly one of 'value' or 'items'"):
        StaticStep({"value": 1, "items": [1]})


def test_diff_specs_goes_one_level_down() -> None:
    before = DeploymentSpec.from_dict(_spec(), model="recs").to_dict()
    after = DeploymentSpec.from_dict(
        _spec(deadline_ms=20, breaker={"open_s": 9}), model="recs"
    ).to_dict()
    assert diff_specs(before, after) == {
        "deadline_ms": {"before": 100.0, "after": 20.0},
        "breaker.open_s": {"before": 5.0, "after": 9.0},
    }
    assert set(diff_specs(None, after)) >= {"live", "fallbacks", "breaker"}


def test_from_dict_needs_the_model_name() -> None:
    with pytest.raises(DeploymentError, match="needs the model's name"):
        DeploymentSpec.from_dict({"live": "recs@1"})


def test_spec_is_frozen_and_normalised() -> None:
    spec = DeploymentSpec(model="recs", live="recs@1", deadline_ms=20, fallbacks=[])  # type: ignore[arg-type]
    assert spec.deadline_ms == 20.0 and isinstance(spec.deadline_ms, float)
    assert spec.fallbacks == ()
    with pytest.raises(AttributeError):
        spec.tier = "gpu"  # type: ignore[misc]
