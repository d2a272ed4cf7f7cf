"""Validation of labels and predictions shared by the metric functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from flotilla.errors import ConfigError

FloatArray = NDArray[np.float64]


def numbers(values: Sequence[Any], what: str) -> FloatArray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"The {what} must be numbers for this metric.") from None
    if arr.ndim != 1:
        raise ConfigError(f"The {what} must be one number per row. Got shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise ConfigError(f"The {what} contain NaN or infinite values; drop or fix those rows.")
    return arr


def binary_labels(y: Sequence[Any]) -> FloatArray:
    arr = numbers(y, "labels")
    if not np.all((arr == 0) | (arr == 1)):
        bad = sorted(set(arr[(arr != 0) & (arr != 1)].tolist()))[:5]
        raise ConfigError(f"This metric needs binary labels 0/1. Got also {bad}.")
    return arr


def same_length(a: NDArray[Any], b: NDArray[Any]) -> None:
    if a.shape[0] != b.shape[0]:
        raise ConfigError(
            f"Got {a.shape[0]} labels but {b.shape[0]} predictions; they must pair up."
        )
