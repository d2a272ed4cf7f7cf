"""Turning records into model inputs: a column plan computed once at load.

The plan fixes the column order (the model's own feature order when the artifact knows it,
else the signature's field order) and each column's conversion: numbers -> float, bool -> 0/1,
timestamp -> epoch seconds, ``None`` -> NaN, category/string -> kept as text.
"""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np

from flotilla.errors import InputValidationError, RuntimeLoadError
from flotilla.signature import Signature
from flotilla.types import Record

__all__ = ["ColumnPlan", "plan_columns"]

_TEXT_TYPES = frozenset({"string", "category"})

# A float64 value beyond float32's range becomes inf in a float32 input, as numpy casts it;
# the fast path casts while it builds the array, so its warning is silenced here once (where
# warnings are errors, the fast path catches it and the slow path casts under np.errstate).
warnings.filterwarnings(
    "ignore", message="overflow encountered in cast", category=RuntimeWarning, module=__name__
)


def _to_float(value: Any) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"expected a number, got {type(value).__name__}")


def _timestamp_to_float(value: Any) -> float:
    if isinstance(value, str):
        stamp = datetime.fromisoformat(value)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return stamp.timestamp()
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    return _to_float(value)


def _to_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | bool):
        return str(value)
    raise TypeError(f"expected a string, got {type(value).__name__}")


@dataclass(frozen=True)
class ColumnPlan:
    """The ordered columns a model reads and how each value is converted.

    Attributes:
        names: column names in the model's order.
        kinds: per column ``"float"``, ``"timestamp"`` or ``"text"``.
    """

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    label: str = ""

    @property
    def numeric(self) -> bool:
        """Whether every column converts to a float (one numpy array suffices)."""
        return "text" not in self.kinds

    @cached_property
    def _row_values(self) -> Callable[[Record], Any] | None:
        """One record's values in column order (a C-level getter), when every column is a
        plain float; ``None`` when some column needs a conversion."""
        if not all(kind == "float" for kind in self.kinds):
            return None
        if len(self.names) == 1:
            only = self.names[0]
            return lambda rec: (rec[only],)
        return operator.itemgetter(*self.names)

    def converter(self, index: int) -> Callable[[Any], Any]:
        kind = self.kinds[index]
        if kind == "timestamp":
            return _timestamp_to_float
        if kind == "text":
            return _to_text
        return _to_float

    def to_array(self, records: Sequence[Record], dtype: Any = np.float64) -> np.ndarray[Any, Any]:
        """A ``(len(records), len(names))`` float array; raises InputValidationError."""
        names = self.names
        values = self._row_values
        if values is not None:
            try:  # out-of-range values become inf (the overflow warning is silenced above)
                array = np.array([values(rec) for rec in records], dtype=dtype)
                if array.shape == (len(records), len(names)):
                    return array
            except (TypeError, ValueError, KeyError, IndexError, RuntimeWarning):
                pass  # the per-value path below gives a precise message (or casts quietly)
        columns = self.convert_columns(records)
        array = np.array(columns, dtype=np.float64).T.reshape(len(records), len(names))
        if dtype is np.float64:
            return array
        with np.errstate(over="ignore", invalid="ignore"):  # out-of-range -> inf, as numpy does
            return array.astype(dtype)

    def convert_columns(self, records: Sequence[Record]) -> list[list[Any]]:
        """Converted values column by column; raises InputValidationError naming the cell."""
        columns: list[list[Any]] = []
        for index, name in enumerate(self.names):
            convert = self.converter(index)
            column: list[Any] = []
            for row, rec in enumerate(records):
                value = rec.get(name) if isinstance(rec, dict) else None
                try:
                    column.append(convert(value))
                except (TypeError, ValueError) as exc:
                    raise _bad_value(self.label, row, name, value, exc) from exc
            columns.append(column)
        return columns

    def to_frame(self, records: Sequence[Record]) -> Any:
        """A pandas DataFrame with the plan's columns (text columns as object dtype)."""
        import pandas as pd

        if self.numeric:  # one float block: about 3x faster than column by column
            return pd.DataFrame(self.to_array(records), columns=list(self.names), copy=False)
        columns = self.convert_columns(records)
        data: dict[str, Any] = {}
        for name, kind, column in zip(self.names, self.kinds, columns, strict=True):
            if kind == "text":
                data[name] = pd.Series(column, dtype=object)
            else:
                data[name] = np.asarray(column, dtype=np.float64)
        return pd.DataFrame(data, columns=list(self.names))


def _bad_value(label: str, row: int, name: str, value: Any, exc: Exception) -> Exception:
    text = repr(value)
    text = text if len(text) <= 40 else text[:37] + "..."
    where = f" of {label}" if label else ""
    return InputValidationError(
        f"Input {name!r} of row {row}{where} cannot be converted for the model: {exc} "
        f"(value {text}). Send a value of the field's type.",
        [{"row": row, "field": name, "problem": str(exc)}],
    )


def plan_columns(
    signature: Signature | None,
    model_names: Sequence[str] | None,
    *,
    label: str,
    n_features: int | None = None,
) -> ColumnPlan:
    """Line up the signature with the model's own feature names (when it knows them).

    Raises:
        RuntimeLoadError: the signature lacks a field the model needs, the number of
            fields does not match the model, or there is neither a signature nor names.
    """
    if model_names is not None:
        names = [str(n) for n in model_names]
        if signature is None:
            return ColumnPlan(tuple(names), tuple("float" for _ in names), label)
        known = {f.name: f for f in signature.inputs}
        missing = [n for n in names if n not in known]
        if missing:
            raise RuntimeLoadError(
                f"The model {label} needs input(s) {missing} that its signature lacks (the "
                f"signature has {sorted(known)}). Add them to the signature, or register a "
                "model trained on the signature's fields."
            )
        return ColumnPlan(tuple(names), tuple(_kind(known[n].type) for n in names), label)
    if signature is None:
        raise RuntimeLoadError(
            f"The model {label} does not name its inputs and has no signature, so records "
            "cannot be mapped to its columns. Register it with a signature (--signature FILE)."
        )
    fields = signature.inputs
    if n_features is not None and n_features != len(fields):
        raise RuntimeLoadError(
            f"The model {label} expects {n_features} input column(s) but its signature has "
            f"{len(fields)} field(s) ({[f.name for f in fields]}). Fix the signature so that "
            "its fields are the model's columns, in order."
        )
    return ColumnPlan(tuple(f.name for f in fields), tuple(_kind(f.type) for f in fields), label)


def _kind(field_type: str) -> str:
    if field_type in _TEXT_TYPES:
        return "text"
    if field_type == "timestamp":
        return "timestamp"
    return "float"
