"""A self-contained HTML report of a :class:`~flotilla.evaluation.compare.Comparison`.

One file, no JavaScript, no external CSS or fonts: a summary table, an inline SVG line chart
of each model's metric per day, and an inline SVG bar chart of the label coverage per day
(so a reader sees at a glance whether recent days are under-labeled, i.e. whether label
delay may bias the evidence).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flotilla._atomic import write_text_atomic
from flotilla.evaluation.compare import Comparison, Estimate

__all__ = ["coverage_chart", "metric_chart", "render_html", "write_html"]

_W, _H = 720, 260
_PAD_L, _PAD_R, _PAD_T, _PAD_B = 56, 16, 16, 44
_COLORS = {"champion": "#1f77b4", "challenger": "#d62728", "coverage": "#2ca02c"}
_VERDICT_COLORS = {"promote": "#2ca02c", "keep_shadowing": "#b8860b", "reject": "#d62728"}

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2rem;
color:#222;max-width:60rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse}td,th{padding:.25rem .75rem;border-bottom:1px solid #ddd;
text-align:left}
.verdict{font-weight:bold;padding:.1rem .5rem;border-radius:.25rem;color:#fff}
svg text{font-size:11px;fill:#444}.axis{stroke:#999}.grid{stroke:#eee}
ul{padding-left:1.2rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}g}"


def _interval(est: Estimate) -> str:
    return f"{_fmt(est.value)} [{_fmt(est.ci_low)}, {_fmt(est.ci_high)}]"


def _scale(lo: float, hi: float, out_lo: float, out_hi: float) -> Any:
    span = (hi - lo) or 1.0
    return lambda v: out_lo + (v - lo) / span * (out_hi - out_lo)


def _axes(labels: Sequence[str], y_lo: float, y_hi: float, y_label: str) -> list[str]:
    """Frame, horizontal grid with values, and (thinned) date labels."""
    parts = []
    y = _scale(y_lo, y_hi, _H - _PAD_B, _PAD_T)
    for i in range(5):
        v = y_lo + (y_hi - y_lo) * i / 4
        py = y(v)
        parts.append(
            f'<line class="grid" x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{py:.1f}" y2="{py:.1f}"/>'
            f'<text x="{_PAD_L - 6}" y="{py + 4:.1f}" text-anchor="end">{_fmt(v, 3)}</text>'
        )
    parts.append(
        f'<line class="axis" x1="{_PAD_L}" x2="{_PAD_L}" y1="{_PAD_T}" y2="{_H - _PAD_B}"/>'
        f'<line class="axis" x1="{_PAD_L}" x2="{_W - _PAD_R}" y1="{_H - _PAD_B}" '
        f'y2="{_H - _PAD_B}"/>'
        f'<text x="12" y="{_PAD_T + 8}" >{_e(y_label)}</text>'
    )
    step = max(1, len(labels) // 8)
    x = _x_of(len(labels))
    for i in range(0, len(labels), step):
        parts.append(
            f'<text x="{x(i):.1f}" y="{_H - _PAD_B + 16}" text-anchor="middle">'
            f"{_e(labels[i])}</text>"
        )
    return parts


def _x_of(n: int) -> Any:
    if n <= 1:
        return lambda i: (_PAD_L + _W - _PAD_R) / 2
    return _scale(0, n - 1, _PAD_L + 10, _W - _PAD_R - 10)


def _svg(parts: list[str], title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{_e(title)}">'
        f"<title>{_e(title)}</title>{''.join(parts)}</svg>"
    )


def metric_chart(over_time: Sequence[dict[str, Any]], metric: str) -> str:
    """An inline SVG line chart of each model's metric per day (gaps where undefined)."""
    if not over_time:
        return "<p>No labeled pairs yet: nothing to draw.</p>"
    labels = [str(row["date"]) for row in over_time]
    values = [row[k] for row in over_time for k in ("champion", "challenger")]
    finite = [float(v) for v in values if v is not None]
    if not finite:
        return "<p>The metric is undefined on every day so far (e.g. one class only).</p>"
    lo, hi = min(finite), max(finite)
    pad = (hi - lo) * 0.1 or 0.05
    lo, hi = lo - pad, hi + pad
    parts = _axes(labels, lo, hi, metric)
    x, y = _x_of(len(labels)), _scale(lo, hi, _H - _PAD_B, _PAD_T)
    for key in ("champion", "challenger"):
        color = _COLORS[key]
        points = [(x(i), y(row[key])) for i, row in enumerate(over_time) if row[key] is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
            )
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>')
    parts.append(
        _legend([("champion", _COLORS["champion"]), ("challenger", _COLORS["challenger"])])
    )
    return _svg(parts, f"{metric} per day")


def coverage_chart(coverage: Sequence[dict[str, Any]]) -> str:
    """An inline SVG bar chart of the share of live predictions with a label, per day."""
    if not coverage:
        return "<p>No live predictions in the window.</p>"
    labels = [str(row["date"]) for row in coverage]
    parts = _axes(labels, 0.0, 1.0, "labeled share")
    x, y = _x_of(len(labels)), _scale(0.0, 1.0, _H - _PAD_B, _PAD_T)
    width = max(2.0, min(40.0, (_W - _PAD_L - _PAD_R) / max(1, len(labels)) * 0.7))
    for i, row in enumerate(coverage):
        share = float(row["coverage"] or 0.0)
        top = y(share)
        parts.append(
            f'<rect x="{x(i) - width / 2:.1f}" y="{top:.1f}" width="{width:.1f}" '
            f'height="{_H - _PAD_B - top:.1f}" fill="{_COLORS["coverage"]}">'
            f"<title>{_e(row['date'])}: {row['labeled']} of {row['predictions']} labeled"
            "</title></rect>"
        )
    return _svg(parts, "label coverage per day")


def _legend(items: list[tuple[str, str]]) -> str:
    out = []
    for i, (name, color) in enumerate(items):
        px = _PAD_L + 10 + i * 110
        out.append(
            f'<rect x="{px}" y="{_H - 18}" width="12" height="12" fill="{color}"/>'
            f'<text x="{px + 16}" y="{_H - 8}">{_e(name)}</text>'
        )
    return "".join(out)


def _summary(c: Comparison) -> str:
    rows = [
        ("champion", c.champion or "none"),
        ("challenger", c.challenger or "none"),
        ("labeled pairs", c.labeled_pairs),
        (f"champion {c.metric}", _interval(c.champion_metric)),
        (f"challenger {c.metric}", _interval(c.challenger_metric)),
        ("difference (challenger - champion)", _interval(c.difference)),
        ("sequential test (mSPRT) p-value", _fmt(c.sequential.get("p_value"))),
        ("days of shadowing", _fmt(c.days, 3)),
    ]
    for who in ("champion", "challenger"):
        lat, rates = c.latency.get(who, {}), c.rates.get(who, {})
        rows.append(
            (
                f"{who} latency p50 / p99 (ms)",
                f"{_fmt(lat.get('p50_ms'))} / {_fmt(lat.get('p99_ms'))}",
            )
        )
        rows.append(
            (
                f"{who} error / fallback rate",
                f"{_fmt(rates.get('error_rate'))} / {_fmt(rates.get('fallback_rate'))}",
            )
        )
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def render_html(comparison: Comparison) -> str:
    """The report as one self-contained HTML document (no scripts, no external resources)."""
    c = comparison
    color = _VERDICT_COLORS.get(c.verdict, "#555")
    needed = ", ".join(f"{k}: {_fmt(v)}" for k, v in c.needed.items() if v)
    reasons = "".join(f"<li>{_e(r)}</li>" for r in c.reasons)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>flotilla compare {_e(c.model)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(c.model)}: {_e(c.champion or '?')} vs {_e(c.challenger or '?')}</h1>"
        f"<p>Verdict: <span class='verdict' style='background:{color}'>{_e(c.verdict)}</span>"
        f"{' (still needed: ' + _e(needed) + ')' if needed else ''}</p>"
        f"<ul>{reasons}</ul>{_summary(c)}"
        f"<h2>{_e(c.metric)} per day</h2>{metric_chart(c.over_time, c.metric)}"
        f"<h2>Label coverage per day</h2>{coverage_chart(c.label_coverage)}"
        f"<p><small>Generated {_e(c.generated_at.isoformat())} by flotilla.</small></p>"
        "</body></html>\n"
    )


def write_html(comparison: Comparison, path: str | Path) -> Path:
    """Write :func:`render_html` to ``path`` atomically (temp file + ``os.replace``)."""
    return write_text_atomic(path, render_html(comparison))
