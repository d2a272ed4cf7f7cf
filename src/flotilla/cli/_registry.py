"""Registry commands: ``init``, ``models register|list|show|alias|check``, ``audit-trail``."""

from __future__ import annotations

from typing import Any

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, open_workspace
from flotilla.errors import ConfigError

__all__ = ["register"]


def _parse_metrics(values: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        try:
            if not sep or not key:
                raise ValueError
            out[key] = float(raw)
        except ValueError:
            raise ConfigError(
                f"Each --metric must be NAME=NUMBER, e.g. --metric auc=0.91. Got {item!r} instead."
            ) from None
    return out


def _parse_params(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"--params must be a JSON object. Got {text!r} ({exc}).") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--params must be a JSON object like '{{\"k\": 10}}'. Got {text!r}.")
    return value


def init(json: bool = JSON_OPTION) -> None:
    """Create the Flotilla home and registry database, or migrate an existing one."""
    ws = open_workspace()
    info = {
        "home": str(ws.settings.home),
        "database": _mask(ws.settings.db_url),
        "artifacts": str(ws.settings.artifacts),
        "models": len(ws.registry.list_models()),
    }
    if json:
        emit_json(info)
        return
    console.print(f"Flotilla home ready at [bold]{info['home']}[/]")
    console.print(f"  database:  {info['database']}\n  artifacts: {info['artifacts']}")


def models_register(
    name: str = typer.Argument(..., help="Model name: lowercase letters, digits, - and _."),
    flavor: str = typer.Option(..., "--flavor", help="onnx, sklearn, lightgbm, python, static."),
    artifact: str | None = typer.Option(None, "--artifact", help="Model file (or folder)."),
    entry: str | None = typer.Option(None, "--entry", help="python flavor: pkg.module:Class."),
    params: str | None = typer.Option(None, "--params", help="python flavor: JSON kwargs."),
    signature: str | None = typer.Option(None, "--signature", help="Signature YAML/JSON."),
    task: str | None = typer.Option(None, "--task", help="classification|regression|ranking."),
    description: str = typer.Option("", "--description"),
    owner: str = typer.Option("", "--owner", help="Who answers for this model."),
    metric: list[str] = typer.Option([], "--metric", help="NAME=VALUE, repeatable."),
    alias: str | None = typer.Option(None, "--alias", help="Point this alias at the version."),
    to_onnx: bool = typer.Option(False, "--to-onnx", help="Convert sklearn/LightGBM to ONNX."),
    trust_pickle: bool = typer.Option(
        False, "--trust-pickle", help="Allow loading a pickle/joblib file (runs its code)."
    ),
    training_data: str | None = typer.Option(
        None, "--training-data", help="Audit this training file for leakage first."
    ),
    label: str | None = typer.Option(None, "--label", help="Label column of --training-data."),
    event_time: str | None = typer.Option(
        None, "--event-time", help="Event-time column of --training-data."
    ),
    accept_leakage_risk: str | None = typer.Option(
        None, "--accept-leakage-risk", help="Register despite audit errors; the reason is kept."
    ),
    reference: str | None = typer.Option(
        None, "--reference", help="Training/validation file (Parquet, CSV) to profile for drift."
    ),
    reference_output: str | None = typer.Option(
        None, "--reference-output", help="Column of --reference holding model outputs."
    ),
    json: bool = JSON_OPTION,
) -> None:
    """Register a new version of a model and print NAME@N."""
    ws = open_workspace()
    version = ws.register(
        name,
        flavor=flavor,
        artifact=artifact,
        entry=entry,
        params=_parse_params(params),
        signature=signature,
        task=task,
        description=description,
        owner=owner,
        metrics=_parse_metrics(metric),
        alias=alias,
        to_onnx=to_onnx,
        trust_pickle=trust_pickle,
        training_data=training_data,
        label=label,
        event_time=event_time,
        accept_leakage_risk=accept_leakage_risk,
        reference=reference,
        reference_output=reference_output,
    )
    if json:
        emit_json(version.to_dict())
        return
    console.print(version.ref)
    conversion = version.lineage.get("onnx_conversion")
    if conversion:
        _print_conversion(conversion)


def _print_conversion(c: dict[str, Any]) -> None:
    if not c.get("ok"):
        console.print(f"[yellow]ONNX conversion not kept:[/] {c.get('reason')}")
        return
    console.print(
        f"converted to ONNX (max |diff| {c.get('max_abs_diff', 0):.2e}); predicts 1 row "
        f"{c.get('speedup_1', 0):.1f}x and 1,000 rows {c.get('speedup_1000', 0):.1f}x faster"
    )


def models_list(json: bool = JSON_OPTION) -> None:
    """List registered models with their latest version and aliases."""
    ws = open_workspace()
    rows = []
    for model in ws.registry.list_models():
        versions = ws.registry.list_versions(model.name)
        rows.append(
            {
                **model.to_dict(),
                "latest_version": versions[-1].version if versions else None,
                "versions": len(versions),
                "aliases": ws.registry.aliases(model.name),
            }
        )
    if json:
        emit_json(rows)
        return
    table = Table(title="Models")
    for col in ("name", "task", "owner", "versions", "latest", "aliases"):
        table.add_column(col)
    for r in rows:
        aliases = ", ".join(f"{a}→{v}" for a, v in sorted(r["aliases"].items()))
        table.add_row(
            r["name"], r["task"], r["owner"], str(r["versions"]), str(r["latest_version"]), aliases
        )
    console.print(table)


def models_show(
    ref: str = typer.Argument(..., help="NAME, NAME@N or NAME@ALIAS."),
    json: bool = JSON_OPTION,
) -> None:
    """Show a model (its versions and aliases) or one version."""
    ws = open_workspace()
    name, _, which = ref.partition("@")
    model = ws.registry.get_model(name)
    versions = ws.registry.list_versions(name)
    if which:
        versions = [ws.registry.get_version(ref)]
    data = {
        **model.to_dict(),
        "versions": [v.to_dict() for v in versions],
        "aliases": ws.registry.aliases(name),
    }
    if json:
        emit_json(data)
        return
    console.print(f"[bold]{model.name}[/]  task={model.task}  owner={model.owner or '-'}")
    if model.description:
        console.print(model.description)
    if model.signature is not None:
        fields = ", ".join(f"{f.name}:{f.type}" for f in model.signature.inputs)
        console.print(f"inputs: {fields}\noutput: {model.signature.output.kind}")
    table = Table(title="Versions")
    for col in ("version", "flavor", "sha256", "metrics", "created_at", "created_by"):
        table.add_column(col)
    for v in versions:
        metrics = ", ".join(f"{k}={val:g}" for k, val in sorted(v.metrics.items()))
        table.add_row(
            str(v.version),
            v.flavor,
            (v.sha256 or "-")[:12],
            metrics,
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            v.created_by,
        )
    console.print(table)
    if data["aliases"]:
        console.print(
            "aliases: " + ", ".join(f"{a}→{n}" for a, n in sorted(data["aliases"].items()))
        )


def models_alias(
    ref: str = typer.Argument(..., help="NAME@N, the version the alias should point at."),
    alias: str = typer.Argument(..., help="Alias name, e.g. champion."),
    json: bool = JSON_OPTION,
) -> None:
    """Point ALIAS at NAME@N (the move is recorded in the audit trail)."""
    ws = open_workspace()
    version = ws.set_alias(ref, alias)
    if json:
        emit_json({"model": version.model, "alias": alias, "version": version.version})
        return
    console.print(f"{version.model}@{alias} → {version.ref}")


def models_check(
    ref: str = typer.Argument(..., help="NAME@N (or NAME@ALIAS)."),
    json: bool = JSON_OPTION,
) -> None:
    """Load a version (verifying its sha256) and run the conformance checks."""
    ws = open_workspace()
    report = ws.check(ref)
    if json:
        emit_json(report.to_dict())
    else:
        table = Table(title=f"Conformance of {ws.resolve(ref).ref}")
        table.add_column("check")
        table.add_column("result")
        table.add_column("detail")
        for name in report.passed:
            table.add_row(name, "[green]pass[/]", "")
        for name, message in report.failed:
            table.add_row(name, "[red]FAIL[/]", escape(message))
        console.print(table)
    if not report.ok:
        raise typer.Exit(1)


def audit_trail(
    model: str | None = typer.Option(None, "--model", help="Only this model's entries."),
    limit: int | None = typer.Option(None, "--limit", help="Only the last N entries."),
    json: bool = JSON_OPTION,
) -> None:
    """Show the append-only audit trail: who changed what, when, before and after."""
    ws = open_workspace()
    entries = ws.registry.audit_trail(model=model, limit=limit)
    if json:
        emit_json([e.to_dict() for e in entries])
        return
    table = Table(title="Audit trail")
    for col in ("at", "actor", "action", "subject", "change", "reason"):
        table.add_column(col)
    for e in entries:
        change = _describe_change(e.before, e.after)
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"), e.actor, e.action, e.subject, change, e.reason or ""
        )
    console.print(table)


def _describe_change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    if before is None and after is None:
        return ""
    if before is None:
        return "created"
    if after is None:
        return "removed"
    keys = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    parts = [f"{k}: {before.get(k)!r} → {after.get(k)!r}" for k in keys[:4]]
    return "; ".join(parts)[:120]


def _mask(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}" if ":" in cred else url
    return url


def register(app: typer.Typer, groups: Groups) -> None:
    """Add the registry commands."""
    app.command("init")(init)
    app.command("audit-trail")(audit_trail)
    groups.models.command("register")(models_register)
    groups.models.command("list")(models_list)
    groups.models.command("show")(models_show)
    groups.models.command("alias")(models_alias)
    groups.models.command("check")(models_check)
