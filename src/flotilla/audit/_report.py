"""Findings and the audit report: terminal-, JSON- and HTML-friendly."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = ["AuditReport", "Finding", "Severity"]

Severity = Literal["error", "warning"]

CHECKS = (
    "future_value",
    "null_encodes_label",
    "too_good",
    "label_copy",
    "split_time_leakage",
    "split_entity_overlap",
    "identifier_leakage",
    "label_cardinality",
    "feature_age_fresher",
    "feature_age_staler",
)


@dataclass(frozen=True)
class Finding:
    """One problem the audit found.

    Attributes:
        check: which check found it (``future_value``, ``null_encodes_label``, ``too_good``,
            ``label_copy``, ``split_time_leakage``, ``split_entity_overlap``,
            ``identifier_leakage``, ``label_cardinality``, ``feature_age_fresher``,
            ``feature_age_staler``).
        feature: the column concerned (the split column for split checks).
        severity: ``"error"`` (do not ship) or ``"warning"`` (look before shipping).
        message: what is wrong, in plain words.
        evidence: the numbers behind the finding (shares, counts, AUCs, intervals).
        examples: up to five example rows that show the problem.
        advice: what to do about it.
        chart: data for the HTML report's chart (kind plus values); not part of the evidence.
    """

    check: str
    feature: str
    severity: Severity
    message: str
    evidence: dict[str, Any]
    examples: list[dict[str, Any]] = field(default_factory=list)
    advice: str = ""
    chart: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the chart data is left out)."""
        return {
            "check": self.check,
            "feature": self.feature,
            "severity": self.severity,
            "message": self.message,
            "evidence": self.evidence,
            "examples": self.examples,
            "advice": self.advice,
        }


@dataclass(frozen=True)
class AuditReport:
    """The result of :func:`flotilla.audit.audit`.

    Attributes:
        findings: every finding, errors first.
        summary: rows, features checked, label kind, sample size and counts by severity.
    """

    findings: list[Finding]
    summary: dict[str, Any]

    @property
    def has_errors(self) -> bool:
        """True when at least one finding is an error."""
        return any(f.severity == "error" for f in self.findings)

    @property
    def has_warnings(self) -> bool:
        """True when at least one finding is a warning."""
        return any(f.severity == "warning" for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0 when clean, 1 when there are warnings only, 2 when there is any error."""
        if self.has_errors:
            return 2
        return 1 if self.has_warnings else 0

    def errors(self) -> list[Finding]:
        """The findings whose severity is ``error``."""
        return [f for f in self.findings if f.severity == "error"]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: summary, exit code and findings."""
        return {
            "summary": self.summary,
            "exit_code": self.exit_code,
            "has_errors": self.has_errors,
            "has_warnings": self.has_warnings,
            "findings": [f.to_dict() for f in self.findings],
        }

    def to_html(self, path: str | Path) -> Path:
        """Write a self-contained HTML report (inline SVG charts) atomically and return its path.

        Example:
            >>> report.to_html("audit.html")  # doctest: +SKIP
        """
        from flotilla.audit._html import write_html

        return write_html(self, Path(path))


def make_summary(
    *, rows: int, features: list[str], findings: list[Finding], extra: dict[str, Any]
) -> dict[str, Any]:
    """The report's summary block."""
    return {
        "rows": rows,
        "features_checked": len(features),
        "features": features,
        "errors": sum(f.severity == "error" for f in findings),
        "warnings": sum(f.severity == "warning" for f in findings),
        **extra,
    }


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Errors first, then by check order, then by feature name."""
    order = {c: i for i, c in enumerate(CHECKS)}
    return sorted(
        findings,
        key=lambda f: (f.severity != "error", order.get(f.check, 99), f.feature),
    )
