"""Test helpers for Flotilla and for users' own plug-ins.

- :class:`FakeClock`: a controllable clock (monotonic and wall time).
- ``check_runtime`` / ``run_checks``: the runtime conformance suite (see ``_checks``).
"""

from __future__ import annotations

from flotilla.testing._checks import (
    RUNTIME_CHECKS,
    Check,
    CheckReport,
    ConformanceError,
    RuntimeCase,
    check_runtime,
    parametrize_with_checks,
    run_checks,
)
from flotilla.testing._clock import FakeClock

__all__ = [
    "RUNTIME_CHECKS",
    "Check",
    "CheckReport",
    "ConformanceError",
    "FakeClock",
    "RuntimeCase",
    "check_runtime",
    "parametrize_with_checks",
    "run_checks",
]
