"""Monitoring commands that need no gateway: ``monitor drift`` and ``models profile``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from flotilla.cli._groups import Groups
from flotilla.cli._output import JSON_OPTION, console, emit_json, fmt_value, open_workspace
from flotilla.errors import ConfigError

__all__ = ["register"]


def _parse_fields(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError(f"--fields must list field names like 'age,plan'. Got {text!r}.")
    return names


def _fmt(value: Any, digits: int = 4) -> str:
    return fmt_value(value, digits)


_SHORT_TEST = {
    "ks": "KS",
    "chi2": "chi2",
    "z": "z",
    "jensen_shannon": "JS",
    "wasserstein_normed": "Wass",
}


def _drift_table(report: dict[str, Any]) -> Table:
    table = Table(title="Drift per field (test value vs threshold; all statistics with --json)")
    table.add_column("field", no_wrap=True)
    for col in ("test", "value", "drift", "psi", "KS p", "chi2 p", "JS", "Wass", "nulls"):
        table.add_column(col, justify="right", no_wrap=True)
    for f in report["fields"]:
        drifted = f["drifted"]
        mark = "[red]YES[/]" if drifted else ("-" if drifted is None else "[green]no[/]")
        nulls = f"{_fmt(f['null_rate_reference'], 2)}>{_fmt(f['null_rate_current'], 2)}"
        if f["null_rate_drifted"]:
            nulls = f"[red]{nulls}[/]"
        test = _SHORT_TEST.get(f["test"], "-")
        value = f"{_fmt(f['statistic'], 3)}/{_fmt(f['threshold'])}" if f["test"] else "-"
        table.add_row(
            f["name"], test, value, mark, _fmt(f["psi"], 3), _fmt(f["ks_pvalue"], 2),
            _fmt(f["chi2_pvalue"], 2), _fmt(f["jensen_shannon"], 3),
            _fmt(f["wasserstein_normed"], 3), nulls,
        )  # fmt: skip
    return table


def monitor_drift(
    reference: Path = typer.Argument(..., help="Reference data file (Parquet or CSV)."),
    current: Path = typer.Argument(..., help="Current data file (Parquet or CSV)."),
    fields: str | None = typer.Option(None, "--fields", help="Comma-separated fields to compare."),
    correction: str = typer.Option(
        "bh", "--correction", help="bh (Benjamini-Hochberg at --q) or none (raw p-values)."
    ),
    q: float = typer.Option(0.05, "--q", help="False discovery rate for --correction bh."),
    json: bool = JSON_OPTION,
) -> None:
    """Compare two data files field by field: PSI, KS, chi-square, JS, Wasserstein, nulls.

    The test and threshold per field follow Evidently's defaults; the null-rate change is
    tested too, and p-value tests are corrected with Benjamini-Hochberg by default.
    """
    from flotilla.monitoring._columns import read_table
    from flotilla.monitoring.compare import compare_columns

    if correction not in ("bh", "none"):
        raise ConfigError(f"--correction must be 'bh' or 'none'. Got {correction!r} instead.")
    if not 0 < q < 1:
        raise ConfigError(f"--q must be between 0 and 1. Got {q} instead.")
    names = _parse_fields(fields)
    ref_t = read_table(reference)
    cur_t = read_table(current)
    report = compare_columns(
        ref_t,
        cur_t,
        fields=names,
        correction="bh" if correction == "bh" else "none",
        q=q,
    ).to_dict()
    if json:
        emit_json(report)
        return
    console.print(_drift_table(report))
    s = report["summary"]
    console.print(
        f"{s['n_drifted']} of {s['n_fields']} field(s) drifted "
        f"({s['share_drifted']:.0%}; dataset drift at >= {s['drift_share']:.0%}: "
        f"{'yes' if s['dataset_drift'] else 'no'}); correction: {s['correction']}"
        + (f" at q={s['q']}" if s["correction"] == "bh" else "")
    )
    if s["null_rate_findings"]:
        console.print(f"Null rate changed: {', '.join(s['null_rate_findings'])}")
    for f in report["fields"]:
        if f["note"]:
            console.print(f"  note on {f['name']}: {f['note']}")


def models_profile(
    ref: str = typer.Argument(..., help="The version to profile: NAME@N (or NAME@alias)."),
    file: Path = typer.Argument(..., help="Training or validation data (Parquet or CSV)."),
    output_column: str | None = typer.Option(
        None, "--output-column", help="Also profile this column as the model's output."
    ),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show progress."),
    json: bool = JSON_OPTION,
) -> None:
    """Stream FILE and store it as the reference profile of a version (for drift).

    The signature's inputs must all be in the file with compatible types; the profile holds
    per field the count, null rate, quantiles and histogram (numbers) or frequencies
    (categories).
    """
    from flotilla.monitoring.profiles import build_profile

    ws = open_workspace()
    version = ws.registry.get_version(ref)
    profile = build_profile(
        file, signature=version.signature, output_column=output_column, progress=progress
    )
    profile["model"], profile["version"] = version.model, version.version
    ws.registry.set_profile(version.model, version.version, profile, actor=ws.actor)
    if json:
        emit_json(profile)
        return
    table = Table(title=f"Reference profile of {version.ref} from {file.name}")
    for col in ("field", "role", "kind", "count", "null rate", "min", "median", "max", "top"):
        table.add_column(
            col, justify="left" if col in ("field", "role", "kind", "top") else "right"
        )
    for name, f in profile["fields"].items():
        q = f.get("quantiles")
        top = ""
        if f["kind"] == "categorical":
            top = ", ".join(f"{k} ({v})" for k, v in list(f["frequencies"].items())[:3])
        table.add_row(
            name, f["role"], f["kind"], str(f["count"]), _fmt(f["null_rate"], 3),
            _fmt(f.get("min")), _fmt(q[len(q) // 2] if q else None), _fmt(f.get("max")), top,
        )  # fmt: skip
    console.print(table)
    console.print(f"Stored the profile of {profile['rows']} rows for {version.ref}.")


def register(app: typer.Typer, groups: Groups) -> None:
    """Add this module's commands to the app."""
    groups.monitor.command("drift")(monitor_drift)
    groups.models.command("profile")(models_profile)
