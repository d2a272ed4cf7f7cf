"""Raw ASGI helpers: read a bounded body, parse JSON, send JSON responses."""

from __future__ import annotations

import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

__all__ = [
    "BodyTooLarge",
    "Receive",
    "Scope",
    "Send",
    "UnsupportedEncoding",
    "decode_body",
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


class UnsupportedEncoding(Exception):
    """The request body has a ``Content-Encoding`` other than gzip or deflate."""


_ZLIB_ENCODINGS = frozenset({b"gzip", b"x-gzip", b"deflate"})


def decode_body(body: bytes, encoding: bytes, limit: int) -> bytes:
    """``body`` decompressed per its ``Content-Encoding`` (gzip or deflate, at most ``limit``
    bytes once decompressed: a small bomb cannot grow past it).

    Raises:
        UnsupportedEncoding: another encoding (``br``, ``zstd``, several at once, ...).
        BodyTooLarge: the decompressed body is larger than ``limit``.
        ValueError: the body is not valid data of that encoding.
    """
    name = encoding.strip().lower()
    if name == b"identity":
        return body
    if name not in _ZLIB_ENCODINGS:
        raise UnsupportedEncoding(name.decode("latin-1"))
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
    try:
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"the body is not valid {name.decode()} data ({exc})") from None
    if len(out) > limit:
        raise BodyTooLarge
    if not inflater.eof:
        raise ValueError(f"the {name.decode()} data of the body is cut short")
    return out


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
