"""Builders for tests of shadows judged on delayed labels: tiny versions, a churn deployment
with shadows, and live + shadow prediction records with their outcomes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from flotilla.portfolio import DeploymentSpec, Portfolio, apply
from flotilla.records import OutcomeStore, PredictionEvent, RecordWriter
from flotilla.testing import FakeClock
from flotilla.workspace import Workspace

T0 = datetime(2026, 3, 1, tzinfo=UTC)
SIG = {"inputs": [{"name": "x", "type": "float"}], "output": {"kind": "probability"}}
MODEL_PY = """
class Model:
    def __init__(self, answer=0.5):
        self.answer = answer

    def predict(self, records):
        return [self.answer for _ in records]
"""


def register_tiny(
    ws: Workspace, folder: Path, versions: Sequence[tuple[str, float]], *, module: str
) -> None:
    """Register one python version per ``(model, answer)``, in order (``module.py`` in
    ``folder`` holds the code; the name must be unique per test process)."""
    code = folder / f"{module}.py"
    code.write_text(MODEL_PY)
    for name, answer in versions:
        ws.register(
            name, flavor="python", artifact=code, entry=f"{module}:Model",
            params={"answer": answer}, signature=SIG,
        )  # fmt: skip


def deploy_churn(
    ws: Workspace,
    *,
    shadows: Sequence[str] = ("churn@2",),
    promotion: Mapping[str, Any],
    sample: float = 1.0,
    actor: str = "ana",
) -> None:
    """Deploy ``churn@1`` live, a static fallback, ``shadows`` and ``promotion``."""
    spec = DeploymentSpec.from_dict(
        {
            "live": "churn@1",
            "fallbacks": [{"static": {"value": 0.5}}],
            "shadows": [{"ref": s, "sample": sample} for s in shadows],
            "promotion": dict(promotion),
        },
        model="churn",
    )
    apply(Portfolio({"churn": spec}), ws.registry, actor=actor)


def record_labeled(
    root: Path,
    probabilities: Mapping[str, Sequence[float]],
    labels: Sequence[int],
    *,
    days: float,
    label_delay: timedelta = timedelta(hours=1),
    prefix: str = "r",
    latency_ms: float = 1.0,
    with_index: bool = False,
) -> OutcomeStore:
    """Requests spread evenly over ``days`` from :data:`T0`, each answered by every ref of
    ``probabilities`` (``churn@1`` live, the others as shadows), and each request's label
    observed ``label_delay`` later. Returns the outcome store that ingested the labels."""
    n = len(labels)
    writer = RecordWriter(root, clock=FakeClock(start=T0 + timedelta(days=days)))
    outcomes: list[dict[str, Any]] = []
    for i in range(n):
        t = T0 + timedelta(seconds=i * days * 86_400 / n)
        for ref, p in probabilities.items():
            writer.submit(
                PredictionEvent(
                    request_id=f"{prefix}{i}", model="churn", ref=ref,
                    role="live" if ref == "churn@1" else "shadow", inputs=[{"x": 1.0}],
                    predictions=[float(p[i])], ids=None, latency_ms=latency_ms, degraded=False,
                    reasons=[], event_time=t,
                )
            )  # fmt: skip
        outcome: dict[str, Any] = {"request_id": f"{prefix}{i}", "label": int(labels[i])}
        if with_index:
            outcome["index"] = 0
        outcome["observed_at"] = (t + label_delay).isoformat()
        outcomes.append(outcome)
    writer.flush()
    store = OutcomeStore(root, clock=FakeClock(start=T0 + timedelta(days=days + 1)))
    store.ingest("churn", outcomes)
    return store


def shadow_traffic(
    root: Path, *, n: int, days: float, chall: float, champ: float = 0.3, seed: int = 1
) -> OutcomeStore:
    """Live ``churn@1`` and shadow ``churn@2`` probabilities whose signal strengths are
    ``champ`` and ``chall`` (0: coin flips), labels an hour later (:func:`record_labeled`)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    noise = rng.normal(size=(n, 2))  # the same draws as one per request and ref, in order
    sign = 2 * y - 1
    probabilities = {
        "churn@1": 1 / (1 + np.exp(-(champ * sign + noise[:, 0]))),
        "churn@2": 1 / (1 + np.exp(-(chall * sign + noise[:, 1]))),
    }
    return record_labeled(root, probabilities, y, days=days)
