"""Fixtures: an in-memory deployment source and a real uvicorn server on a free port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
import uvicorn
from gateway_support import MemorySource

from flotilla.gateway import Gateway


@pytest.fixture
def source() -> MemorySource:
    return MemorySource()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[Callable[[Gateway], httpx.Client]]:
    """Factory: run an app with uvicorn on a free 127.0.0.1 port; returns an httpx client."""
    running: list[tuple[uvicorn.Server, threading.Thread, httpx.Client]] = []

    def start(app: Gateway) -> httpx.Client:
        port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="error", lifespan="on", loop="asyncio"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        running.append((server, thread, client))
        return client

    yield start
    for server, thread, client in running:
        client.close()
        server.should_exit = True
        thread.join(timeout=10)
