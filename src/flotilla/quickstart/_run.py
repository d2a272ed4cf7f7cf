"""``flotilla quickstart``: train, audit, register and (when available) deploy the portfolio."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from flotilla.quickstart._portfolio import deploy_portfolio, write_portfolio
from flotilla.quickstart._train import CHURN_FEATURES, Artifacts, train_all
from flotilla.workspace import Workspace

__all__ = ["QuickstartResult", "run_quickstart"]

RECS_SIGNATURE = {
    "inputs": [
        {"name": "segment", "type": "category", "categories": ["new", "casual", "loyal", "power"]},
        {"name": "last_item", "type": "int", "nullable": True, "min": 0},
    ],
    "output": {"kind": "items", "k": 10},
}
CHURN_SIGNATURE = {
    "inputs": [
        {"name": "tenure_months", "type": "float", "min": 0, "max": 600},
        {"name": "monthly_spend", "type": "float", "min": 0, "max": 10000},
        {"name": "support_tickets", "type": "float", "min": 0, "max": 1000},
        {"name": "is_premium", "type": "float", "min": 0, "max": 1},
    ],
    "output": {"kind": "probability"},
}


@dataclass
class QuickstartResult:
    """What the quickstart registered and where its files are."""

    workdir: Path
    registered: list[dict[str, Any]] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    portfolio: Path | None = None
    deployed: list[dict[str, Any]] = field(default_factory=list)
    demo: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "registered": self.registered,
            "audit": self.audit,
            "portfolio": None if self.portfolio is None else str(self.portfolio),
            "deployed": self.deployed,
            "demo": self.demo,
        }


def _audit_churn(art: Artifacts) -> dict[str, Any]:
    from flotilla.audit import audit

    leaky = audit(art.churn_leaky_data, label="churned", event_time="event_time")
    clean = audit(art.churn_clean_data, label="churned", event_time="event_time")
    return {
        "leaky": {
            "file": str(art.churn_leaky_data),
            "exit_code": leaky.exit_code,
            "findings": [f"{f.severity}: {f.check} on {f.feature}" for f in leaky.findings],
        },
        "clean": {
            "file": str(art.churn_clean_data),
            "exit_code": clean.exit_code,
            "findings": [f"{f.severity}: {f.check} on {f.feature}" for f in clean.findings],
        },
    }


def _register_all(ws: Workspace, art: Artifacts) -> list[dict[str, Any]]:
    from flotilla.quickstart import recommender

    out = []
    churn = ws.register(
        "churn",
        flavor="sklearn",
        artifact=art.churn_model,
        signature=CHURN_SIGNATURE,
        metrics=art.churn_metrics,
        alias="champion",
        to_onnx=True,
        owner="growth-team",
        description="Will the customer cancel within 30 days?",
        training_data=art.churn_clean_data,
        label="churned",
        event_time="event_time",
        reference=art.churn_clean_data,
        lineage={"training_data": str(art.churn_clean_data), "features": CHURN_FEATURES},
    )
    lite = ws.register(
        "churn-lite",
        flavor="sklearn",
        artifact=art.churn_lite,
        signature=CHURN_SIGNATURE,
        metrics=art.churn_lite_metrics,
        alias="champion",
        owner="growth-team",
        description="Logistic-regression fallback for churn.",
    )
    fraud = ws.register(
        "fraud",
        flavor="lightgbm",
        artifact=art.fraud_model,
        metrics=art.fraud_metrics,
        alias="champion",
        owner="risk-team",
        description="Card fraud score (LightGBM).",
    )
    recs = ws.register(
        "recs",
        flavor="python",
        artifact=Path(recommender.__file__),
        entry="recommender:PopularityRecommender",
        params=art.recs_params,
        signature=RECS_SIGNATURE,
        alias="champion",
        owner="discovery-team",
        description="Popular items per segment.",
    )
    challenger = ws.register(
        "churn",
        flavor="sklearn",
        artifact=art.churn_challenger,
        signature=CHURN_SIGNATURE,
        alias="challenger",
        to_onnx=True,
        owner="growth-team",
        training_data=art.churn_clean_data,
        label="churned",
        event_time="event_time",
        reference=art.churn_clean_data,
        lineage={"training_data": str(art.churn_clean_data), "features": CHURN_FEATURES},
    )
    popular = ws.register(
        "recs-popular",
        flavor="static",
        artifact=art.recs_top10,
        signature={"inputs": RECS_SIGNATURE["inputs"], "output": RECS_SIGNATURE["output"]},
        alias="champion",
        owner="discovery-team",
        description="Top-10 most popular items.",
    )
    for v, note in (
        (churn, "GradientBoosting, converted to ONNX when predictions agree"),
        (lite, "LogisticRegression (skops), the cheaper fallback"),
        (challenger, "challenger: runs in the shadows of churn@champion"),
        (fraud, "LightGBM native text model"),
        (recs, "python flavor: popular items per segment"),
        (popular, "static: top-10 most popular, cannot fail"),
    ):
        out.append({"ref": v.ref, "flavor": v.flavor, "metrics": v.metrics, "note": note})
    return out


def run_quickstart(ws: Workspace, *, workdir: Path | None = None) -> QuickstartResult:
    """Train the three models, audit churn's training data, register everything."""
    workdir = workdir or ws.settings.home / "quickstart"
    art = train_all(workdir)
    result = QuickstartResult(workdir=workdir)
    result.audit = _audit_churn(art)
    result.registered = _register_all(ws, art)
    result.portfolio = write_portfolio(workdir, base_rate=art.churn_base_rate)
    result.deployed = deploy_portfolio(ws, result.portfolio)
    return result


def print_result(result: QuickstartResult, console: Console) -> None:
    """The quickstart's terminal summary and what to try next."""
    table = Table(title="Registered by the quickstart")
    for col in ("version", "flavor", "metrics", "what"):
        table.add_column(col)
    for r in result.registered:
        metrics = ", ".join(f"{k}={v:g}" for k, v in r["metrics"].items())
        table.add_row(r["ref"], r["flavor"], metrics, r["note"])
    console.print(table)
    leaky, clean = result.audit["leaky"], result.audit["clean"]
    console.print(
        f"Leakage audit of the churn training data with the leaky column: exit "
        f"{leaky['exit_code']} ({'; '.join(leaky['findings'][:3]) or 'no findings'})"
    )
    console.print(
        f"Leakage audit of the clean training data: exit {clean['exit_code']} "
        f"({'; '.join(clean['findings'][:3]) or 'no findings'})"
    )
    if result.deployed:
        deployed = ", ".join(f"{d['model']} ({d['action']})" for d in result.deployed)
        console.print(f"Deployed {result.portfolio}: {deployed}")
    console.print("\nTry next:")
    for cmd in (
        "flotilla serve   # then the curl examples printed by 'make demo'",
        "flotilla deployments",
        "flotilla models list",
        "flotilla models show churn --json",
        "flotilla models check churn@champion",
        f"flotilla audit {leaky['file']} --label churned --event-time event_time",
        "flotilla audit-trail --model churn",
    ):
        console.print(f"  {cmd}")


def print_demo(demo: dict[str, Any], console: Console) -> None:
    """The serving demo's curl examples, traffic summary and the champion/challenger verdict."""
    import json

    from rich.markup import escape

    console.print(f"\n[bold]Served the portfolio on {demo['base']}[/] (a real flotilla serve)")
    for ex in demo["examples"]:
        console.print(f"\n[bold]{ex['title']}[/]\n  $ {escape(ex['curl'])}")
        answer = ex["answer"]
        text = answer if isinstance(answer, str) else json.dumps(answer)
        console.print(f"  → {ex['status']} {escape(text[:600])}")
    t = demo["traffic"]
    console.print(
        f"\nSimulated {t['requests']} churn requests (mirrored to churn@challenger in the "
        f"shadows) and posted their delayed outcomes: {t['outcomes']}"
    )
    c = demo["comparison"]
    champion, challenger = c.get("champion_metric") or {}, c.get("challenger_metric") or {}
    console.print(
        f"flotilla compare churn: {c.get('labeled_pairs')} labeled pairs; "
        f"{c.get('champion')} {c.get('metric')}={champion.get('value')}, "
        f"{c.get('challenger')} {c.get('metric')}={challenger.get('value')}; "
        f"verdict [bold]{c.get('verdict')}[/]"
    )
    for reason in c.get("reasons", [])[:3]:
        console.print(f"  - {escape(str(reason))}")
    console.print("\nKeep serving with: flotilla serve   |   compare again: flotilla compare churn")
