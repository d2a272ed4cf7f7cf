"""The ``static`` flavor: the same answer for every record; the last step of every chain.

The artifact is a JSON file ``{"value": X}`` (every record gets ``X``) or ``{"items": [...]}``
(every record gets the list). Without a file, the same mapping comes from ``spec.params`` or
:meth:`StaticRuntime.from_value`. Once loaded, ``predict`` cannot fail: it ignores the
records' contents and returns a fresh list of the right length.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import orjson

from flotilla.errors import FlavorError
from flotilla.runtimes.base import BaseRuntime, RuntimeMetadata, RuntimeSpec
from flotilla.types import Record

__all__ = ["StaticRuntime", "parse_static"]

_IMMUTABLE = (str, int, float, bool, type(None))


def parse_static(data: Any, *, where: str) -> tuple[str, Any]:
    """Validate ``{"value": x}`` or ``{"items": [...]}``; returns ``(key, payload)``."""
    if (
        not isinstance(data, Mapping)
        or len(data) != 1
        or next(iter(data))
        not in (
            "value",
            "items",
        )
    ):
        keys = sorted(data) if isinstance(data, Mapping) else type(data).__name__
        raise FlavorError(
            f"The static answer in {where} must be a mapping with exactly one key, 'value' "
            f"(one answer) or 'items' (a list). Got {keys!r} instead, e.g. use "
            '{"value": 0.5} or {"items": ["a", "b"]}.'
        )
    key, payload = next(iter(data.items()))
    if key == "items" and not isinstance(payload, list):
        raise FlavorError(
            f"The 'items' of the static answer in {where} must be a list. "
            f"Got {type(payload).__name__} instead."
        )
    try:
        orjson.dumps(payload)
    except TypeError as exc:
        raise FlavorError(f"The static answer in {where} must be JSON-serialisable: {exc}") from exc
    return str(key), payload


class StaticRuntime(BaseRuntime):
    """Answer every record with the same value or list.

    Example:
        >>> rt = StaticRuntime.from_value({"items": [1, 2, 3]})
        >>> rt.predict([{}, {"x": 1}])
        [[1, 2, 3], [1, 2, 3]]
    """

    flavor = "static"

    def __init__(self, spec: RuntimeSpec) -> None:
        super().__init__(spec)
        self._key = "value"
        self._payload: Any = None
        self._shallow = True

    @classmethod
    def from_value(cls, value: Mapping[str, Any], *, label: str = "") -> StaticRuntime:
        """A loaded runtime answering ``{"value": x}`` or ``{"items": [...]}``.

        Raises:
            FlavorError: the mapping is not one of those two forms.
        """
        key, payload = parse_static(value, where=label or "StaticRuntime.from_value")
        spec = RuntimeSpec(
            flavor="static", path=None, signature=None, params={key: payload}, label=label
        )
        runtime = cls(spec)
        runtime.load()
        return runtime

    def _load(self) -> None:
        if self.spec.path is None:
            data: Any = self.spec.params
            where = f"the params of {self.spec.name}"
        else:
            path = self._artifact()
            where = f"the static artifact of {self.spec.name} ({path.name})"
            try:
                data = orjson.loads(path.read_bytes())
            except orjson.JSONDecodeError as exc:
                raise FlavorError(
                    f"{where[0].upper()}{where[1:]} is not valid JSON: {exc}"
                ) from exc
        self._key, self._payload = parse_static(data, where=where)
        items = self._payload if self._key == "items" else [self._payload]
        self._shallow = all(isinstance(v, _IMMUTABLE) for v in items)

    def predict(self, records: list[Record]) -> list[Any]:
        """The same answer for each record (a fresh copy per record for lists and dicts)."""
        self._require_loaded()
        payload = self._payload
        if self._shallow:
            if self._key == "value":
                return [payload] * len(records)
            return [list(payload) for _ in records]
        return [copy.deepcopy(payload) for _ in records]

    def metadata(self) -> RuntimeMetadata:
        """Flavor and whether it answers a value or items."""
        kind = "items" if self._key == "items" else None
        return RuntimeMetadata(
            flavor=self.flavor,
            inputs=None,
            output_kind=kind,
            extra={"answer": self._key},
        )
