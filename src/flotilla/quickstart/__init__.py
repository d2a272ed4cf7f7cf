"""The quickstart portfolio: three small models trained on synthetic data made on the spot."""

from __future__ import annotations

from flotilla.quickstart._demo import run_demo
from flotilla.quickstart._run import QuickstartResult, print_demo, print_result, run_quickstart

__all__ = ["QuickstartResult", "print_demo", "print_result", "run_demo", "run_quickstart"]
