"""The portfolio file: every served model's deployment spec, in one reviewable YAML file.

Example file::

    models:
      recs:
        live: recs@champion
        deadline_ms: 50
        fallbacks: [recs-lite@2, {static: {items: [101, 7, 42]}}]
      churn:
        live: churn@3
        fallbacks: [{static: {value: 0.1}}]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from flotilla.portfolio._rules import Path, PortfolioError, Problem, Reader, show
from flotilla.portfolio.spec import DeploymentSpec

__all__ = ["Portfolio", "load_portfolio"]

_TOP_KEYS = ("models",)


@dataclass(frozen=True)
class Portfolio:
    """All declared deployments, by model name.

    Args:
        models: model name -> its deployment spec.
        source: where the portfolio was read from (for messages), if from a file.
    """

    models: dict[str, DeploymentSpec] = field(default_factory=dict)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The file form: ``{"models": {name: spec without 'model'}}``."""
        out: dict[str, Any] = {}
        for name, spec in self.models.items():
            entry = spec.to_dict()
            entry.pop("model")
            out[name] = entry
        return {"models": out}

    @classmethod
    def from_dict(cls, data: Any, *, source: str | None = None) -> Portfolio:
        """Parse the file form; raises :class:`PortfolioError` listing every problem."""
        problems: list[Problem] = []
        portfolio = _parse(data, source, problems)
        if problems:
            raise PortfolioError([p.message for p in problems], subject=_subject(source))
        return portfolio


def _subject(source: str | None) -> str:
    return f"Portfolio {source!r}" if source else "The portfolio"


def _parse(data: Any, source: str | None, problems: list[Problem]) -> Portfolio:
    if data is None:
        problems.append(
            Problem(
                (),
                "It is empty; it needs a 'models' mapping, e.g. "
                "'models: {recs: {live: recs@1, fallbacks: [{static: "
                "{value: 0.0}}]}}'.",
            )
        )
        return Portfolio(source=source)
    if not isinstance(data, Mapping):
        problems.append(
            Problem(
                (),
                "The file must be a mapping with a 'models' key. "
                f"Got {type(data).__name__} instead.",
            )
        )
        return Portfolio(source=source)
    reader = Reader(data, where="the portfolio", path=(), problems=problems)
    reader.check_keys(_TOP_KEYS)
    if "models" not in data:
        reader.problem(
            None,
            "The portfolio has no 'models' mapping; add 'models:' with one entry per model name.",
        )
    models = reader.mapping("models") or {}
    specs: dict[str, DeploymentSpec] = {}
    for name, entry in models.items():
        if not isinstance(name, str):
            reader.problem("models", f"Model names must be strings. Got {show(name)} instead.")
            continue
        spec = DeploymentSpec.parse(entry, model=name, path=("models", name), problems=problems)
        if spec is not None:
            specs[name] = spec
    return Portfolio(models=specs, source=source)


def load_portfolio(path: str | FsPath) -> Portfolio:
    """Read and parse a portfolio YAML file.

    Every problem is reported at once, each with its line number: a YAML syntax error
    (with line and column), unknown keys (with a did-you-mean), wrong types (which model,
    which key, what was expected, what was got) and out-of-range values. References are
    not looked up here; :func:`flotilla.portfolio.validate` checks them against a registry.

    Raises:
        PortfolioError: (a ``DeploymentError``) when the file is missing or invalid.

    Example:
        >>> load_portfolio("portfolio.yaml").models["recs"].deadline_ms  # doctest: +SKIP
        50.0
    """
    p = FsPath(path)
    source = str(p)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PortfolioError(
            [f"The file {source!r} does not exist. Check the path."], subject=_subject(source)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PortfolioError(
            [f"The file {source!r} cannot be read as UTF-8 text: {exc}"], subject=_subject(source)
        ) from exc
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise PortfolioError([_syntax_message(exc)], subject=_subject(source)) from exc
    except yaml.YAMLError as exc:
        raise PortfolioError([f"It is not valid YAML: {exc}"], subject=_subject(source)) from exc
    problems: list[Problem] = []
    lines: dict[Path, int] = {}
    if node is not None:
        _index(node, (), lines, problems)
    portfolio = _parse(data, source, problems)
    if problems:
        located = sorted((_line(p, lines), i, p.message) for i, p in enumerate(problems))
        messages = [msg if line == 0 else f"line {line}: {msg}" for line, _, msg in located]
        raise PortfolioError(messages, subject=_subject(source))
    return portfolio


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
    what = " ".join(x for x in (exc.context, exc.problem) if x)
    return f"YAML syntax error at {where}: {what}. Fix the file and run again."


def _index(node: yaml.Node, path: Path, lines: dict[Path, int], problems: list[Problem]) -> None:
    """Record the line of every key/item; report keys that appear twice in one mapping."""
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if key in seen:
                problems.append(
                    Problem(
                        (*path, key),
                        f"The key {key!r} appears twice (lines {seen[key]} and {line}); keep one.",
                    )
                )
            seen[key] = line
            _index(value_node, (*path, key), lines, problems)
            lines[(*path, key)] = line
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _index(item, (*path, i), lines, problems)


def _line(problem: Problem, lines: Mapping[Path, int]) -> int:
    """The line of the innermost known part of the problem's path (0 when unknown)."""
    path = problem.path
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 0) if path else 0
