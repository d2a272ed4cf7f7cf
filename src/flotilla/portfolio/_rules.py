"""Typed, ranged reading of portfolio values that collects problems instead of raising."""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from flotilla.errors import DeploymentError

__all__ = ["Path", "PortfolioError", "Problem", "Reader", "Rule", "did_you_mean", "show"]

Path = tuple[str | int, ...]
"""Where a value sits in the portfolio file, e.g. ``("models", "recs", "deadline_ms")``."""


class PortfolioError(DeploymentError):
    """A portfolio or deployment spec is invalid; ``problems`` lists every problem found.

    Attributes:
        problems: one human-readable line per problem.
    """

    def __init__(self, problems: list[str], *, subject: str = "The portfolio") -> None:
        count = len(problems)
        head = f"{subject} has {count} problem{'' if count == 1 else 's'}:"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Problem:
    """One problem, with where it was found (used to add the YAML line number)."""

    path: Path
    message: str


def show(value: Any) -> str:
    """A short repr of a user value for messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def did_you_mean(word: str, choices: Collection[str]) -> str:
    """`` Did you mean 'x'?`` when a choice is close to ``word``, else ``""``."""
    hint = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" Did you mean {hint[0]!r}?" if hint else ""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    """What one value must be: ``kind`` is ``number``, ``integer``, ``bool`` or ``choice``."""

    kind: str
    gt: float | None = None
    ge: float | None = None
    le: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = "an integer" if self.kind == "integer" else "a number"
        if self.gt is not None and self.le is not None:
            return f"{noun} in ({self.gt:g}, {self.le:g}]"
        if self.ge is not None and self.le is not None:
            return f"{noun} in [{self.ge:g}, {self.le:g}]"
        if self.gt is not None:
            return f"{noun} greater than {self.gt:g}"
        if self.ge is not None:
            return f"{noun} >= {self.ge:g}"
        return noun

    def accepts(self, value: Any) -> bool:
        if self.kind == "bool":
            return isinstance(value, bool)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if not _is_number(value) or not math.isfinite(value):
            return False
        if self.kind == "integer" and not isinstance(value, int):
            return False
        return not (
            (self.gt is not None and value <= self.gt)
            or (self.ge is not None and value < self.ge)
            or (self.le is not None and value > self.le)
        )

    def convert(self, value: Any) -> Any:
        return float(value) if self.kind == "number" else value


def check_fields(obj: object, rules: Mapping[str, Rule], where: str) -> None:
    """Raise :class:`PortfolioError` when a constructed dataclass breaks its rules."""
    problems = [
        f"The {name!r} of {where} must be {rule.describe()}. "
        f"Got {show(getattr(obj, name))} instead."
        for name, rule in rules.items()
        if not rule.accepts(getattr(obj, name))
    ]
    if problems:
        raise PortfolioError(problems, subject=where[:1].upper() + where[1:])


class Reader:
    """Reads the values of one mapping, appending a :class:`Problem` for each bad one."""

    def __init__(
        self, data: Mapping[Any, Any], *, where: str, path: Path, problems: list[Problem]
    ) -> None:
        self.data = data
        self.where = where
        self.path = path
        self.problems = problems

    def problem(self, key: str | int | None, message: str) -> None:
        path = self.path if key is None else (*self.path, key)
        self.problems.append(Problem(path, message))

    def check_keys(self, allowed: Collection[str]) -> None:
        """Report every key that is not in ``allowed``, with a did-you-mean."""
        for key in self.data:
            if key not in allowed:
                self.problem(
                    str(key),
                    f"Unknown key {show(key)} in {self.where}.{did_you_mean(str(key), allowed)} "
                    f"The keys are: {', '.join(sorted(allowed))}.",
                )

    def value(self, key: str, rule: Rule, default: Any) -> Any:
        """The value of ``key`` converted by ``rule``; ``default`` when absent or invalid."""
        if key not in self.data:
            return default
        raw = self.data[key]
        if rule.accepts(raw):
            return rule.convert(raw)
        hint = did_you_mean(str(raw), rule.choices) if rule.kind == "choice" else ""
        self.problem(
            key,
            f"The {key!r} of {self.where} must be {rule.describe()}. "
            f"Got {show(raw)} ({type(raw).__name__}) instead.{hint}",
        )
        return default

    def mapping(self, key: str) -> Mapping[Any, Any] | None:
        """The mapping under ``key``; ``None`` when absent, null or not a mapping."""
        raw = self.data.get(key)
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            self.problem(
                key,
                f"The {key!r} of {self.where} must be a mapping (key: value, ...). "
                f"Got {show(raw)} ({type(raw).__name__}) instead.",
            )
            return None
        return raw

    def sequence(self, key: str) -> list[Any]:
        """The list under ``key``; empty when absent or null, reported when not a list."""
        raw = self.data.get(key)
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.problem(
                key,
                f"The {key!r} of {self.where} must be a list ([a, b, ...]). "
                f"Got {show(raw)} ({type(raw).__name__}) instead.",
            )
            return []
        return raw
