"""Flotilla: keep a portfolio of machine-learning models available, honest and auditable.

The public Python API is re-exported here deliberately; everything else is private.
"""

from __future__ import annotations

from flotilla.errors import FlotillaError
from flotilla.settings import Settings
from flotilla.signature import InputField, OutputSpec, Signature

__version__ = "0.1.0"

__all__ = [
    "FlotillaError",
    "InputField",
    "OutputSpec",
    "Settings",
    "Signature",
    "__version__",
]
