"""``GET /v1/incidents`` as a raw ASGI endpoint and as a Starlette route."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from flotilla.gateway.incidents_route import (
    INCIDENTS_PATH,
    incidents_endpoint,
    incidents_starlette_endpoint,
)
from flotilla.monitoring.incidents import IncidentStore
from flotilla.registry import Registry
from flotilla.settings import Settings


class Client:
    """A synchronous facade over ``httpx.AsyncClient`` on an ASGI app."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)


@pytest.fixture
def store(make_settings: Callable[..., Settings]) -> Iterator[IncidentStore]:
    with Registry.open(make_settings()) as reg:
        incidents = IncidentStore(reg)
        for name in ("churn", "recs"):
            incidents.open(
                rule="fallback-streak",
                group=f"model={name}",
                models=[name],
                severity="critical",
                owner="ana",
                title=f"fallback on {name}",
                renotify=timedelta(hours=6),
            )
        incidents.ack(1, note="on it", actor="ana")
        yield incidents


def test_raw_asgi_endpoint(store: IncidentStore) -> None:
    client = Client(incidents_endpoint(store))
    everything = client.get(INCIDENTS_PATH)
    assert everything.status_code == 200
    assert [(i["id"], i["state"]) for i in everything.json()] == [(2, "open"), (1, "acknowledged")]
    open_only = client.get(INCIDENTS_PATH, params={"state": "open"})
    assert [i["models"] for i in open_only.json()] == [["recs"]]
    store.resolve(2, note="fixed", actor="ana")
    assert [i["id"] for i in client.get(INCIDENTS_PATH).json()] == [1]
    assert [i["id"] for i in client.get(INCIDENTS_PATH, params={"all": "1"}).json()] == [2, 1]
    bad = client.get(INCIDENTS_PATH, params={"state": "closed"})
    assert bad.status_code == 400 and "open, acknowledged, resolved" in bad.json()["error"]
    assert client.post(INCIDENTS_PATH).status_code == 405
    assert client.request("HEAD", INCIDENTS_PATH).status_code == 200  # the server drops the body


def test_starlette_route(store: IncidentStore) -> None:
    app = Starlette(routes=[Route(INCIDENTS_PATH, incidents_starlette_endpoint(store))])
    client = Client(app)
    found = client.get(INCIDENTS_PATH, params={"state": "acknowledged"})
    assert found.status_code == 200
    [incident] = found.json()
    assert incident["ack_note"] == "on it" and incident["owner"] == "ana"
