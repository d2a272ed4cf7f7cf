"""Planning, applying and rolling back deployments: one revision per changed model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from flotilla.errors import DeploymentError
from flotilla.portfolio._rules import PortfolioError
from flotilla.portfolio.file import Portfolio
from flotilla.portfolio.spec import DeploymentSpec
from flotilla.portfolio.validate import RegistryReader, validate
from flotilla.registry import DeploymentRevision

__all__ = [
    "Change",
    "DeploymentRegistry",
    "apply",
    "diff_specs",
    "plan",
    "rollback",
]

Action = Literal["create", "update", "unchanged", "untouched"]


class DeploymentRegistry(RegistryReader, Protocol):
    """The registry calls deploying needs (``flotilla.registry.Registry`` has them)."""

    def current_deployments(self) -> Sequence[DeploymentRevision]: ...

    def deployment_history(self, model: str) -> Sequence[DeploymentRevision]: ...

    def get_deployment(self, model: str, revision: int) -> DeploymentRevision: ...

    def put_deployment(
        self,
        model: str,
        spec: dict[str, Any],
        *,
        actor: str,
        reason: str | None = None,
        diff: dict[str, Any] | None = None,
    ) -> DeploymentRevision: ...


@dataclass(frozen=True)
class Change:
    """What deploying does to one model.

    Attributes:
        model: the model's name.
        action: ``create`` (first deployment), ``update`` (a new revision), ``unchanged``
            (the spec equals the current one) or ``untouched`` (deployed, but not in the
            portfolio file: left as it is).
        diff: changed keys -> ``{"before": old, "after": new}`` (dotted for nested keys,
            e.g. ``breaker.failure_rate``).
        before: the current revision number (``None`` when never deployed).
        revision: the revision written by :func:`apply` (``None`` in a plan or a dry run).
        spec: the desired spec in dict form (the current one for ``untouched``).
    """

    model: str
    action: Action
    diff: dict[str, dict[str, Any]] = field(default_factory=dict)
    before: int | None = None
    revision: int | None = None
    spec: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "action": self.action,
            "before": self.before,
            "revision": self.revision,
            "diff": self.diff,
            "spec": self.spec,
        }


def diff_specs(
    before: Mapping[str, Any] | None, after: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """The keys whose values differ, as ``{key: {"before": b, "after": a}}``.

    Mappings one level down (``breaker``, ``promotion``) are compared key by key.
    """
    old = dict(before or {})
    out: dict[str, dict[str, Any]] = {}
    for key in [*after, *(k for k in old if k not in after)]:
        b, a = old.get(key), after.get(key)
        if isinstance(b, Mapping) and isinstance(a, Mapping):
            for sub, change in diff_specs(b, a).items():
                out[f"{key}.{sub}"] = change
        elif b != a:
            out[key] = {"before": b, "after": a}
    return out


def _canonical(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A stored spec in canonical form (as stored when it cannot be parsed any more)."""
    try:
        return DeploymentSpec.from_dict(spec).to_dict()
    except DeploymentError:
        return dict(spec)


def plan(portfolio: Portfolio, registry: DeploymentRegistry) -> list[Change]:
    """Compare each declared spec with the model's current deployment (writes nothing).

    Models of the portfolio come first, in file order; models deployed before but missing
    from the portfolio follow as ``untouched`` (they are never undeployed silently).
    """
    current = {rev.model: rev for rev in registry.current_deployments()}
    changes: list[Change] = []
    for name, spec in portfolio.models.items():
        desired = spec.to_dict()
        rev = current.get(name)
        if rev is None:
            changes.append(Change(name, "create", diff_specs(None, desired), None, spec=desired))
            continue
        diff = diff_specs(_canonical(rev.spec), desired)
        action: Action = "update" if diff else "unchanged"
        changes.append(Change(name, action, diff, rev.revision, spec=desired))
    for name in sorted(set(current) - set(portfolio.models)):
        rev = current[name]
        changes.append(Change(name, "untouched", {}, rev.revision, spec=dict(rev.spec)))
    return changes


def apply(
    portfolio: Portfolio,
    registry: DeploymentRegistry,
    *,
    actor: str,
    dry_run: bool = False,
    reason: str | None = None,
) -> list[Change]:
    """Validate ``portfolio``, then write one deployment revision per new or changed model.

    The registry records each revision in the audit trail (who, when, before, after, the
    diff). With ``dry_run`` nothing is written and the plan is returned.

    Args:
        portfolio: the desired deployments.
        registry: the registry to check against and write to.
        actor: who deploys (recorded with each revision).
        dry_run: validate and plan only.
        reason: why (recorded with each revision); default ``"deploy <file>"``.

    Raises:
        PortfolioError: (a ``DeploymentError``) listing every problem; nothing is written.

    Example:
        >>> portfolio = load_portfolio("portfolio.yaml")  # doctest: +SKIP
        >>> changes = apply(portfolio, registry, actor="ana")  # doctest: +SKIP
        >>> [(c.model, c.action, c.revision) for c in changes]  # doctest: +SKIP
        [('recs', 'create', 1)]
    """
    validate(portfolio, registry)
    changes = plan(portfolio, registry)
    if dry_run:
        return changes
    why = reason or (f"deploy {portfolio.source}" if portfolio.source else "deploy")
    out: list[Change] = []
    for change in changes:
        if change.action in ("create", "update") and change.spec is not None:
            rev = registry.put_deployment(
                change.model, change.spec, actor=actor, reason=why, diff=change.diff
            )
            change = replace(change, revision=rev.revision)
        out.append(change)
    return out


def rollback(
    registry: DeploymentRegistry,
    model: str,
    *,
    to: int | None = None,
    actor: str,
    reason: str | None = None,
) -> DeploymentRevision:
    """Re-apply an earlier revision's spec of ``model`` as a new revision.

    Args:
        registry: the registry.
        model: the model's name.
        to: the revision to re-apply; default the one before the current revision.
        actor: who rolls back (recorded with the revision).
        reason: why; default ``"rollback to revision N"``.

    Returns:
        The new revision.

    Raises:
        ModelNotFoundError: no such model.
        RevisionNotFoundError: (from the registry) no such revision.
        DeploymentError: never deployed, nothing earlier, the same spec as now, or the
            earlier spec no longer validates (e.g. a referenced alias was removed).
    """
    registry.get_model(model)  # ModelNotFoundError for an unknown model
    history = sorted(registry.deployment_history(model), key=lambda r: r.revision)
    if not history:
        raise DeploymentError(
            f"Model {model!r} has never been deployed, so there is nothing to roll back. "
            "Deploy it with 'flotilla deploy PORTFOLIO.yaml'."
        )
    current = history[-1]
    target = _previous(model, history) if to is None else registry.get_deployment(model, to)
    if target.revision == current.revision:
        raise DeploymentError(
            f"Revision {to} is already the current revision of model {model!r}; pick an "
            f"earlier one (see 'flotilla deployments {model}')."
        )
    try:
        spec = DeploymentSpec.from_dict(target.spec, model=model)
        validate(Portfolio({model: spec}), registry)
    except PortfolioError as exc:
        raise PortfolioError(
            exc.problems,
            subject=f"Revision {target.revision} of model {model!r} cannot be re-applied; it",
        ) from None
    desired = spec.to_dict()
    diff = diff_specs(_canonical(current.spec), desired)
    if not diff:
        raise DeploymentError(
            f"Revision {target.revision} of model {model!r} has the same spec as the current "
            f"revision {current.revision}; nothing to roll back. Pick another with --to."
        )
    why = reason or f"rollback to revision {target.revision}"
    return registry.put_deployment(model, desired, actor=actor, reason=why, diff=diff)


def _previous(model: str, history: list[DeploymentRevision]) -> DeploymentRevision:
    if len(history) < 2:
        raise DeploymentError(
            f"Model {model!r} has only revision {history[-1].revision}; there is no earlier "
            "revision to roll back to."
        )
    return history[-2]
