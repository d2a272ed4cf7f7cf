"""Evidence-gated promotion: make a challenger the live step, with the evidence on record.

:func:`promote` writes a new deployment revision whose live step is the challenger (the
fallbacks stay as they are; the challenger leaves the shadows) and appends a ``promote``
entry to the audit trail carrying the :class:`~flotilla.evaluation.compare.Comparison`. It
refuses unless the comparison's verdict is ``promote``, or ``force=True`` with a reason (the
reason and the overridden verdict are recorded; when no comparison can be computed, a forced
promotion records why instead). :func:`auto_promote` is what the monitor loop calls for
deployments whose policy says ``auto: true``. ``flotilla rollback MODEL``
(:func:`flotilla.portfolio.rollback`) undoes a promotion with another revision.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Protocol

from flotilla.errors import ConfigError, ConflictError, DeploymentError, FlotillaError
from flotilla.evaluation.compare import Comparison, compare
from flotilla.portfolio import DeploymentSpec, Portfolio, diff_specs, validate
from flotilla.records import OutcomeStore
from flotilla.registry import DeploymentRevision
from flotilla.settings import Settings
from flotilla.types import Clock

__all__ = ["AutoPromotion", "PromotionRefusedError", "auto_promote", "promote"]


class PromotionRefusedError(ConflictError):
    """The evidence does not support the promotion (and it was not forced with a reason)."""


class WorkspaceLike(Protocol):
    """What promotion needs of a ``flotilla.workspace.Workspace``."""

    @property
    def settings(self) -> Settings: ...

    @property
    def registry(self) -> Any: ...


@dataclass(frozen=True)
class AutoPromotion:
    """What :func:`auto_promote` did for one deployment.

    Attributes:
        model: the model.
        challenger: the shadow judged (``None`` when it could not be evaluated).
        verdict: the comparison's verdict (``None`` on error).
        revision: the new deployment revision when it was promoted, else ``None``.
        error: why it could not be evaluated or promoted, else ``None``.
    """

    model: str
    challenger: str | None
    verdict: str | None
    revision: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def promote(
    workspace: WorkspaceLike,
    model: str,
    *,
    to: str,
    force: bool = False,
    reason: str | None = None,
    actor: str | None = None,
    comparison: Comparison | None = None,
    since: datetime | None = None,
    clock: Clock | None = None,
) -> DeploymentRevision:
    """Make ``to`` the live step of ``model``'s deployment when the evidence says so.

    Args:
        workspace: an open ``flotilla.workspace.Workspace``.
        model: the model's name.
        to: the version to promote (``churn@4`` or an alias; the exact version is stored).
        force: promote whatever the verdict; needs a non-empty ``reason``.
        reason: why (required with ``force``; recorded with the revision and the audit entry).
        actor: who promotes (default ``workspace.settings.actor``).
        comparison: the evidence; default computed now with :func:`compare` under the
            deployment's promotion policy. When ``force`` is set and it cannot be computed
            (e.g. labels the metric cannot use), the error is recorded in its place (audit
            ``after.comparison_error``, ``after.comparison`` null) and the promotion goes on.
        since: window start of the comparison computed here.
        clock: wall clock of the comparison computed here.

    Returns:
        The new deployment revision.

    Raises:
        ModelNotFoundError, VersionNotFoundError, AliasNotFoundError: unknown names.
        DeploymentError: the model is not deployed, ``to`` is already live, or the new spec
            does not validate.
        ConfigError: ``force`` without a reason, or ``to`` names another model.
        PromotionRefusedError: the verdict is not ``promote`` (nothing is written).
        ConfigError, RecordsError: without ``force``, the comparison cannot be computed.

    Example:
        >>> rev = promote(ws, "churn", to="churn@4")                        # doctest: +SKIP
        >>> rev = promote(ws, "churn", to="churn@4", force=True,
        ...               reason="incident 42: the champion leaks")          # doctest: +SKIP
    """
    registry = workspace.registry
    actor = actor or workspace.settings.actor
    why = (reason or "").strip()
    if force and not why:
        raise ConfigError(
            "A forced promotion needs a reason (it is kept in the audit trail). "
            'Pass --reason "..." (or reason=) with --force.'
        )
    current, spec = _current(registry, model)
    target = registry.get_version(to)
    if target.model != model:
        raise ConfigError(
            f"The version to promote must belong to model {model!r}. Got {to!r} ({target.ref})."
        )
    live_now = _resolve(registry, spec.live)
    if live_now == target.ref:
        raise DeploymentError(
            f"{target.ref} is already the live version of {model!r} (revision "
            f"{current.revision}); nothing to promote."
        )
    failure: str | None = None
    if comparison is None:
        try:
            comparison = compare(
                OutcomeStore(workspace.settings.records),
                model,
                challenger=target.ref,
                champion=live_now,
                since=since,
                policy=spec.promotion,
                clock=clock,
            )
        except Exception as exc:  # forced: whatever broke the evidence is recorded instead
            if not force:
                raise
            failure = f"{type(exc).__name__}: {exc}"
    if not force:
        assert comparison is not None  # computed, or compare raised
        _check_evidence(comparison, target.ref, model)
    new = _promoted_spec(registry, spec, target.ref)
    validate(Portfolio({model: new}), registry)
    text = _reason(target.ref, comparison, force=force, given=why, failure=failure)
    rev: DeploymentRevision = registry.put_deployment(
        model,
        new.to_dict(),
        actor=actor,
        reason=text,
        diff=diff_specs(spec.to_dict(), new.to_dict()),
    )
    registry.record_event(
        "promote",
        model=model,
        subject=target.ref,
        before={"live": spec.live, "resolved": live_now, "revision": current.revision},
        after={
            "live": target.ref,
            "revision": rev.revision,
            "forced": force,
            "comparison": None if comparison is None else _evidence(comparison),
            **({} if failure is None else {"comparison_error": failure}),
        },
        reason=text,
        actor=actor,
    )
    return rev


def auto_promote(
    workspace: WorkspaceLike,
    store: OutcomeStore | None = None,
    *,
    clock: Clock | None = None,
    actor: str = "flotilla-auto",
) -> list[AutoPromotion]:
    """Promote every shadow whose deployment has ``promotion.auto`` and a ``promote`` verdict.

    Each deployment with an auto policy and at least one shadow is compared with each of its
    shadows; the shadow with the largest improvement among those whose verdict is
    ``promote`` is promoted. A failure for one model is reported in its entry and never
    stops the others.

    Returns:
        One :class:`AutoPromotion` per deployment considered.
    """
    registry = workspace.registry
    store = store or OutcomeStore(workspace.settings.records)
    out: list[AutoPromotion] = []
    for rev in registry.current_deployments():
        try:
            spec = DeploymentSpec.from_dict(rev.spec, model=rev.model)
        except FlotillaError:
            continue
        if spec.promotion is None or not spec.promotion.auto or not spec.shadows:
            continue
        out.append(_auto_one(workspace, store, spec, clock=clock, actor=actor))
    return out


def _auto_one(
    workspace: WorkspaceLike,
    store: OutcomeStore,
    spec: DeploymentSpec,
    *,
    clock: Clock | None,
    actor: str,
) -> AutoPromotion:
    registry = workspace.registry
    best: Comparison | None = None
    try:
        live = _resolve(registry, spec.live)
        for shadow in spec.shadows:
            ref = _resolve(registry, shadow.ref)
            found = compare(
                store, spec.model, challenger=ref, champion=live, policy=spec.promotion, clock=clock
            )
            if best is None or _rank(found) > _rank(best):
                best = found
        assert best is not None  # spec.shadows is not empty
        if best.verdict != "promote":
            return AutoPromotion(spec.model, best.challenger, best.verdict)
        assert best.challenger is not None
        rev = promote(
            workspace, spec.model, to=best.challenger, actor=actor, comparison=best, clock=clock
        )
    except FlotillaError as exc:
        return AutoPromotion(
            spec.model,
            None if best is None else best.challenger,
            None if best is None else best.verdict,
            error=str(exc),
        )
    return AutoPromotion(spec.model, best.challenger, best.verdict, rev.revision)


def _rank(c: Comparison) -> tuple[int, float]:
    value = c.improvement.value
    return (1 if c.verdict == "promote" else 0, value if value == value else float("-inf"))


def _current(registry: Any, model: str) -> tuple[DeploymentRevision, DeploymentSpec]:
    registry.get_model(model)  # ModelNotFoundError for an unknown model
    current = registry.current_deployment(model)
    if current is None:
        raise DeploymentError(
            f"Model {model!r} is not deployed, so nothing can be promoted. Deploy it first "
            "with 'flotilla deploy PORTFOLIO.yaml' (a shadow gathers the evidence)."
        )
    return current, DeploymentSpec.from_dict(current.spec, model=model)


def _resolve(registry: Any, ref: str) -> str:
    return str(registry.get_version(ref).ref)


def _promoted_spec(registry: Any, spec: DeploymentSpec, target: str) -> DeploymentSpec:
    """``target`` live; the fallbacks kept; shadows that resolve to ``target`` removed."""
    kept = []
    for shadow in spec.shadows:
        try:
            same = _resolve(registry, shadow.ref) == target
        except FlotillaError:
            same = False
        if not same:
            kept.append(shadow)
    return replace(spec, live=target, shadows=tuple(kept))


def _check_evidence(comparison: Comparison, target: str, model: str) -> None:
    if comparison.challenger != target:
        raise PromotionRefusedError(
            f"The comparison judged {comparison.challenger!r}, not {target!r}. Run "
            f"'flotilla compare {model} --challenger {target}' first, or promote with "
            '--force --reason "...".'
        )
    if comparison.verdict == "promote":
        return
    needed = comparison.needed
    wants = []
    if needed.get("labeled_pairs"):
        wants.append(f"{needed['labeled_pairs']} more labeled pairs")
    if needed.get("days"):
        wants.append(f"{needed['days']:.1f} more days")
    extra = f" It needs about {' and '.join(wants)}." if wants else ""
    why = "; ".join(comparison.reasons) or "no reason given"
    raise PromotionRefusedError(
        f"Refusing to promote {target}: the verdict is {comparison.verdict!r}, not 'promote' "
        f"({why}).{extra} See 'flotilla compare {model} --challenger {target}', or override "
        'with --force --reason "...".'
    )


def _reason(
    target: str, comparison: Comparison | None, *, force: bool, given: str, failure: str | None
) -> str:
    if comparison is None:
        return f"forced promotion of {target} without a comparison ({failure}): {given}"
    if force:
        return f"forced promotion of {target} over verdict {comparison.verdict!r}: {given}"
    text = (
        f"promote {target}: verdict promote on {comparison.labeled_pairs} labeled pairs, "
        f"{comparison.metric} {_fmt(comparison.champion_metric.value)} -> "
        f"{_fmt(comparison.challenger_metric.value)}"
    )
    return f"{text}; {given}" if given else text


def _fmt(value: float) -> str:
    return "n/a" if value != value else f"{value:.4g}"


def _evidence(comparison: Comparison) -> dict[str, Any]:
    """The comparison as recorded in the audit trail (the per-day series left out)."""
    data = comparison.to_dict()
    data.pop("over_time", None)
    return data
