"""``flotilla quickstart``: train, audit, register and (when available) deploy the portfolio."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "workdir": str(self.workdir),
            "registered": self.registered,
            "audit": self.audit,
            "portfolio": None if self.portfolio is None else str(self.portfolio),
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
    console.print("\nTry next:")
    for cmd in (
        "flotilla models list",
        "flotilla models show churn --json",
        "flotilla models check churn@champion",
        f"flotilla audit {leaky['file']} --label churned --event-time event_time",
        "flotilla audit-trail --model churn",
    ):
        console.print(f"  {cmd}")
