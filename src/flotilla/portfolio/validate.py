"""Checking a portfolio against the registry, reporting every problem at once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from flotilla.errors import AliasNotFoundError, ConfigError, NotFoundError
from flotilla.portfolio._rules import PortfolioError, did_you_mean, show
from flotilla.portfolio.file import Portfolio
from flotilla.portfolio.spec import DeploymentSpec, StaticStep
from flotilla.registry import Model, ModelVersion
from flotilla.signature import OutputSpec, Signature

__all__ = ["RegistryReader", "validate"]

_STATIC_HINT = (
    "add a static step at the end, e.g. 'fallbacks: [..., {static: {value: 0.0}}]' or "
    "'fallbacks: [..., {static: {items: [101, 7, 42]}}]', or end with a registered model "
    "of flavor static"
)
_ITEM_METRICS = ("ndcg", "hit_rate")


class RegistryReader(Protocol):
    """The registry calls validation needs (``flotilla.registry.Registry`` has them)."""

    def get_model(self, name: str) -> Model: ...

    def get_version(self, ref: str) -> ModelVersion: ...

    def list_models(self) -> Sequence[Model]: ...

    def aliases(self, name: str) -> Mapping[str, int]: ...


def validate(portfolio: Portfolio, registry: RegistryReader) -> None:
    """Check every deployment of ``portfolio`` against ``registry``.

    Checks, per model: the model is registered; ``live`` names a version of that same
    model; every reference (version, alias, bare name) exists; the chain ends in a static
    step (inline or a registered version of flavor ``static``) and nothing follows it; no
    step repeats (two references resolving to the same version, shadows included); each
    fallback and shadow accepts the live version's inputs (its required inputs are live
    inputs of the same type) and answers in the live version's output kind; inline static
    answers fit the live version's output spec; the promotion metric suits the output kind.

    Raises:
        PortfolioError: (a ``DeploymentError``) listing every problem, one per line.
    """
    checker = _Checker(registry)
    for spec in portfolio.models.values():
        checker.check(spec)
    if checker.problems:
        subject = f"Portfolio {portfolio.source!r}" if portfolio.source else "The portfolio"
        raise PortfolioError(checker.problems, subject=subject)


@dataclass
class _Checker:
    registry: RegistryReader
    problems: list[str] = field(default_factory=list)
    _versions: dict[str, ModelVersion | str] = field(default_factory=dict)

    def resolve(self, ref: str) -> ModelVersion | str:
        """The version ``ref`` names, or the message saying why it cannot be resolved."""
        if ref not in self._versions:
            try:
                self._versions[ref] = self.registry.get_version(ref)
            except (NotFoundError, ConfigError) as exc:
                self._versions[ref] = self._not_found(ref, exc)
        return self._versions[ref]

    def _not_found(self, ref: str, exc: Exception) -> str:
        name, _, selector = ref.partition("@")
        message = str(exc).rstrip(".")
        if isinstance(exc, AliasNotFoundError):
            hint = did_you_mean(selector, list(self.registry.aliases(name)))
            return f"{message}.{hint}"
        try:
            self.registry.get_model(name)
        except NotFoundError:
            names = sorted(m.name for m in self.registry.list_models())
            listed = ", ".join(names) if names else "none yet"
            return (
                f"no model named {name!r} is registered.{did_you_mean(name, names)} "
                f"Registered models: {listed}. Register it with "
                f"'flotilla models register {name} ...'"
            )
        return message

    def check(self, spec: DeploymentSpec) -> None:
        where = f"model {spec.model!r}"
        model_ok = self._check_model(spec.model)
        live = self.resolve(spec.live)
        if isinstance(live, str):
            if model_ok:
                self.problems.append(_end(f"The live step {spec.live!r} of {where}: {live}"))
        elif live.model != spec.model:
            self.problems.append(
                f"The live step of {where} is {spec.live!r}, a version of model {live.model!r}; "
                f"the live step must be a version of {spec.model!r} itself. Register that "
                f"artifact as a version of {spec.model!r}, or list {spec.live!r} under "
                "'fallbacks'."
            )
        live_version = live if not isinstance(live, str) else None
        signature = live_version.signature if live_version is not None else None
        if live_version is None and model_ok:  # still check the chain against the model
            signature = self.registry.get_model(spec.model).signature
        seen: dict[str, str] = {} if live_version is None else {live_version.ref: spec.live}
        self._check_chain(spec, where, live_version, seen, signature)
        self._check_shadows(spec, where, seen, signature)
        self._check_promotion(spec, where, signature)

    def _check_model(self, name: str) -> bool:
        try:
            self.registry.get_model(name)
        except NotFoundError:
            names = sorted(m.name for m in self.registry.list_models())
            listed = ", ".join(names) if names else "none yet"
            self.problems.append(
                f"Model {name!r} is not registered.{did_you_mean(name, names)} Registered "
                f"models: {listed}. Register a version first ('flotilla models register "
                f"{name} ...') or fix the name."
            )
            return False
        return True

    def _check_chain(
        self,
        spec: DeploymentSpec,
        where: str,
        live: ModelVersion | None,
        seen: dict[str, str],
        signature: Signature | None,
    ) -> None:
        statics: list[int] = [0] if live is not None and live.flavor == "static" else []
        unresolved_last = False
        for pos, step in enumerate(spec.fallbacks, start=1):
            label = f"fallback {pos} of {where}"
            unresolved_last = False
            if isinstance(step, StaticStep):
                statics.append(pos)
                self._check_static_answer(step, label, signature)
                continue
            version = self.resolve(step.ref)
            if isinstance(version, str):
                self.problems.append(_end(f"The {label} ({step.ref!r}): {version}"))
                unresolved_last = True
                continue
            self._check_repeat(seen, version, step.ref, where)
            if version.flavor == "static":
                statics.append(pos)
            self._check_fits(version, step.ref, label, signature)
        last = len(spec.fallbacks)
        if not statics and not unresolved_last:
            self.problems.append(
                f"The chain of {where} ({spec.describe_chain()}) does not end in a static "
                f"step, so a failing last step would turn into an error; {_STATIC_HINT}."
            )
        if len(statics) > 1:
            self.problems.append(
                f"The chain of {where} has {len(statics)} static steps; a static step cannot "
                "fail, so keep only one, at the end."
            )
        elif statics and statics[0] != last:
            which = "live step" if statics[0] == 0 else f"fallback {statics[0]}"
            self.problems.append(
                f"The {which} of {where} is static and cannot fail, so the "
                f"{last - statics[0]} step(s) after it would never run; move it to the end."
            )

    def _check_repeat(
        self, seen: dict[str, str], version: ModelVersion, ref: str, where: str
    ) -> None:
        first = seen.get(version.ref)
        if first is None:
            seen[version.ref] = ref
            return
        what = (
            f"{ref!r} appears twice"
            if first == ref
            else f"{first!r} and {ref!r} both name {version.ref}"
        )
        self.problems.append(
            f"A step repeats in {where}: {what}; a step that failed once would only fail "
            "again, and a shadow must differ from every step. Remove the repeat."
        )

    def _check_fits(
        self, version: ModelVersion, ref: str, label: str, live: Signature | None
    ) -> None:
        """Report a step that does not accept the live inputs or answer in the live kind."""
        own = version.signature
        if live is None or own is None:
            return
        if version.flavor != "static":
            for f in own.inputs:
                match = next((g for g in live.inputs if g.name == f.name), None)
                if match is None and not f.nullable:
                    self.problems.append(
                        f"The {label} ({ref!r}) needs the input {f.name!r}, which the live "
                        f"model does not take (live inputs: {', '.join(live.field_names)}). "
                        "Use a fallback whose required inputs are live inputs."
                    )
                elif match is not None and match.type != f.type:
                    self.problems.append(
                        f"The {label} ({ref!r}) takes {f.name!r} as {f.type}, but the live "
                        f"model sends it as {match.type}; the types must be the same."
                    )
        self._check_kind(own.output, live.output, f"The {label} ({ref!r})")

    def _check_kind(self, own: OutputSpec, live: OutputSpec, label: str) -> None:
        if own.kind != live.kind:
            self.problems.append(
                f"{label} answers {own.kind!r} but the live model answers {live.kind!r}; a "
                "fallback must answer in the live model's output kind."
            )
        elif live.k is not None and own.k is not None and own.k > live.k:
            self.problems.append(
                f"{label} answers up to {own.k} items but the live model at most {live.k}."
            )

    def _check_static_answer(self, step: StaticStep, label: str, live: Signature | None) -> None:
        if live is None:
            return
        if "items" in step.value and live.output.kind != "items":
            self.problems.append(
                f"The {label} is a list of items, but the live model answers "
                f"{live.output.kind!r}; use {{static: {{value: X}}}} with X a "
                f"{live.output.kind} instead."
            )
            return
        if "value" in step.value and live.output.kind == "items":
            self.problems.append(
                f"The {label} is a single value {show(step.answer)}, but the live model "
                "answers a list of items; use {static: {items: [...]}} instead."
            )
            return
        problem = live.output.check([step.answer], 1)
        if problem is not None:
            problem = problem.removeprefix("prediction 0: ")
            self.problems.append(
                f"The static answer {show(step.answer)} of the {label} does not fit the live "
                f"model's output ({live.output.kind}): {problem}."
            )

    def _check_shadows(
        self,
        spec: DeploymentSpec,
        where: str,
        seen: dict[str, str],
        signature: Signature | None,
    ) -> None:
        for pos, shadow in enumerate(spec.shadows, start=1):
            label = f"shadow {pos} of {where}"
            version = self.resolve(shadow.ref)
            if isinstance(version, str):
                self.problems.append(_end(f"The {label} ({shadow.ref!r}): {version}"))
                continue
            self._check_repeat(seen, version, shadow.ref, where)
            if version.flavor == "static":
                self.problems.append(
                    f"The {label} ({shadow.ref!r}) is a static model; shadows are challengers "
                    "worth comparing, so name a trained version instead."
                )
                continue
            self._check_fits(version, shadow.ref, label, signature)

    def _check_promotion(
        self, spec: DeploymentSpec, where: str, signature: Signature | None
    ) -> None:
        if spec.promotion is None or signature is None:
            return
        metric = spec.promotion.metric
        wants_items = metric.split("@", 1)[0] in _ITEM_METRICS
        if wants_items != (signature.output.kind == "items"):
            self.problems.append(
                f"The promotion metric {metric!r} of {where} does not suit its output kind "
                f"{signature.output.kind!r}: ndcg@k and hit_rate@k are for items, the other "
                "metrics for probabilities, scores and labels."
            )


def _end(text: str) -> str:
    """``text`` ending in one full stop (or its own ``?``)."""
    return text if text.endswith((".", "?")) else text + "."
