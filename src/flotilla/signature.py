"""Model signatures: typed input fields with constraints, and the kind of output.

A signature is what the registry stores per model, what the gateway validates requests
against, and what ``flotilla models check`` builds sample records from.

File format (YAML or JSON)::

    {"inputs": [{"name": "age", "type": "float", "nullable": false, "min": 0, "max": 130},
                {"name": "plan", "type": "category", "categories": ["basic", "pro"]}],
     "output": {"kind": "probability"}}

Output kinds: ``probability`` (a float in [0, 1]), ``score`` (a finite number), ``label``
(a string, int or bool) and ``items`` (a list of item ids, at most ``k`` long).
"""

from __future__ import annotations

import difflib
import json
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from flotilla.errors import InputValidationError, SignatureError

__all__ = [
    "FIELD_TYPES",
    "OUTPUT_KINDS",
    "InputField",
    "OutputSpec",
    "Signature",
    "Violation",
]

FieldType = Literal["float", "int", "bool", "string", "category", "timestamp"]
OutputKind = Literal["probability", "score", "label", "items"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
OUTPUT_KINDS: tuple[str, ...] = get_args(OutputKind)
_NUMBER_TYPES = frozenset({int, float})
_FIELD_KEYS = {"name", "type", "nullable", "min", "max", "categories", "description"}


@dataclass(frozen=True)
class Violation:
    """One way a record breaks a signature."""

    row: int
    field: str
    problem: str

    def to_dict(self) -> dict[str, object]:
        return {"row": self.row, "field": self.field, "problem": self.problem}


@dataclass(frozen=True, kw_only=True)
class InputField:
    """One typed input field.

    Args:
        name: the field's name in each record.
        type: one of ``float, int, bool, string, category, timestamp``.
        nullable: whether ``None`` (or a missing key) is allowed.
        min: smallest allowed value (numbers only).
        max: largest allowed value (numbers only).
        categories: the allowed values (``category`` only).
    """

    name: str
    type: FieldType
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[str, ...] | None = None
    description: str = ""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "signature") -> InputField:
        if not isinstance(data, Mapping):
            raise SignatureError(
                f"Each input of the {where} must be a mapping like "
                f"{{'name': 'age', 'type': 'float'}}. Got {data!r} instead."
            )
        unknown = set(data) - _FIELD_KEYS
        if unknown:
            raise SignatureError(
                f"Input {data.get('name', '?')!r} of the {where} has unknown keys "
                f"{sorted(unknown)}; the allowed keys are {sorted(_FIELD_KEYS)}."
            )
        name = data.get("name")
        if not isinstance(name, str) or not name:
            raise SignatureError(
                f"Every input of the {where} needs a non-empty 'name'. Got {name!r} instead."
            )
        ftype = data.get("type")
        if ftype not in FIELD_TYPES:
            hint = difflib.get_close_matches(str(ftype), FIELD_TYPES, n=1)
            did = f" Did you mean {hint[0]!r}?" if hint else ""
            raise SignatureError(
                f"The 'type' of input {name!r} in the {where} must be one of "
                f"{', '.join(FIELD_TYPES)}. Got {ftype!r} instead.{did}"
            )
        cats = data.get("categories")
        if ftype == "category":
            if not isinstance(cats, list | tuple) or not cats:
                raise SignatureError(
                    f"Input {name!r} of the {where} is a category and needs a non-empty "
                    f"'categories' list. Got {cats!r} instead."
                )
            cats = tuple(str(c) for c in cats)
        elif cats is not None:
            raise SignatureError(
                f"Input {name!r} of the {where} has 'categories' but its type is {ftype!r}; "
                "use type 'category' or drop the categories."
            )
        lo, hi = data.get("min"), data.get("max")
        for key, val in (("min", lo), ("max", hi)):
            if val is not None and (isinstance(val, bool) or not isinstance(val, int | float)):
                raise SignatureError(
                    f"The '{key}' of input {name!r} in the {where} must be a number. "
                    f"Got {val!r} instead."
                )
        if (lo is not None or hi is not None) and ftype not in ("float", "int"):
            raise SignatureError(
                f"Input {name!r} of the {where} has min/max but is of type {ftype!r}; "
                "bounds apply to float and int fields only."
            )
        if lo is not None and hi is not None and lo > hi:
            raise SignatureError(
                f"Input {name!r} of the {where} has min {lo} greater than max {hi}."
            )
        nullable = data.get("nullable", False)
        if not isinstance(nullable, bool):
            raise SignatureError(
                f"The 'nullable' of input {name!r} in the {where} must be true or false. "
                f"Got {nullable!r} instead."
            )
        return cls(
            name=name,
            type=cast(FieldType, ftype),
            nullable=nullable,
            min=None if lo is None else float(lo),
            max=None if hi is None else float(hi),
            categories=cats,
            description=str(data.get("description", "")),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type, "nullable": self.nullable}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.categories is not None:
            out["categories"] = list(self.categories)
        if self.description:
            out["description"] = self.description
        return out

    def checker(self) -> Callable[[Any], str | None]:
        """A fast function returning ``None`` for a valid value, else the problem."""
        return _make_checker(self)


@dataclass(frozen=True, kw_only=True)
class OutputSpec:
    """The kind of output a model answers with.

    Args:
        kind: ``probability``, ``score``, ``label`` or ``items``.
        k: for ``items``, the largest number of item ids in one answer.
    """

    kind: OutputKind
    k: int | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "signature") -> OutputSpec:
        if not isinstance(data, Mapping):
            raise SignatureError(
                f"The 'output' of the {where} must be a mapping like {{'kind': 'probability'}}. "
                f"Got {data!r} instead."
            )
        kind = data.get("kind")
        if kind not in OUTPUT_KINDS:
            hint = difflib.get_close_matches(str(kind), OUTPUT_KINDS, n=1)
            did = f" Did you mean {hint[0]!r}?" if hint else ""
            raise SignatureError(
                f"The output 'kind' of the {where} must be one of {', '.join(OUTPUT_KINDS)}. "
                f"Got {kind!r} instead.{did}"
            )
        k = data.get("k")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            raise SignatureError(
                f"The output 'k' of the {where} must be a positive integer. Got {k!r} instead."
            )
        return cls(kind=cast(OutputKind, kind), k=k)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if self.k is not None:
            out["k"] = self.k
        return out

    def check(self, predictions: Sequence[Any], n_rows: int) -> str | None:
        """Return ``None`` when the predictions fit this output spec, else what is wrong."""
        if not isinstance(predictions, list | tuple):
            return f"expected a list of {n_rows} predictions, got {type(predictions).__name__}"
        if len(predictions) != n_rows:
            return f"expected {n_rows} predictions, got {len(predictions)}"
        if self.kind == "probability" and _plain_probabilities(predictions):
            return None  # the request path's usual case, without a call per prediction
        for i, p in enumerate(predictions):
            problem = self._check_one(p)
            if problem is not None:
                return f"prediction {i}: {problem}"
        return None

    def _check_one(self, p: Any) -> str | None:
        if self.kind in ("probability", "score"):
            if isinstance(p, bool) or not isinstance(p, int | float):
                return f"expected a number, got {type(p).__name__}"
            if not math.isfinite(p):
                return f"not a finite number ({p})"
            if self.kind == "probability" and not 0.0 <= p <= 1.0:
                return f"probability {p} is outside [0, 1]"
            return None
        if self.kind == "label":
            if isinstance(p, str | int | bool):
                return None
            if isinstance(p, float):
                return None if math.isfinite(p) else f"not a finite label ({p})"
            return f"expected a label (string, int or bool), got {type(p).__name__}"
        # items
        if not isinstance(p, list | tuple):
            return f"expected a list of item ids, got {type(p).__name__}"
        if self.k is not None and len(p) > self.k:
            return f"expected at most {self.k} items, got {len(p)}"
        for item in p:
            if isinstance(item, float) and not math.isfinite(item):
                return f"item id {item} is not finite"
            if not isinstance(item, str | int | float):
                return f"item ids must be strings or numbers, got {type(item).__name__}"
        return None


@dataclass(frozen=True, kw_only=True)
class Signature:
    """A model's typed inputs and its output kind.

    Example:
        >>> sig = Signature.from_dict({"inputs": [{"name": "age", "type": "float", "min": 0}],
        ...                            "output": {"kind": "probability"}})
        >>> sig.validate([{"age": -1}])[0].problem
        'value -1 is below the minimum 0.0'
    """

    inputs: tuple[InputField, ...]
    output: OutputSpec
    _checkers: tuple[tuple[str, bool, Callable[[Any], str | None]], ...] = field(
        init=False, repr=False, compare=False, default=()
    )
    _fast: tuple[tuple[str, float, float, bool], ...] | None = field(
        init=False, repr=False, compare=False, default=None
    )
    _keys: frozenset[str] = field(init=False, repr=False, compare=False, default=frozenset())
    _values: Callable[[Mapping[str, Any]], tuple[Any, ...]] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        names = [f.name for f in self.inputs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise SignatureError(f"The signature names input(s) {dupes} more than once.")
        object.__setattr__(
            self, "_checkers", tuple((f.name, f.nullable, f.checker()) for f in self.inputs)
        )
        object.__setattr__(self, "_keys", frozenset(names))
        if all(f.type in ("float", "int") for f in self.inputs):
            fast = tuple(
                (
                    f.name,
                    -math.inf if f.min is None else float(f.min),
                    math.inf if f.max is None else float(f.max),
                    f.type == "int",
                )
                for f in self.inputs
            )
            object.__setattr__(self, "_fast", fast)
            if all(f.type == "float" and f.min is None and f.max is None for f in self.inputs):
                # every field an unbounded float: one record's values in C, checked at once
                only = names[0]
                values = (lambda rec: (rec[only],)) if len(names) == 1 else itemgetter(*names)
                object.__setattr__(self, "_values", values)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        """Pickle through :meth:`to_dict` (the compiled field checkers are closures)."""
        return (Signature.from_dict, (self.to_dict(),))

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.inputs]

    def field(self, name: str) -> InputField:
        for f in self.inputs:
            if f.name == name:
                return f
        raise SignatureError(f"The signature has no input named {name!r}.")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, where: str = "signature") -> Signature:
        """Parse and validate a signature mapping; raises :class:`SignatureError`."""
        if not isinstance(data, Mapping):
            raise SignatureError(
                f"The {where} must be a mapping with 'inputs' and 'output'. "
                f"Got {type(data).__name__} instead."
            )
        unknown = set(data) - {"inputs", "output"}
        if unknown:
            raise SignatureError(
                f"The {where} has unknown keys {sorted(unknown)}; it takes 'inputs' and 'output'."
            )
        inputs = data.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise SignatureError(
                f"The {where} needs a non-empty 'inputs' list. Got {inputs!r} instead."
            )
        if "output" not in data:
            raise SignatureError(
                f"The {where} needs an 'output', e.g. {{'kind': 'probability'}}; the kinds are "
                f"{', '.join(OUTPUT_KINDS)}."
            )
        return cls(
            inputs=tuple(InputField.from_dict(f, where=where) for f in inputs),
            output=OutputSpec.from_dict(data["output"], where=where),
        )

    @classmethod
    def load(cls, path: str | Path) -> Signature:
        """Read a signature from a YAML or JSON file."""
        p = Path(path)
        if not p.is_file():
            raise SignatureError(f"Signature file {str(p)!r} does not exist or is not a file.")
        text = p.read_text(encoding="utf-8")
        try:
            data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (json.JSONDecodeError, yaml.YAMLError) as exc:
            raise SignatureError(
                f"Signature file {str(p)!r} is not valid YAML/JSON: {exc}"
            ) from exc
        return cls.from_dict(data, where=f"signature file {p.name!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": [f.to_dict() for f in self.inputs], "output": self.output.to_dict()}

    def validate(self, records: Iterable[Any], *, allow_extra: bool = False) -> list[Violation]:
        """Every violation of this signature by ``records`` (empty when all are valid)."""
        if not allow_extra and isinstance(records, list) and self._all_plain(records):
            return []
        out: list[Violation] = []
        known = None if allow_extra else {f.name for f in self.inputs}
        for row, rec in enumerate(records):
            if not isinstance(rec, dict):
                out.append(Violation(row, "*", f"expected an object, got {type(rec).__name__}"))
                continue
            for name, nullable, check in self._checkers:
                value = rec.get(name)
                if value is None:
                    if not nullable:
                        what = "is missing" if name not in rec else "is null"
                        out.append(Violation(row, name, f"{what} and the field is not nullable"))
                    continue
                problem = check(value)
                if problem is not None:
                    out.append(Violation(row, name, problem))
            if known is not None and not known.issuperset(rec):
                for extra in sorted(map(str, rec.keys() - known)):
                    out.append(Violation(row, str(extra), "is not an input of this model"))
        return out

    def _all_plain(self, records: list[Any]) -> bool:
        """Whether every record is plainly valid: exactly the inputs, finite numbers in range.

        The request path's fast check for all-numeric signatures; ``False`` only means "look
        closer" (:meth:`validate` then runs every field's checker, which is the authority).
        """
        fast = self._fast
        if fast is None:
            return False
        keys = self._keys
        values = self._values
        if values is not None:  # unbounded floats: numbers only, and a finite sum
            for rec in records:
                if type(rec) is not dict or rec.keys() != keys:
                    return False
                row = values(rec)
                if not _NUMBER_TYPES.issuperset(map(type, row)):
                    return False
                try:
                    total = sum(row)
                except OverflowError:  # an int beyond float's range
                    return False
                if total - total:  # NaN or infinity somewhere (or a sum past float's range)
                    return False
            return True
        for rec in records:
            if type(rec) is not dict or rec.keys() != keys:
                return False
            for name, lo, hi, is_int in fast:
                v = rec[name]
                t = type(v)
                if t is not int and (t is not float or is_int):
                    return False
                if not lo <= v <= hi or v - v:  # NaN fails the range, infinity v - v
                    return False
        return True

    def check(self, records: Iterable[Any], *, allow_extra: bool = False) -> None:
        """Raise :class:`InputValidationError` listing every violation, if any."""
        violations = self.validate(records, allow_extra=allow_extra)
        if violations:
            first = violations[0]
            raise InputValidationError(
                f"{len(violations)} input violation(s); first: row {first.row}, field "
                f"{first.field!r} {first.problem}",
                [v.to_dict() for v in violations],
            )

    def sample_records(self, n: int = 8, *, seed: int = 0) -> list[dict[str, Any]]:
        """Valid records made from the signature's types and constraints (for checks)."""
        rng = random.Random(seed)
        return [{f.name: _sample_value(f, rng, i) for f in self.inputs} for i in range(n)]


def _plain_probabilities(predictions: Sequence[Any]) -> bool:
    """Whether every prediction is a float in [0, 1] (``False``: look closer; NaN fails)."""
    for p in predictions:
        if type(p) is not float or not 0.0 <= p <= 1.0:
            return False
    return True


_MAX_STRING = 65_536


def _make_checker(f: InputField) -> Callable[[Any], str | None]:
    if f.type in ("float", "int"):
        lo, hi, is_int = f.min, f.max, f.type == "int"

        def check_number(v: Any) -> str | None:
            if isinstance(v, bool) or not isinstance(v, int | float):
                return f"expected a number, got {type(v).__name__} {_short(v)}"
            if isinstance(v, float):
                if not math.isfinite(v):
                    return f"not a finite number ({v})"
                if is_int and not v.is_integer():
                    return f"expected an integer, got {v}"
            if lo is not None and v < lo:
                return f"value {v} is below the minimum {lo}"
            if hi is not None and v > hi:
                return f"value {v} is above the maximum {hi}"
            return None

        return check_number
    if f.type == "bool":
        return lambda v: None if isinstance(v, bool) else f"expected true or false, got {_short(v)}"
    if f.type == "category":
        allowed = frozenset(f.categories or ())

        def check_category(v: Any) -> str | None:
            if not isinstance(v, str):
                return f"expected one of the categories, got {type(v).__name__} {_short(v)}"
            if v not in allowed:
                return f"{_short(v)} is not one of the categories {sorted(allowed)[:10]}"
            return None

        return check_category
    if f.type == "timestamp":

        def check_timestamp(v: Any) -> str | None:
            if isinstance(v, bool):
                return "expected an ISO-8601 timestamp or epoch seconds, got a bool"
            if isinstance(v, int | float):
                return None if math.isfinite(v) else f"not a finite timestamp ({v})"
            if isinstance(v, str) and len(v) <= 64:
                try:
                    datetime.fromisoformat(v)
                except ValueError:
                    return f"{_short(v)} is not an ISO-8601 timestamp"
                return None
            return f"expected an ISO-8601 timestamp or epoch seconds, got {_short(v)}"

        return check_timestamp

    def check_string(v: Any) -> str | None:
        if not isinstance(v, str):
            return f"expected a string, got {type(v).__name__} {_short(v)}"
        if len(v) > _MAX_STRING:
            return f"string of {len(v)} characters is longer than the limit {_MAX_STRING}"
        return None

    return check_string


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _sample_value(f: InputField, rng: random.Random, i: int) -> Any:
    if f.type in ("float", "int"):
        lo = f.min if f.min is not None else (0.0 if f.max is None else min(0.0, f.max - 10))
        hi = f.max if f.max is not None else lo + 10.0
        v = rng.uniform(lo, hi)
        if f.type == "float":
            return v
        return min(max(round(v), math.ceil(lo)), math.floor(hi))
    if f.type == "bool":
        return i % 2 == 0
    if f.type == "category":
        cats = f.categories or ("",)
        return cats[i % len(cats)]
    if f.type == "timestamp":
        return (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i)).isoformat()
    return f"sample-{i}"
