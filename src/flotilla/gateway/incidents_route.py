"""``GET /v1/incidents``: the incidents as JSON, for dashboards and on-call tools.

Two ways to mount it:

- in the raw ASGI gateway router: ``if method == "GET" and path == INCIDENTS_PATH:
  await incidents_endpoint(IncidentStore(registry))(scope, receive, send); return``;
- in a Starlette app: ``Route(INCIDENTS_PATH, incidents_starlette_endpoint(store))``.

Query parameters: ``state`` (``open``, ``acknowledged`` or ``resolved``; default: every
unresolved incident) and ``all=1`` (include resolved ones). The database read runs in a worker
thread so the event loop is never blocked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

import anyio.to_thread

from flotilla.errors import FlotillaError
from flotilla.gateway._http import Receive, Scope, Send, dumps, send_json
from flotilla.monitoring.incidents import IncidentStore

__all__ = [
    "INCIDENTS_PATH",
    "incidents_endpoint",
    "incidents_payload",
    "incidents_starlette_endpoint",
]

INCIDENTS_PATH = "/v1/incidents"

ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def incidents_payload(store: IncidentStore, query_string: bytes | str) -> tuple[int, Any]:
    """The (status, JSON body) of ``GET /v1/incidents?<query_string>``."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    query = parse_qs(text)
    state = query.get("state", [None])[-1] or None
    include_all = query.get("all", ["0"])[-1].lower() in {"1", "true", "yes"}
    try:
        found = store.list(state=state, include_resolved=include_all)
    except FlotillaError as exc:
        return exc.http_status, {"error": str(exc)}
    return 200, [incident.to_dict() for incident in found]


def incidents_endpoint(store: IncidentStore) -> ASGIApp:
    """A raw ASGI app answering ``GET /v1/incidents`` from ``store`` (``HEAD`` too: the
    server leaves the body out; 405 for other methods)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("method", "GET") not in ("GET", "HEAD"):
            await send_json(send, 405, {"error": "Use GET on /v1/incidents."})
            return
        status, body = await anyio.to_thread.run_sync(
            incidents_payload, store, scope.get("query_string", b"")
        )
        await send_json(send, status, body)

    return app


def incidents_starlette_endpoint(store: IncidentStore) -> Callable[[Any], Awaitable[Any]]:
    """A Starlette endpoint (``Route(INCIDENTS_PATH, endpoint)``) answering from ``store``."""
    from starlette.requests import Request
    from starlette.responses import Response

    async def endpoint(request: Request) -> Response:
        status, body = await anyio.to_thread.run_sync(incidents_payload, store, request.url.query)
        return Response(dumps(body), status_code=status, media_type="application/json")

    return endpoint
