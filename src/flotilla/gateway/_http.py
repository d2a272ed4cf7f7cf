"""Raw ASGI helpers: read a bounded body, parse JSON, send JSON responses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = [
    "BodyTooLarge",
    "Receive",
    "Scope",
    "Send",
    "header",
    "parse_json",
    "read_body",
    "send_bytes",
    "send_json",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = b"application/json"
_DUMP_OPTIONS = orjson.OPT_SERIALIZE_NUMPY


class BodyTooLarge(Exception):
    """The request body is larger than the limit."""


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of header ``name`` (lower-case bytes), or ``None``."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The whole request body; raises :class:`BodyTooLarge` past ``limit`` bytes."""
    length = header(scope, b"content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise BodyTooLarge
    message = await receive()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge
        return bytes(body)
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> Any:
    """Parse JSON; ``NaN``/``Infinity`` literals are accepted (and caught by validation).

    Raises:
        ValueError: the body is not JSON, with the position of the problem.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:  # the slow path only for bodies orjson refuses (NaN, Infinity literals)
            return json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ValueError(str(exc)) from None


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)


def dumps(data: Any) -> bytes:
    """Serialise with orjson (numpy values and odd objects are converted, never fail)."""
    return orjson.dumps(data, default=_default, option=_DUMP_OPTIONS)


async def send_bytes(
    send: Send,
    status: int,
    body: bytes,
    *,
    content_type: bytes = _JSON,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete response."""
    raw = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    if headers:
        raw.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send, status: int, data: Any, *, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send ``data`` as a JSON response."""
    await send_bytes(send, status, dumps(data), headers=headers)
