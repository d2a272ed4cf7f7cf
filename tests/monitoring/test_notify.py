"""Notification sinks: log, JSON-lines file, and a webhook against a real local HTTP server."""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from flotilla.errors import ConfigError
from flotilla.monitoring.notify import (
    FileSink,
    LogSink,
    Notification,
    Notifier,
    WebhookSink,
    sinks_from_config,
)


def _note(i: int = 0) -> Notification:
    return Notification(
        kind="alert.firing",
        rule="fallback-streak",
        severity="critical",
        group="model=churn",
        models=("churn",),
        message=f"FIRING {i}",
        at=datetime(2026, 3, 5, tzinfo=UTC),
        owner="ana",
        values={"churn": 0.8},
    )


class _Hook:
    """A local webhook receiver that answers 503 to the first ``failures`` calls."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0
        self.bodies: list[dict[str, object]] = []


@pytest.fixture
def hook_server() -> Iterator[tuple[str, _Hook]]:
    hook = _Hook(failures=0)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.calls += 1
            if hook.calls <= hook.failures:
                self.send_response(503)
                self.end_headers()
                return
            hook.bodies.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", hook
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_webhook_retries_with_exponential_backoff(hook_server: tuple[str, _Hook]) -> None:
    url, hook = hook_server
    hook.failures = 2
    waits: list[float] = []
    sink = WebhookSink(url, retries=3, backoff_s=0.01, sleep=waits.append)
    assert sink.send(_note()) is True
    assert hook.calls == 3
    assert waits == [0.01, 0.02]
    assert hook.bodies[0]["models"] == ["churn"] and hook.bodies[0]["kind"] == "alert.firing"


def test_webhook_gives_up_after_bounded_retries_and_logs(
    hook_server: tuple[str, _Hook], caplog: pytest.LogCaptureFixture
) -> None:
    url, hook = hook_server
    hook.failures = 100
    waits: list[float] = []
    sink = WebhookSink(url, retries=4, backoff_s=1.0, max_backoff_s=3.0, sleep=waits.append)
    with caplog.at_level(logging.ERROR, logger="flotilla.alerts"):
        assert sink.send(_note()) is False
    assert hook.calls == 5
    assert waits == [1.0, 2.0, 3.0, 3.0]
    assert "HTTP 503" in caplog.text and "5 attempt(s)" in caplog.text


def test_webhook_on_a_closed_port_fails_quickly_and_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    waits: list[float] = []
    sink = WebhookSink(
        f"http://127.0.0.1:{_closed_port()}/", retries=2, backoff_s=0.01, sleep=waits.append
    )
    with caplog.at_level(logging.ERROR, logger="flotilla.alerts"):
        assert sink.send(_note()) is False
    assert len(waits) == 2
    assert "did not take" in caplog.text


def test_notifier_budget_stops_retrying(caplog: pytest.LogCaptureFixture) -> None:
    sink = WebhookSink(f"http://127.0.0.1:{_closed_port()}/", retries=50, backoff_s=5.0)
    with caplog.at_level(logging.ERROR, logger="flotilla.alerts"):
        failed = Notifier([sink], budget_s=0.5).deliver([_note(1), _note(2)])
    assert failed == 2
    assert "time budget ran out" in caplog.text


def test_file_sink_appends_json_lines_from_many_threads(tmp_path: Path) -> None:
    path = tmp_path / "out" / "alerts.jsonl"
    sink = FileSink(path)
    threads = [
        threading.Thread(target=lambda i=i: [sink.send(_note(i * 10 + j)) for j in range(10)])
        for i in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 40
    messages = sorted(json.loads(line)["message"] for line in lines)
    assert messages == sorted(f"FIRING {i}" for i in range(40))


def test_file_sink_reports_an_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert FileSink(blocker / "alerts.jsonl").send(_note()) is False


def test_log_sink_uses_the_severity(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="flotilla.alerts"):
        LogSink().send(_note())
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert "fallback-streak" in record.getMessage()


class _Broken:
    def send(self, notification: Notification, *, deadline: float | None = None) -> bool:
        raise RuntimeError("boom")


def test_a_broken_sink_does_not_stop_the_others(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    assert Notifier([_Broken(), FileSink(path)]).deliver([_note()]) == 1
    assert len(path.read_text().splitlines()) == 1


def test_sinks_from_config(tmp_path: Path) -> None:
    sinks = sinks_from_config(
        {"file": "alerts.jsonl", "webhook": "http://127.0.0.1:9/x"}, base=tmp_path
    )
    assert [type(s).__name__ for s in sinks] == ["LogSink", "FileSink", "WebhookSink"]
    assert isinstance(sinks[1], FileSink) and sinks[1].path == tmp_path / "alerts.jsonl"
    assert sinks_from_config({"log": False}) == []
    with pytest.raises(ConfigError, match="unknown keys"):
        sinks_from_config({"email": "x"})
    with pytest.raises(ConfigError, match="http://"):
        sinks_from_config({"webhook": {"url": "ftp://x"}})
    with pytest.raises(ConfigError, match="unknown keys"):
        sinks_from_config({"webhook": {"url": "http://x", "verb": "PUT"}})
