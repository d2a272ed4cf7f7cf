"""The portfolio file: parsing, every problem with its line, YAML syntax errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from flotilla.portfolio import Portfolio, PortfolioError, StaticStep, load_portfolio

GOOD = """\
models:
  recs:
    live: recs@champion          # a version or an alias
    deadline_ms: 50
    fallbacks: [recs-lite@2, {static: {items: [101, 7, 42]}}]
    input_policy: fallback
    max_concurrency: 32
    breaker: {failure_rate: 0.5, min_requests: 20, window_s: 10, open_s: 5}
    tier: cpu
  churn:
    live: churn
    fallbacks:
      - static: {value: 0.1}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "portfolio.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(PortfolioError) as info:
        load_portfolio(_write(tmp_path, text))
    return info.value.problems


def test_the_issue_example_parses(tmp_path: Path) -> None:
    portfolio = load_portfolio(_write(tmp_path, GOOD))
    assert list(portfolio.models) == ["recs", "churn"]
    recs = portfolio.models["recs"]
    assert recs.deadline_ms == 50.0
    assert recs.fallbacks[-1] == StaticStep({"items": [101, 7, 42]})
    assert portfolio.models["churn"].static_step() == StaticStep({"value": 0.1})
    assert portfolio.source == str(tmp_path / "portfolio.yaml")
    assert Portfolio.from_dict(portfolio.to_dict()).models == portfolio.models


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "models:\n  recs:\n    live: [recs@1\n    tier: cpu\n")
    assert len(problems) == 1
    assert "YAML syntax error at line 4, column 9" in problems[0]


def test_tab_indentation_is_a_syntax_error(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "models:\n\trecs: {}\n")
    assert "YAML syntax error at line 2, column 1" in problems[0]


def test_problems_carry_line_numbers_and_come_in_file_order(tmp_path: Path) -> None:
    text = (
        GOOD.replace("deadline_ms: 50", "deadline_ms: 0")
        .replace("tier: cpu", "teir: cpu")
        .replace("live: churn", "live: 7")
    )
    problems = _problems(tmp_path, text)
    assert problems[0].startswith("line 4: The 'deadline_ms' of model 'recs' must be a number")
    assert problems[1].startswith(
        "line 9: Unknown key 'teir' in model 'recs'. Did you mean 'tier'?"
    )
    assert problems[2].startswith("line 11: The 'live' of model 'churn' must be a reference")
    assert "Got 7 instead" in problems[2]


def test_wrong_type_names_model_key_expected_and_got(tmp_path: Path) -> None:
    problems = _problems(tmp_path, GOOD.replace("max_concurrency: 32", "max_concurrency: lots"))
    assert problems == [
        "line 7: The 'max_concurrency' of model 'recs' must be an integer >= 1. "
        "Got 'lots' (str) instead."
    ]


def test_duplicate_model_is_reported(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path, GOOD + "  recs:\n    live: recs@1\n    fallbacks: [{static: {value: 1}}]\n"
    )
    assert any("The key 'recs' appears twice (lines 2 and 14)" in p for p in problems)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param("", "It is empty", id="empty"),
        pytest.param("- a\n- b\n", "must be a mapping with a 'models' key", id="list"),
        pytest.param("modles: {}\n", "Did you mean 'models'?", id="top-key"),
        pytest.param(
            "models: [recs]\n", "'models' of the portfolio must be a mapping", id="models-list"
        ),
        pytest.param(
            "models:\n  recs: recs@1\n", "entry of model 'recs' must be a mapping", id="entry"
        ),
        pytest.param("models:\n  Recs!: {live: recs@1}\n", "cannot name a model", id="model-name"),
    ],
)
def test_shape_problems(tmp_path: Path, text: str, needle: str) -> None:
    problems = _problems(tmp_path, text)
    assert any(needle in p for p in problems), problems


def test_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PortfolioError, match="does not exist"):
        load_portfolio(tmp_path / "nope.yaml")


def test_binary_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"\xff\xfe\x00models")
    with pytest.raises(PortfolioError, match="cannot be read as UTF-8"):
        load_portfolio(path)
