"""Evaluation commands: ``compare`` (champion vs challenger) and ``promote``."""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from flotilla._durations import read_duration, read_utc_time
from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, err_console, open_workspace
from flotilla.errors import ConfigError, FlotillaError
from flotilla.portfolio import DeploymentSpec
from flotilla.records import CorruptSegmentWarning, OutcomeStore

if TYPE_CHECKING:  # the evaluation package pulls in SciPy: imported when a command runs
    from flotilla.evaluation.compare import Comparison, Estimate

__all__ = ["parse_since", "register"]

_VERDICT_STYLE = {"promote": "bold green", "keep_shadowing": "bold yellow", "reject": "bold red"}


def register(app: typer.Typer, groups: Groups) -> None:
    """Add ``compare`` and ``promote`` to the app."""
    app.command("compare")(compare_command)
    app.command("promote")(promote_command)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``2026-03-01``, ``2026-03-01T12:00:00Z`` or a relative ``7d``/``12h``/``30m`` (ago)."""
    delta = read_duration(text, units="dhm", positive=False)
    if delta is not None:
        return (now or datetime.now(UTC)) - delta
    moment = read_utc_time(text)
    if moment is None:
        raise ConfigError(
            "The --since of compare must be an ISO date or time (2026-03-01, "
            f"2026-03-01T12:00:00Z) or a relative window such as 7d, 12h or 30m. Got {text!r}."
        )
    return moment


def compare_command(
    model: str = typer.Argument(..., help="The model whose champion and challenger to compare."),
    challenger: str | None = typer.Option(
        None, "--challenger", help="The shadow to judge (default: the deployment's first shadow)."
    ),
    since: str | None = typer.Option(
        None, "--since", help="Only requests since this time (ISO, or 7d / 12h / 30m ago)."
    ),
    metric: str | None = typer.Option(
        None,
        "--metric",
        help="auc|logloss|accuracy|f1|rmse|mae|ndcg@k|hit_rate@k (default: the policy's).",
    ),
    html: Path | None = typer.Option(None, "--html", help="Also write an HTML report here."),
    json: bool = JSON_OPTION,
) -> None:
    """Compare the live model with a shadow on the same labeled requests; give a verdict."""
    from flotilla.evaluation.compare import compare
    from flotilla.evaluation.metrics import parse_metric
    from flotilla.evaluation.report_html import write_html

    if metric is not None:
        parse_metric(metric)
    start = parse_since(since) if since else None
    ws = open_workspace()
    registry = ws.registry
    registry.get_model(model)  # a clear error for an unknown model
    spec = _spec(registry, model)
    ref = _challenger(registry, model, spec, challenger)
    champion = _resolve(registry, spec.live) if spec is not None else None
    store = OutcomeStore(ws.settings.records, models=registry)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CorruptSegmentWarning)
        result = compare(
            store,
            model,
            challenger=ref,
            champion=champion if _has_live(store, model, champion) else None,
            since=start,
            metric=metric,
            policy=None if spec is None else spec.promotion,
        )
    for item in caught:
        err_console.print(f"[yellow]warning:[/] {item.message}", markup=True, highlight=False)
    if html is not None:
        path = write_html(result, html)
        err_console.print(f"Wrote the HTML report to {escape(str(path))}.")
    if json:
        emit_json(result.to_dict())
        return
    _print(result)


def promote_command(
    model: str = typer.Argument(..., help="The model to promote a version of."),
    to: str = typer.Option(..., "--to", help="The version (or alias) to make live."),
    force: bool = typer.Option(
        False, "--force", help="Promote whatever the verdict (needs --reason)."
    ),
    reason: str | None = typer.Option(None, "--reason", help="Why (kept in the audit trail)."),
    json: bool = JSON_OPTION,
) -> None:
    """Make REF the live step of MODEL: refused unless the verdict is promote (or --force)."""
    from flotilla.evaluation.promotion import promote

    ws = open_workspace()
    try:
        rev = promote(ws, model, to=to, force=force, reason=reason, actor=ws.settings.actor)
    except FlotillaError as exc:
        if json:
            emit_json({"ok": False, "error": str(exc), "kind": type(exc).__name__})
            raise typer.Exit(1) from None
        raise
    if json:
        emit_json({"ok": True, **rev.to_dict()})
        return
    console.print(
        f"Promoted {escape(str(rev.spec.get('live')))} to live for {escape(model)}: "
        f"revision {rev.revision} ({escape(rev.reason or '')}). "
        f"Undo with 'flotilla rollback {escape(model)}'."
    )


# -- helpers ------------------------------------------------------------------------------------


def _spec(registry: Any, model: str) -> DeploymentSpec | None:
    current = registry.current_deployment(model)
    if current is None:
        return None
    return DeploymentSpec.from_dict(current.spec, model=model)


def _resolve(registry: Any, ref: str) -> str:
    return str(registry.get_version(ref).ref)


def _challenger(
    registry: Any, model: str, spec: DeploymentSpec | None, given: str | None
) -> str | None:
    if given is not None:
        ref = _resolve(registry, given)
        owner = ref.rpartition("@")[0]
        if owner != model:
            raise ConfigError(
                f"The challenger {given!r} is a version of model {owner!r}, not of {model!r}. "
                f"Pass one of {model!r}'s versions, e.g. a shadow of its deployment."
            )
        if spec is not None and ref == _resolve(registry, spec.live):
            raise ConfigError(
                f"The challenger {given!r} is {model!r}'s live version ({ref}): compare it "
                "with a shadow (--challenger REF), not with itself."
            )
        return ref
    if spec is not None and spec.shadows:
        return _resolve(registry, spec.shadows[0].ref)
    return None


def _has_live(store: OutcomeStore, model: str, ref: str | None) -> bool:
    """Whether ``ref`` answered live requests (after a promotion the records may lag)."""
    if ref is None:
        return False
    con = store.records.connect(model)
    try:
        sql = "SELECT count(*) FROM predictions WHERE role = 'live' AND ref = $ref"
        rows = con.execute(sql, {"ref": ref}).fetchall()
    finally:
        con.close()
    return bool(rows and rows[0][0])


def _ci(est: Estimate) -> str:
    return f"{_f(est.value)}  [{_f(est.ci_low)}, {_f(est.ci_high)}]"


def _f(value: Any, digits: int = 4) -> str:
    if value is None or value != value:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _print(c: Comparison) -> None:
    title = f"{c.model}: {c.champion or '?'} (champion) vs {c.challenger or '?'} (challenger)"
    table = Table(title=escape(title), title_justify="left")
    for column in ("", "champion", "challenger"):
        table.add_column(column)
    table.add_row(f"{c.metric} [95% CI]", _ci(c.champion_metric), _ci(c.challenger_metric))
    for who_key, label in (("p50_ms", "latency p50 ms"), ("p99_ms", "latency p99 ms")):
        table.add_row(
            label,
            _f(c.latency["champion"][who_key]),
            _f(c.latency["challenger"][who_key]),
        )
    for key, label in (
        ("requests", "requests"),
        ("error_rate", "error rate"),
        ("fallback_rate", "fallback rate"),
    ):
        table.add_row(label, _f(c.rates["champion"][key]), _f(c.rates["challenger"][key]))
    console.print(table)
    seq = c.sequential
    console.print(
        f"labeled pairs: {c.labeled_pairs}   days shadowing: {c.days:.1f}\n"
        f"difference (challenger - champion): {_ci(c.difference)} (paired bootstrap)\n"
        f"sequential test (mSPRT, always valid): n={seq.get('n')}, "
        f"p={_f(seq.get('p_value'), 3)}, challenger better: {bool(seq.get('reject'))}"
    )
    _print_coverage(c)
    style = _VERDICT_STYLE.get(c.verdict, "bold")
    needed = ", ".join(f"{k.replace('_', ' ')} {_f(v, 3)}" for k, v in c.needed.items() if v)
    console.print(
        f"verdict: [{style}]{c.verdict}[/]" + (f" (still needed: {needed})" if needed else ""),
        markup=True,
    )
    for reason in c.reasons:
        console.print(f"  - {escape(reason)}")


def _print_coverage(c: Comparison) -> None:
    if not c.label_coverage:
        return
    table = Table(title="label coverage per day", title_justify="left")
    for column in ("date", "predictions", "labeled", "coverage", "pairs"):
        table.add_column(column, justify="left" if column == "date" else "right")
    for row in c.label_coverage:
        cov = row["coverage"]
        table.add_row(
            row["date"],
            str(row["predictions"]),
            str(row["labeled"]),
            "n/a" if cov is None else f"{cov:.1%}",
            str(row["pairs"]),
        )
    console.print(table)
