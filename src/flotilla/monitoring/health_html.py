"""A self-contained HTML health report: tables and inline SVG charts, no external assets."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flotilla._atomic import write_text_atomic
from flotilla.monitoring.health import HealthReport

__all__ = ["render_health_html", "write_health_html"]

_SERIES = (
    ("fallback_rate", "fallback rate", "#d62728"),
    ("drift_share", "drift share", "#1f77b4"),
    ("error_rate", "error rate", "#ff7f0e"),
)
_W, _H, _PAD = 720, 220, 40

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.bad { color: #b00; font-weight: bold; }
.note { color: #555; font-size: 0.9em; }
"""


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _e(value: Any) -> str:
    return html.escape(_fmt(value))


def _chart(series: Sequence[dict[str, Any]]) -> str:
    """An SVG line chart of the rates per step (0 to 1 on the y axis)."""
    n = len(series)
    if n == 0:
        return "<p class='note'>No steps to draw.</p>"
    width, height = _W - 2 * _PAD, _H - 2 * _PAD

    def x(i: int) -> float:
        return _PAD + (width * i / (n - 1) if n > 1 else width / 2)

    def y(v: float) -> float:
        return _PAD + height * (1.0 - max(0.0, min(1.0, v)))

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" role="img" aria-label="rates over time">',
        f'<rect x="{_PAD}" y="{_PAD}" width="{width}" height="{height}" fill="none" '
        'stroke="#999"/>',
    ]
    for tick in (0.0, 0.5, 1.0):
        parts.append(
            f'<text x="{_PAD - 6}" y="{y(tick) + 4:.1f}" font-size="11" '
            f'text-anchor="end">{tick:g}</text>'
        )
    for i in (0, n - 1):
        label = html.escape(str(series[i]["start"])[:16])
        parts.append(
            f'<text x="{x(i):.1f}" y="{_H - _PAD + 16}" font-size="11" '
            f'text-anchor="middle">{label}</text>'
        )
    for j, (key, label, color) in enumerate(_SERIES):
        points = [(x(i), y(float(s[key]))) for i, s in enumerate(series) if s[key] is not None]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{path}"/>'
            )
        for px, py in points:
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{color}"/>')
        parts.append(
            f'<text x="{_PAD + 10 + 130 * j}" y="{_PAD - 10}" font-size="12" '
            f'fill="{color}">{label}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _drift_section(report: HealthReport) -> str:
    if not report.drift:
        return f"<p class='note'>Drift: {_e(report.drift_note or 'no fields')}.</p>"
    rows = [
        (
            d["name"],
            d["test"],
            d["statistic"],
            d["threshold"],
            d["drifted"],
            d["psi"],
            d["jensen_shannon"],
            d["null_rate_reference"],
            d["null_rate_current"],
        )
        for d in report.drift
    ]
    headers = ("field", "test", "value", "threshold", "drifted", "PSI", "JS", "nulls ref", "now")
    return "<h2>Drifted fields, ranked</h2>" + _table(headers, rows)


def _performance_section(report: HealthReport) -> str:
    out = ["<h2>Performance</h2>"]
    if report.performance is not None:
        p = report.performance
        out.append(
            _table(("metric", "value", "labeled rows"), [(p["metric"], p["value"], p["labeled"])])
        )
    else:
        out.append("<p class='note'>No labeled rows in this window.</p>")
    if report.cbpe is not None:
        c = report.cbpe
        out.append("<h3>Estimated without labels (CBPE)</h3>")
        out.append(
            _table(
                ("rows", "accuracy", "precision", "recall", "F1", "ROC AUC"),
                [(c["rows"], c["accuracy"], c["precision"], c["recall"], c["f1"], c["roc_auc"])],
            )
        )
        items = "".join(f"<li>{html.escape(a)}</li>" for a in c["assumptions"])
        out.append(f"<p class='note'>Assumes:</p><ul class='note'>{items}</ul>")
    return "\n".join(out)


def render_health_html(report: HealthReport, series: Sequence[dict[str, Any]]) -> str:
    """The HTML page of one model's health report and its series over time."""
    title = f"Health of {report.model}"
    status = report.status
    cls = "bad" if status != "ok" else ""
    metrics = [(k, v) for k, v in report.metrics.items()]
    roles = [(r, v["requests"], v["rows"]) for r, v in report.traffic_by_role.items()]
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in report.notes)
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            f"<p>{_e(report.start.isoformat())} to {_e(report.end.isoformat())} &middot; "
            f"live version {_e(report.live_ref)} &middot; status "
            f"<span class='{cls}'>{_e(status)}</span> &middot; trouble score "
            f"{_e(report.trouble_score)}</p>",
            "<h2>Fallback rate, error rate and drift share over time</h2>",
            _chart(series),
            "<h2>Numbers</h2>",
            _table(("metric", "value"), metrics),
            "<h2>Traffic by role</h2>",
            _table(("role", "requests", "rows"), roles),
            _drift_section(report),
            _performance_section(report),
            f"<ul class='note'>{notes}</ul>" if notes else "",
            "</body></html>",
        ]
    )


def write_health_html(
    path: str | Path, report: HealthReport, series: Sequence[dict[str, Any]]
) -> Path:
    """Write :func:`render_health_html` to ``path`` atomically (temp file + ``os.replace``)."""
    return write_text_atomic(path, render_health_html(report, series))
