"""The bad input of issue 3, through real HTTP: clear errors, or a degraded answer."""

from __future__ import annotations

import gzip
import json
import zlib
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from gateway_support import Behaving, MemorySource

from flotilla.gateway import Gateway, create_app

ROW = {"x": 3.0, "plan": "pro"}


@pytest.fixture
def client(source: MemorySource, serve: Callable[[Gateway], httpx.Client]) -> httpx.Client:
    source.add("recs@1", Behaving(0.9))
    source.add("recs-lite@1", Behaving(0.4))
    source.deploy("recs", "recs@1", {"static": {"value": 0.0}})
    source.deploy("recs-lite", "recs-lite@1", {"static": {"value": 0.0}})
    return serve(create_app(source, max_body_bytes=10 * 1024 * 1024))


def post(client: httpx.Client, body: bytes, model: str = "recs") -> httpx.Response:
    return client.post(
        f"/v1/models/{model}:predict",
        content=body,
        headers={"content-type": "application/json"},
    )


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'"instances"', "must be a JSON object"),
        (b"{}", "Got nothing instead"),
        (b'{"instances": {"x": 1}}', "non-empty list"),
        (b'{"instances": []}', "non-empty list"),
        (b'{"instances": [{"x": 1}], "ids": [1, 2]}', "one id per instance"),
    ],
    ids=["malformed", "array", "string", "missing", "not-a-list", "empty", "ids-misaligned"],
)
def test_malformed_requests_are_400(client: httpx.Client, body: bytes, needle: str) -> None:
    r = post(client, body)
    assert r.status_code == 400
    assert needle in r.json()["error"]


@pytest.mark.parametrize(
    "compress",
    [
        lambda raw: ("gzip", gzip.compress(raw)),
        lambda raw: ("deflate", zlib.compress(raw)),
        lambda raw: ("GZip", gzip.compress(raw)),
    ],
    ids=["gzip", "deflate", "spelled-loosely"],
)
def test_compressed_bodies_are_read(
    client: httpx.Client, compress: Callable[[bytes], tuple[str, bytes]]
) -> None:
    raw = json.dumps({"instances": [ROW, ROW]}).encode()
    encoding, body = compress(raw)
    r = client.post(
        "/v1/models/recs:predict",
        content=body,
        headers={"content-type": "application/json", "content-encoding": encoding},
    )
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == [0.9, 0.9]


def test_bad_compressed_bodies_say_what_is_wrong(client: httpx.Client) -> None:
    def send(body: bytes, encoding: str) -> httpx.Response:
        headers = {"content-type": "application/json", "content-encoding": encoding}
        return client.post("/v1/models/recs:predict", content=body, headers=headers)

    raw = json.dumps({"instances": [ROW]}).encode()
    brotli = send(b"\x8b\x02\x80" + raw, "br")
    assert brotli.status_code == 400
    assert "'br' is not supported" in brotli.json()["error"] and "gzip" in brotli.json()["error"]
    corrupt = send(b"\x1f\x8b" + b"\x00" * 30, "gzip")
    assert corrupt.status_code == 400 and "not valid gzip data" in corrupt.json()["error"]
    cut = send(gzip.compress(raw)[:-12], "gzip")
    assert cut.status_code == 400 and "cut short" in cut.json()["error"]
    # 11 MB of spaces compress to about 11 KB: a bomb stops at the limit (10 MiB here)
    bomb = send(gzip.compress(raw[:-1] + b" " * 11_000_000 + b"}"), "gzip")
    assert bomb.status_code == 413 and "once decompressed" in bomb.json()["error"]


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({**ROW, "extra": 1}, "extra"),
        ({"plan": "pro"}, "x"),
        ({"x": "three", "plan": "pro"}, "x"),
        ({"x": 1.0, "plan": "x" * 1_000_000}, "plan"),
    ],
    ids=["extra", "missing", "wrong-type", "1MB-string"],
)
def test_bad_rows_are_answered_by_the_chain(
    client: httpx.Client, row: dict[str, Any], field: str
) -> None:
    r = client.post("/v1/models/recs:predict", json={"instances": [ROW, row]})
    body = r.json()
    assert r.status_code == 200
    assert body["degraded"] is True
    assert body["served_by"]["role"] == "static"
    assert body["reasons"][0]["reason"] == "invalid_input"
    assert f"row 1 field {field!r}" in body["reasons"][0]["detail"]
    assert len(r.content) < 10_000  # the 1 MB value is not echoed back


def test_nan_field_is_invalid_input_not_a_parse_error(client: httpx.Client) -> None:
    r = post(client, b'{"instances": [{"x": NaN, "plan": "pro"}]}')
    assert r.status_code == 200
    reason = r.json()["reasons"][0]
    assert reason["reason"] == "invalid_input"
    assert "not a finite number" in reason["detail"]


def test_a_20_mb_body_is_413(client: httpx.Client) -> None:
    big = b'{"instances": [{"x": "' + b"a" * (20 * 1024 * 1024) + b'"}]}'
    r = post(client, big)
    assert r.status_code == 413
    assert "limit" in r.json()["error"]


def test_unknown_model_is_404_with_the_closest_names(client: httpx.Client) -> None:
    r = client.post("/v1/models/recz:predict", json={"instances": [ROW]})
    assert r.status_code == 404
    body = r.json()
    assert "recs" in body["suggestions"]
    assert "'recz'" in body["error"] and "Closest: recs" in body["error"]


@pytest.mark.parametrize(
    "path", ["/healthz", "/readyz", "/v1/models", "/v1/models/recs", "/metrics"]
)
def test_head_answers_like_get_without_a_body(client: httpx.Client, path: str) -> None:
    # uptime checkers and some load balancers probe with HEAD
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.headers["content-type"] == got.headers["content-type"]
    assert head.content == b""


def test_head_of_an_unknown_model_is_404(client: httpx.Client) -> None:
    assert client.head("/v1/models/recz").status_code == 404


def test_routes_and_methods(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["ready"] is True
    assert client.get("/v1/models/recs:predict").status_code == 405
    assert client.get("/nowhere").status_code == 404
    described = client.get("/v1/models/recs").json()
    assert described["live"] == "recs@1"
    assert [s["role"] for s in described["chain"]] == ["live", "static"]
    assert described["chain"][0]["breaker"]["state"] == "closed"
