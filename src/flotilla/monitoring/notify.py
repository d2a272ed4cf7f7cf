"""Notification sinks: the log, a JSON-lines file, and a JSON webhook with bounded retries.

Every sink has one method, ``send(notification, *, deadline=None) -> bool``; it never raises
for delivery problems (a webhook that is down is retried with exponential backoff, then the
failure is logged and ``False`` returned). :class:`Notifier` fans one batch out to every sink
within a total time budget, so ``flotilla monitor run`` always finishes. Sends happen in the
monitor (cron or the background :class:`~flotilla.monitoring.runner.MonitorLoop`), never on
the request path.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import orjson

from flotilla.errors import ConfigError

__all__ = [
    "FileSink",
    "LogSink",
    "Notification",
    "Notifier",
    "Sink",
    "WebhookSink",
    "sinks_from_config",
]

_log = logging.getLogger("flotilla.alerts")
_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


@dataclass(frozen=True)
class Notification:
    """One message for people: an alert firing or resolving, or an incident event.

    Attributes:
        kind: ``alert.firing``, ``alert.reminder``, ``alert.resolved``, ``incident.opened``,
            ``incident.renotify``, ``incident.acknowledged`` or ``incident.resolved``.
        group: the group key (``model=churn`` or ``upstream=feed``); one notification per
            group lists all of its models.
    """

    kind: str
    rule: str
    severity: str
    group: str
    models: tuple[str, ...]
    message: str
    at: datetime
    owner: str = ""
    incident_id: int | None = None
    values: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (what the file and webhook sinks write)."""
        data = asdict(self)
        data["models"] = list(self.models)
        data["at"] = self.at.isoformat()
        return data


class Sink(Protocol):
    """Where notifications go."""

    def send(self, notification: Notification, *, deadline: float | None = None) -> bool:
        """Deliver one notification; ``False`` when it could not be delivered."""
        ...


class LogSink:
    """Write each notification to the ``flotilla.alerts`` logger (level from severity)."""

    def __init__(self, *, logger: logging.Logger | None = None) -> None:
        self.logger = logger

    def send(self, notification: Notification, *, deadline: float | None = None) -> bool:
        """Log one line; always succeeds."""
        logger = self.logger or _log
        level = _LEVELS.get(notification.severity, logging.WARNING)
        logger.log(
            level,
            "%s %s [%s] %s: %s",
            notification.kind,
            notification.rule,
            notification.severity,
            notification.group,
            notification.message,
        )
        return True


class FileSink:
    """Append each notification as one JSON line to ``path``.

    Each line is written with a single ``write`` on a file opened with ``O_APPEND`` (under a
    process-local lock), so concurrent writers never interleave partial lines.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, notification: Notification, *, deadline: float | None = None) -> bool:
        """Append one line; logs and returns ``False`` when the file cannot be written."""
        line = orjson.dumps(notification.to_dict()) + b"\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._lock:
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    os.write(fd, line)
                finally:
                    os.close(fd)
        except OSError as exc:
            _log.error("Cannot append the notification to %s: %s", self.path, exc)
            return False
        return True


class WebhookSink:
    """POST each notification as JSON to ``url``, retrying with exponential backoff.

    Args:
        url: an ``http://`` or ``https://`` URL.
        retries: extra attempts after the first (so ``retries=3`` tries 4 times at most).
        backoff_s: the first wait; each next wait doubles, capped at ``max_backoff_s``.
        timeout_s: the time limit of one attempt.
        headers: extra request headers (e.g. an authorization token).
        sleep: how to wait (inject a fake in tests).

    A response with status 2xx is a success; anything else (including 5xx, refused
    connections and timeouts) is retried. After the last attempt, or when the deadline
    passes, the failure is logged and ``send`` returns ``False``.
    """

    def __init__(
        self,
        url: str,
        *,
        retries: int = 3,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        timeout_s: float = 5.0,
        headers: Mapping[str, str] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})
        self.sleep = sleep

    def _check(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(
                f"The 'url' of a webhook must start with http:// or https://. Got {self.url!r}."
            )
        if self.retries < 0 or self.backoff_s < 0 or self.timeout_s <= 0:
            raise ConfigError(
                "The 'retries' and 'backoff_s' of a webhook must be >= 0 and 'timeout_s' > 0. "
                f"Got {self.retries}, {self.backoff_s}, {self.timeout_s} instead."
            )

    def _post(self, body: bytes, timeout: float) -> None:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", **self.headers},
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()

    def send(self, notification: Notification, *, deadline: float | None = None) -> bool:
        """POST with retries; ``deadline`` is a ``time.monotonic()`` value not to pass."""
        self._check()
        body = orjson.dumps(notification.to_dict())
        wait = self.backoff_s
        problem = "no attempt was made"
        for attempt in range(self.retries + 1):
            timeout = self.timeout_s
            if deadline is not None:
                timeout = min(timeout, deadline - time.monotonic())
                if timeout <= 0:
                    problem = f"{problem}; the time budget ran out"
                    break
            try:
                self._post(body, timeout)
                return True
            except urllib.error.HTTPError as exc:
                problem = f"HTTP {exc.code}"
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                problem = f"{type(exc).__name__}: {reason}"
            if attempt == self.retries:
                break
            if deadline is not None and time.monotonic() + wait >= deadline:
                problem = f"{problem}; the time budget ran out"
                break
            self.sleep(wait)
            wait = min(wait * 2, self.max_backoff_s)
        _log.error(
            "The webhook %s did not take the %s notification of rule %r after %d attempt(s): %s",
            self.url,
            notification.kind,
            notification.rule,
            attempt + 1,
            problem,
        )
        return False


class Notifier:
    """Send notifications to every sink, within a total time budget.

    Args:
        sinks: where to send (default: the log only).
        budget_s: the total time one :meth:`deliver` may take; webhooks give up when it ends.
    """

    def __init__(self, sinks: Sequence[Sink] | None = None, *, budget_s: float = 30.0) -> None:
        self.sinks = list(sinks) if sinks is not None else [LogSink()]
        self.budget_s = budget_s

    def deliver(self, notifications: Sequence[Notification]) -> int:
        """Send each notification to each sink; returns how many sends failed."""
        deadline = time.monotonic() + self.budget_s
        failed = 0
        for note in notifications:
            for sink in self.sinks:
                try:
                    ok = sink.send(note, deadline=deadline)
                except Exception:  # a broken custom sink must not stop the others
                    _log.exception("The notification sink %r failed", sink)
                    ok = False
                failed += 0 if ok else 1
        return failed


def sinks_from_config(config: Mapping[str, Any], *, base: Path | None = None) -> list[Sink]:
    """Build sinks from a rules file's ``notify:`` section.

    ``{"log": true, "file": "alerts.jsonl", "webhook": {"url": ..., "retries": 3,
    "backoff_s": 0.5, "timeout_s": 5, "headers": {...}}}``; ``webhook`` may also be a URL
    string. A relative ``file`` is taken relative to ``base``. The log sink is on unless
    ``log: false``.

    Raises:
        ConfigError: an unknown key or a malformed webhook.
    """
    unknown = sorted(set(config) - {"log", "file", "webhook"})
    if unknown:
        raise ConfigError(
            f"The 'notify' section knows 'log', 'file' and 'webhook'. Got unknown keys {unknown}."
        )
    sinks: list[Sink] = []
    if config.get("log", True):
        sinks.append(LogSink())
    file = config.get("file")
    if file:
        path = Path(str(file))
        sinks.append(FileSink(path if path.is_absolute() or base is None else base / path))
    hook = config.get("webhook")
    if isinstance(hook, str):
        hook = {"url": hook}
    if hook:
        if not isinstance(hook, Mapping) or not isinstance(hook.get("url"), str):
            raise ConfigError(f"The 'webhook' of 'notify' needs a 'url'. Got {hook!r} instead.")
        allowed = {"url", "retries", "backoff_s", "max_backoff_s", "timeout_s", "headers"}
        extra = sorted(set(hook) - allowed)
        if extra:
            raise ConfigError(f"The 'webhook' of 'notify' has unknown keys {extra}.")
        sink = WebhookSink(**dict(hook))
        sink._check()
        sinks.append(sink)
    return sinks
