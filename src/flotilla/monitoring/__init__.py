"""Monitoring: drift statistics, reference profiles and drift reports.

The statistics follow Evidently's conventions (see ``flotilla.monitoring.drift``); reports add
the change in null rate and a Benjamini-Hochberg correction across fields.
"""

from __future__ import annotations

from flotilla.monitoring.compare import DriftReport, FieldDrift, compare_columns
from flotilla.monitoring.drift import (
    benjamini_hochberg,
    binned_counts,
    binned_proportions,
    chi2,
    jensen_shannon,
    ks,
    null_rates,
    proportion_z_test,
    psi,
    wasserstein_normed,
)
from flotilla.monitoring.profiles import (
    PROFILE_FORMAT,
    build_profile,
    is_profile,
    profile_to_reference,
)

__all__ = [
    "PROFILE_FORMAT",
    "DriftReport",
    "FieldDrift",
    "benjamini_hochberg",
    "binned_counts",
    "binned_proportions",
    "build_profile",
    "chi2",
    "compare_columns",
    "is_profile",
    "jensen_shannon",
    "ks",
    "null_rates",
    "profile_to_reference",
    "proportion_z_test",
    "psi",
    "wasserstein_normed",
]
