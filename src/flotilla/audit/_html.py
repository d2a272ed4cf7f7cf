"""A self-contained HTML audit report with hand-written inline SVG charts."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from flotilla._atomic import write_text_atomic

if TYPE_CHECKING:
    from flotilla.audit._report import AuditReport, Finding

__all__ = ["bars_svg", "histogram_svg", "write_html"]

W, H, PAD = 520, 220, 40
_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:980px;color:#222}
.f{border:1px solid #ddd;border-radius:6px;padding:1rem;margin:1rem 0}
.error{border-left:6px solid #c62828}.warning{border-left:6px solid #f9a825}
.sev{font-weight:bold;text-transform:uppercase}.error .sev{color:#c62828}
.warning .sev{color:#b07d00}
table{border-collapse:collapse;font-size:.85rem}td,th{border:1px solid #ddd;padding:2px 6px}
pre{background:#f6f6f6;padding:.5rem;overflow-x:auto;font-size:.8rem}
"""


def _fmt(value: float) -> str:
    if abs(value) >= 1000 or (value != 0 and abs(value) < 0.01):
        return f"{value:.3g}"
    return f"{value:.2f}".rstrip("0").rstrip(".")


def bars_svg(chart: dict[str, Any]) -> str:
    """Vertical bars (``labels``, ``values``) with optional horizontal reference ``lines``."""
    labels, values = chart.get("labels", []), [float(v) for v in chart.get("values", [])]
    lines = [float(v) for v in chart.get("lines", [])]
    top = max([chart.get("max", 0.0), *values, *lines, 1e-12])
    inner_h, slot = H - 2 * PAD, (W - 2 * PAD) / max(len(values), 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">']
    for i, (name, value) in enumerate(zip(labels, values, strict=False)):
        h = inner_h * value / top
        x = PAD + i * slot + slot * 0.2
        parts.append(
            f'<rect x="{x:.1f}" y="{H - PAD - h:.1f}" width="{slot * 0.6:.1f}" '
            f'height="{h:.1f}" fill="#5c6bc0"/>'
        )
        parts.append(
            f'<text x="{x + slot * 0.3:.1f}" y="{H - PAD - h - 4:.1f}" '
            f'text-anchor="middle" font-size="12">{_fmt(value)}</text>'
        )
        parts.append(
            f'<text x="{x + slot * 0.3:.1f}" y="{H - PAD + 16}" text-anchor="middle" '
            f'font-size="12">{html.escape(str(name))}</text>'
        )
    for line in lines:
        y = H - PAD - inner_h * line / top
        parts.append(
            f'<line x1="{PAD}" x2="{W - PAD}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#c62828" stroke-dasharray="4 3"/>'
        )
        parts.append(f'<text x="{W - PAD + 2}" y="{y + 4:.1f}" font-size="10">{_fmt(line)}</text>')
    unit = html.escape(str(chart.get("unit", "")))
    parts.append(f'<text x="4" y="14" font-size="11" fill="#555">{unit}</text></svg>')
    return "".join(parts)


def histogram_svg(chart: dict[str, Any]) -> str:
    """A histogram (``edges``, ``counts``) with a dashed marker (zero: the event time)."""
    edges, counts = [float(e) for e in chart["edges"]], [int(c) for c in chart["counts"]]
    lo, hi, top = edges[0], edges[-1], max([*counts, 1])
    span = (hi - lo) or 1.0
    inner_w, inner_h = W - 2 * PAD, H - 2 * PAD

    def x_of(v: float) -> float:
        return PAD + inner_w * (v - lo) / span

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" role="img">']
    for left, right, count in zip(edges[:-1], edges[1:], counts, strict=False):
        h = inner_h * count / top
        color = "#c62828" if left >= 0 else "#5c6bc0"
        parts.append(
            f'<rect x="{x_of(left):.1f}" y="{H - PAD - h:.1f}" '
            f'width="{max(x_of(right) - x_of(left) - 1, 1):.1f}" height="{h:.1f}" '
            f'fill="{color}"/>'
        )
    marker = float(chart.get("marker", 0.0))
    if lo <= marker <= hi:
        parts.append(
            f'<line x1="{x_of(marker):.1f}" x2="{x_of(marker):.1f}" y1="{PAD}" '
            f'y2="{H - PAD}" stroke="#222" stroke-dasharray="4 3"/>'
        )
        parts.append(
            f'<text x="{x_of(marker) + 3:.1f}" y="{PAD - 4}" font-size="11">event time</text>'
        )
    parts.append(f'<text x="{PAD}" y="{H - 8}" font-size="11">{_fmt(lo)} s</text>')
    parts.append(
        f'<text x="{W - PAD}" y="{H - 8}" font-size="11" text-anchor="end">{_fmt(hi)} s</text>'
    )
    parts.append(
        '<text x="4" y="14" font-size="11" fill="#555">written_at − event_time '
        "(sample)</text></svg>"
    )
    return "".join(parts)


def _chart(finding: Finding) -> str:
    kind = finding.chart.get("kind")
    if kind == "bars":
        return bars_svg(finding.chart)
    if kind == "histogram":
        return histogram_svg(finding.chart)
    return ""


def _examples(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _finding(finding: Finding) -> str:
    evidence = orjson.dumps(finding.evidence, option=orjson.OPT_INDENT_2).decode()
    return (
        f'<div class="f {finding.severity}"><div><span class="sev">{finding.severity}</span> '
        f"<code>{html.escape(finding.check)}</code> on <b>{html.escape(finding.feature)}</b>"
        f"</div><p>{html.escape(finding.message)}</p>{_chart(finding)}"
        f"<p><b>What to do:</b> {html.escape(finding.advice)}</p>"
        f"<details><summary>evidence and examples</summary><pre>{html.escape(evidence)}</pre>"
        f"{_examples(finding.examples)}</details></div>"
    )


def render(report: AuditReport) -> str:
    """The report as one HTML page."""
    s = report.summary
    verdict = {0: "clean", 1: "warnings only", 2: "errors: do not ship"}[report.exit_code]
    body = "".join(_finding(f) for f in report.findings) or "<p>No findings.</p>"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>Flotilla audit</title>"
        f"<style>{_CSS}</style></head><body><h1>Training-set audit: {verdict}</h1>"
        f"<p>{s.get('rows', 0):,} rows, {s.get('features_checked', 0)} features checked, "
        f"label <code>{html.escape(str(s.get('label', '')))}</code> "
        f"({html.escape(str(s.get('label_kind', '')))}); {s.get('errors', 0)} errors, "
        f"{s.get('warnings', 0)} warnings.</p>{body}</body></html>"
    )


def write_html(report: AuditReport, path: Path) -> Path:
    """Write the page atomically (temp file + rename)."""
    return write_text_atomic(path, render(report))
