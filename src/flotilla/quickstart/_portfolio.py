"""The quickstart's portfolio file: every model with its fallback chain, one challenger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flotilla.portfolio import apply, load_portfolio
from flotilla.workspace import Workspace

__all__ = ["deploy_portfolio", "write_portfolio"]

_TEMPLATE = """\
# The quickstart portfolio: every chain ends in a static answer that cannot fail.
models:
  churn:
    live: churn@champion
    deadline_ms: 50
    fallbacks: [churn-lite@champion, {{static: {{value: {base_rate}}}}}]
    input_policy: fallback
    max_concurrency: 32
    breaker: {{failure_rate: 0.5, min_requests: 20, window_s: 10, open_s: 5}}
    shadows: [{{ref: churn@challenger, sample: 1.0}}]
    # min_days 0 so the demo's one afternoon of traffic can reach a verdict
    promotion: {{min_labeled: 500, min_days: 0, metric: auc, margin: 0.0, auto: false}}
  fraud:
    live: fraud@champion
    deadline_ms: 30
    fallbacks: [{{static: {{value: 0.02}}}}]
  recs:
    live: recs@champion
    deadline_ms: 50
    fallbacks: [recs-popular@champion]
"""


def write_portfolio(workdir: Path, *, base_rate: float) -> Path:
    """Write ``portfolio.yaml`` into ``workdir`` and return its path."""
    path = workdir / "portfolio.yaml"
    path.write_text(_TEMPLATE.format(base_rate=round(base_rate, 4)), encoding="utf-8")
    return path


def deploy_portfolio(ws: Workspace, path: Path) -> list[dict[str, Any]]:
    """Validate and deploy the portfolio (one revision per changed model)."""
    changes = apply(load_portfolio(path), ws.registry, actor=ws.actor, reason="quickstart")
    return [{"model": c.model, "action": c.action, "revision": c.revision} for c in changes]
