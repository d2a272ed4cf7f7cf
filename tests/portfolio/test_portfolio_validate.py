"""Validation of a portfolio against a real registry (SQLite; the deploy tests cover both)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from flotilla.portfolio import Portfolio, PortfolioError, validate
from flotilla.registry import ModelVersion, Registry
from flotilla.settings import Settings

Register = Callable[..., ModelVersion]

TOP = {"static": {"items": [101, 7, 42]}}


@pytest.fixture
def registry(make_settings: Callable[..., Settings]) -> Iterator[Registry]:
    """SQLite only: validation reads the registry the same way on every database."""
    registry = Registry.open(make_settings())
    yield registry
    registry.close()


def _portfolio(**models: dict[str, Any]) -> Portfolio:
    return Portfolio.from_dict({"models": models}, source="p.yaml")


def _problems(registry: Registry, **models: dict[str, Any]) -> list[str]:
    with pytest.raises(PortfolioError) as info:
        validate(_portfolio(**models), registry)
    return info.value.problems


def test_a_good_portfolio_passes(registry: Registry, recs_world: Register) -> None:
    validate(
        _portfolio(
            recs={
                "live": "recs@champion",
                "fallbacks": ["recs-lite@2", "recs-lite@1", "recs-top"],
                "shadows": [{"ref": "recs@1", "sample": 0.5}],
                "promotion": {"metric": "ndcg@5"},
            },
            churn={"live": "churn", "fallbacks": [{"static": {"value": 0.1}}]},
        ),
        registry,
    )


def test_chain_not_ending_in_static_says_how_to_add_one(
    registry: Registry, recs_world: Register
) -> None:
    (problem,) = _problems(registry, recs={"live": "recs@2", "fallbacks": ["recs-lite@2"]})
    assert (
        "The chain of model 'recs' (recs@2 -> recs-lite@2) does not end in a static step" in problem
    )
    assert "{static: {value: 0.0}}" in problem
    assert "{static: {items: [101, 7, 42]}}" in problem


def test_unknown_alias_version_and_model_list_what_exists(
    registry: Registry, recs_world: Register
) -> None:
    problems = _problems(
        registry,
        recs={"live": "recs@chamion", "fallbacks": ["recs-lite@7", "recs-lyte@1", TOP]},
    )
    assert len(problems) == 3
    assert "'recs@chamion'" in problems[0] and "'champion'" in problems[0]
    assert "fallback 1 of model 'recs' ('recs-lite@7')" in problems[1]
    assert "1, 2" in problems[1]
    assert "no model named 'recs-lyte'" in problems[2]
    assert "Did you mean 'recs-lite'?" in problems[2]
    assert "Registered models: churn, recs, recs-lite, recs-top" in problems[2]


def test_unregistered_model_key(registry: Registry, recs_world: Register) -> None:
    problems = _problems(registry, rec={"live": "rec@1", "fallbacks": [TOP]})
    assert len(problems) == 1
    assert "Model 'rec' is not registered. Did you mean 'recs'?" in problems[0]


def test_live_must_be_a_version_of_the_same_model(registry: Registry, recs_world: Register) -> None:
    (problem,) = _problems(registry, recs={"live": "recs-lite@2", "fallbacks": [TOP]})
    assert "a version of model 'recs-lite'" in problem
    assert "must be a version of 'recs' itself" in problem


@pytest.mark.parametrize(
    ("fallbacks", "shadows", "needle"),
    [
        pytest.param(
            ["recs@2", TOP],
            [],
            "'recs@champion' and 'recs@2' both name recs@2",
            id="alias-and-version",
        ),
        pytest.param(
            ["recs-lite@1", "recs-lite@1", TOP], [], "'recs-lite@1' appears twice", id="same-ref"
        ),
        pytest.param(
            ["recs-lite", "recs-lite@2", TOP],
            [],
            "'recs-lite' and 'recs-lite@2' both name recs-lite@2",
            id="latest",
        ),
        pytest.param(
            ["recs-lite@1", TOP],
            [{"ref": "recs-lite@1", "sample": 0.1}],
            "'recs-lite@1' appears twice",
            id="shadow",
        ),
        pytest.param([TOP, {"static": {"items": [1]}}], [], "2 static steps", id="two-statics"),
        pytest.param(["recs-top", TOP], [], "2 static steps", id="registered-and-inline-static"),
    ],
)
def test_a_step_that_repeats(
    registry: Registry,
    recs_world: Register,
    fallbacks: list[Any],
    shadows: list[Any],
    needle: str,
) -> None:
    problems = _problems(
        registry, recs={"live": "recs@champion", "fallbacks": fallbacks, "shadows": shadows}
    )
    assert any(needle in p for p in problems), problems


def test_static_in_the_middle_hides_later_steps(registry: Registry, recs_world: Register) -> None:
    (problem,) = _problems(
        registry, recs={"live": "recs@2", "fallbacks": ["recs-top", "recs-lite@1"]}
    )
    assert "The fallback 1 of model 'recs' is static and cannot fail" in problem
    assert "the 1 step(s) after it would never run" in problem


def test_a_static_live_version_needs_no_fallbacks(registry: Registry, recs_world: Register) -> None:
    validate(_portfolio(**{"recs-top": {"live": "recs-top@1"}}), registry)
    (problem,) = _problems(
        registry, **{"recs-top": {"live": "recs-top@1", "fallbacks": ["recs-lite@1"]}}
    )
    assert "The live step of model 'recs-top' is static" in problem


def test_fallback_inputs_and_output_kind(registry: Registry, recs_world: Register) -> None:
    register = recs_world
    register("recs-geo", inputs={"user": "string", "city": "string"}, kind="items", answer=[1])
    register("recs-num", inputs={"user": "int"}, kind="items", answer=[1])
    register("recs-score", inputs={"user": "string"}, kind="score", answer=1.0)
    register("recs-wide", inputs={"user": "string"}, kind="items", k=50, answer=[1])
    problems = _problems(
        registry,
        recs={
            "live": "recs@2",
            "fallbacks": ["recs-geo", "recs-num", "recs-score", "recs-wide", TOP],
        },
    )
    assert len(problems) == 4
    assert "needs the input 'city', which the live model does not take" in problems[0]
    assert "takes 'user' as int, but the live model sends it as string" in problems[1]
    assert "answers 'score' but the live model answers 'items'" in problems[2]
    assert "answers up to 50 items but the live model at most 5" in problems[3]


@pytest.mark.parametrize(
    ("model", "static", "needle"),
    [
        pytest.param(
            "churn",
            {"static": {"value": 1.5}},
            "probability 1.5 is outside [0, 1]",
            id="prob-range",
        ),
        pytest.param("churn", {"static": {"value": "yes"}}, "expected a number", id="prob-type"),
        pytest.param(
            "churn",
            {"static": {"items": [1]}},
            "is a list of items, but the live model answers 'probability'",
            id="items-for-prob",
        ),
        pytest.param(
            "recs",
            {"static": {"value": 1}},
            "answers a list of items; use {static: {items: [...]}}",
            id="value-for-items",
        ),
        pytest.param(
            "recs",
            {"static": {"items": [1, 2, 3, 4, 5, 6]}},
            "expected at most 5 items",
            id="too-many-items",
        ),
    ],
)
def test_static_answer_must_fit_the_live_output(
    registry: Registry, recs_world: Register, model: str, static: dict[str, Any], needle: str
) -> None:
    (problem,) = _problems(registry, **{model: {"live": f"{model}@1", "fallbacks": [static]}})
    assert needle in problem


def test_shadow_and_promotion_checks(registry: Registry, recs_world: Register) -> None:
    problems = _problems(
        registry,
        recs={
            "live": "recs@2",
            "fallbacks": [TOP],
            "shadows": [{"ref": "recs-top", "sample": 0.5}, {"ref": "recs@9", "sample": 0.5}],
            "promotion": {"metric": "auc"},
        },
    )
    assert len(problems) == 3
    assert "shadow 1 of model 'recs' ('recs-top') is a static model" in problems[0]
    assert "shadow 2 of model 'recs' ('recs@9')" in problems[1]
    assert (
        "promotion metric 'auc' of model 'recs' does not suit its output kind 'items'"
        in problems[2]
    )


def test_all_models_problems_are_listed_together(registry: Registry, recs_world: Register) -> None:
    problems = _problems(
        registry,
        recs={"live": "recs@champion", "fallbacks": ["recs-lite@2"]},
        churn={"live": "churn@5", "fallbacks": [{"static": {"value": 0.1}}]},
    )
    assert len(problems) == 2
    assert "model 'recs'" in problems[0] and "model 'churn'" in problems[1]
