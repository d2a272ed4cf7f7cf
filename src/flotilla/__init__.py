"""Flotilla: keep a portfolio of machine-learning models available, honest and auditable.

The public Python API is re-exported here deliberately; everything else is private.

- :class:`Workspace`: register, resolve, load and check versions (the registry's API).
- :func:`audit` (``flotilla.audit(...)``): the leakage audit of a training set;
  ``flotilla.audit.point_in_time_join`` builds leak-free training sets.
- :class:`Settings`, :class:`Signature`: configuration and model signatures.
"""

from __future__ import annotations

from flotilla import audit
from flotilla.errors import FlotillaError
from flotilla.settings import Settings
from flotilla.signature import InputField, OutputSpec, Signature
from flotilla.workspace import Workspace

__version__ = "0.1.0"

__all__ = [
    "FlotillaError",
    "InputField",
    "OutputSpec",
    "Settings",
    "Signature",
    "Workspace",
    "__version__",
    "audit",
]
