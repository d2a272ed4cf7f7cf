"""Leakage and timeliness audits of training sets, and point-in-time correct feature joins.

``audit(...)`` answers, per feature, "at the moment of prediction, did this row hold this value
yet?" and flags features that stand in for the label; ``point_in_time_join(...)`` builds
training sets that cannot leak through time.

The package itself is callable, so ``flotilla.audit(...)`` runs :func:`audit` while
``flotilla.audit.point_in_time_join`` stays reachable.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from flotilla.audit._audit import audit
from flotilla.audit._report import AuditReport, Finding
from flotilla.audit.feature_ages import (
    compare_feature_ages,
    merge_reports,
    training_feature_ages,
)
from flotilla.audit.pit import FeatureTable, point_in_time_join, write_table

__all__ = [
    "AuditReport",
    "FeatureTable",
    "Finding",
    "audit",
    "compare_feature_ages",
    "merge_reports",
    "point_in_time_join",
    "training_feature_ages",
    "write_table",
]


class _CallableModule(types.ModuleType):
    """``flotilla.audit(data, label=..., event_time=...)`` is ``flotilla.audit.audit(...)``."""

    def __call__(self, *args: Any, **kwargs: Any) -> AuditReport:
        return audit(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
