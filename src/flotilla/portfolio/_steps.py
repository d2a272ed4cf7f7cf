"""Chain steps: a registered version (``RefStep``) or an in-process static answer (``StaticStep``).

A reference names a version (``recs@3``), an alias (``recs@champion``; serving follows the
alias when it moves) or a bare model name (``recs``: its latest version at serving time).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flotilla.errors import ConfigError
from flotilla.portfolio._rules import Path, PortfolioError, Problem, did_you_mean, show
from flotilla.registry import ModelRef

__all__ = [
    "RefStep",
    "StaticStep",
    "Step",
    "bad_ref_message",
    "parse_step",
    "raise_problems",
    "ref_problem",
]


def ref_problem(ref: Any, where: str) -> str | None:
    """``None`` when ``ref`` is a well-formed reference, else the message saying why not."""
    if not isinstance(ref, str):
        return bad_ref_message(ref, where)
    try:
        ModelRef.parse(ref)
    except ConfigError as exc:
        return f"{bad_ref_message(ref, where)} ({exc})"
    return None


_STATIC_EXAMPLE = "{static: {value: 0.0}} or {static: {items: [101, 7, 42]}}"


def raise_problems(problems: list[Problem], subject: str) -> None:
    if problems:
        raise PortfolioError([p.message for p in problems], subject=subject)


@dataclass(frozen=True)
class RefStep:
    """A step served by a registered version: ``recs-lite@2``, ``recs@champion`` or ``recs``.

    A bare name means the model's latest version; an alias is followed when it moves.
    """

    ref: str

    def __post_init__(self) -> None:
        problem = ref_problem(self.ref, "a reference")
        if problem is not None:
            raise PortfolioError([problem], subject="The reference")

    @property
    def model(self) -> str:
        """The model part of the reference (before ``@``)."""
        return self.ref.split("@", 1)[0]

    @property
    def selector(self) -> str | None:
        """The part after ``@`` (a version number or an alias), or ``None`` for the latest."""
        return self.ref.split("@", 1)[1] if "@" in self.ref else None

    def to_dict(self) -> str:
        return self.ref


@dataclass(frozen=True)
class StaticStep:
    """An in-process answer that cannot fail: ``{"value": X}`` or ``{"items": [...]}``.

    ``{"value": X}`` answers the scalar X (a number, string or bool) for every record;
    ``{"items": [...]}`` answers the same list of item ids (for ``items`` models).
    """

    value: Mapping[str, Any]

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        _check_static(self.value, "a static step", (), problems)
        raise_problems(problems, "The static step")
        object.__setattr__(self, "value", dict(self.value))

    @property
    def answer(self) -> Any:
        """What this step answers for each record."""
        return self.value["items"] if "items" in self.value else self.value["value"]

    def to_dict(self) -> dict[str, Any]:
        return {"static": dict(self.value)}


Step = RefStep | StaticStep
"""One step of a fallback chain."""


def bad_ref_message(ref: Any, where: str) -> str:
    return (
        f"{where[:1].upper()}{where[1:]} must be a reference like 'recs@3' (a version), "
        f"'recs@champion' (an alias) or 'recs' (the latest version). Got {show(ref)} instead."
    )


def _check_static(raw: Any, where: str, path: Path, problems: list[Problem]) -> None:
    if not isinstance(raw, Mapping) or len(raw) != 1 or next(iter(raw)) not in ("value", "items"):
        hint = ""
        if isinstance(raw, Mapping) and len(raw) == 1:
            hint = did_you_mean(str(next(iter(raw))), ("value", "items"))
        problems.append(
            Problem(
                path,
                f"{where[:1].upper()}{where[1:]} must hold exactly one of 'value' or 'items', "
                f"as in {_STATIC_EXAMPLE}. Got {show(raw)} instead.{hint}",
            )
        )
        return
    key, answer = next(iter(raw.items()))
    if key == "items":
        if not isinstance(answer, list) or not all(
            isinstance(i, str) or (isinstance(i, int) and not isinstance(i, bool)) for i in answer
        ):
            problems.append(
                Problem(
                    (*path, "items"),
                    f"The 'items' of {where} must be a list of item ids (strings or integers). "
                    f"Got {show(answer)} instead.",
                )
            )
        return
    scalar = isinstance(answer, str | bool | int | float)
    if not scalar or (isinstance(answer, float) and not math.isfinite(answer)):
        extra = (
            " Use {static: {items: [...]}} for a list of items." if isinstance(answer, list) else ""
        )
        problems.append(
            Problem(
                (*path, "value"),
                f"The 'value' of {where} must be a finite number, a string or a bool. "
                f"Got {show(answer)} instead.{extra}",
            )
        )


def parse_step(raw: Any, *, where: str, path: Path, problems: list[Problem]) -> Step | None:
    """Parse one chain step, appending problems; ``None`` when it is invalid.

    Accepted forms: ``"recs-lite@2"``, ``{ref: "recs-lite@2"}``, ``{static: {value: X}}`` and
    ``{static: {items: [...]}}``.
    """
    if isinstance(raw, Mapping) and len(raw) == 1 and next(iter(raw)) == "ref":
        raw = raw["ref"]
    if isinstance(raw, str):
        problem = ref_problem(raw, where)
        if problem is None:
            return RefStep(raw)
        problems.append(Problem(path, problem))
        return None
    if isinstance(raw, Mapping) and len(raw) == 1 and next(iter(raw)) == "static":
        before = len(problems)
        _check_static(raw["static"], f"the static step of {where}", (*path, "static"), problems)
        return StaticStep(raw["static"]) if len(problems) == before else None
    hint = ""
    if isinstance(raw, Mapping) and len(raw) == 1:
        hint = did_you_mean(str(next(iter(raw))), ("static", "ref"))
    problems.append(
        Problem(
            path,
            f"{where[:1].upper()}{where[1:]} must be a reference like 'recs-lite@2' or a static "
            f"answer like {_STATIC_EXAMPLE}. Got {show(raw)} instead.{hint}",
        )
    )
    return None
