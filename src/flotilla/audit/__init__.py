"""Leakage and timeliness audits of training sets, and point-in-time correct feature joins.

``audit(...)`` answers, per feature, "at the moment of prediction, did this row hold this value
yet?" and flags features that stand in for the label; ``point_in_time_join(...)`` builds
training sets that cannot leak through time.
"""

from __future__ import annotations

from flotilla.audit._audit import audit
from flotilla.audit._report import AuditReport, Finding
from flotilla.audit.pit import FeatureTable, point_in_time_join, write_table

__all__ = [
    "AuditReport",
    "FeatureTable",
    "Finding",
    "audit",
    "point_in_time_join",
    "write_table",
]
