"""Turning model outputs into plain Python predictions, per output kind."""

from __future__ import annotations

from typing import Any

import numpy as np

from flotilla.errors import PredictionError, RuntimeLoadError
from flotilla.signature import Signature

__all__ = ["output_kind", "positive_column", "to_plain", "to_plain_list"]


def output_kind(signature: Signature | None, default: str) -> str:
    """The signature's output kind, or ``default`` without a signature."""
    return signature.output.kind if signature is not None else default


def to_plain(value: Any) -> Any:
    """Convert numpy scalars/arrays (also nested in lists/dicts) to plain Python values."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(to_plain(k)): to_plain(v) for k, v in value.items()}
    return value


def to_plain_list(values: Any, n_rows: int, *, label: str) -> list[Any]:
    """A model's batch output as a list of ``n_rows`` plain predictions."""
    out: list[Any] = values.tolist() if isinstance(values, np.ndarray) else to_plain(list(values))
    if len(out) != n_rows:
        raise PredictionError(
            f"The model {label} returned {len(out)} prediction(s) for {n_rows} record(s); it "
            "must return exactly one per record."
        )
    return out


def positive_column(n_columns: int, *, label: str) -> int:
    """The column holding P(positive class) in a probability matrix; checks it is binary."""
    if n_columns == 2:
        return 1
    if n_columns == 1:
        return 0
    raise RuntimeLoadError(
        f"The model {label} has {n_columns} classes, but its signature asks for output kind "
        "'probability', which is P(positive class) of a binary classifier. Use output kind "
        "'label' for multiclass models."
    )
