"""``POST /v1/models/{model}/outcomes``: delayed ground truth, joined later to predictions.

Body: ``{"outcomes": [{"request_id": "...", "index": 0, "label": 1, "observed_at": "..."},
{"id": "u42", "label": 0, "observed_at": "..."}]}``. Answer: ``{"accepted": N, "rejected":
[{"index", "error"}]}`` with 200 when at least one outcome was accepted (or none was sent),
422 when every outcome was rejected, 404 for an unknown model. Validation and the write
(one Parquet segment per date, atomic) run in a worker thread, never on the event loop.
"""

from __future__ import annotations

from typing import Any

import anyio.to_thread

from flotilla.errors import FlotillaError
from flotilla.gateway._http import Receive, Scope, Send, send_json
from flotilla.gateway._v1 import RequestError, bad_request, read_object
from flotilla.records import OutcomeStore

__all__ = ["OUTCOMES_SUFFIX", "post_outcomes"]

OUTCOMES_SUFFIX = "/outcomes"
_EXAMPLE = '{"outcomes": [{"request_id": "...", "index": 0, "label": 1}]}'


def _ingest(store: OutcomeStore, model: str, outcomes: list[Any]) -> tuple[int, dict[str, Any]]:
    try:
        report = store.ingest(model, outcomes)
    except FlotillaError as exc:
        return exc.http_status, {"error": str(exc)}
    body = {"accepted": report.accepted, "rejected": report.rejected}
    status = 422 if report.rejected and not report.accepted else 200
    return status, body


async def post_outcomes(
    store: OutcomeStore, scope: Scope, receive: Receive, send: Send, model: str, limit: int
) -> None:
    """Answer one ``POST /v1/models/{model}/outcomes``."""
    try:
        data = await read_object(scope, receive, limit, _EXAMPLE)
        outcomes = data.get("outcomes")
        if not isinstance(outcomes, list):
            raise bad_request(
                f"The 'outcomes' of the request must be a list, as in {_EXAMPLE}. "
                f"Got {type(outcomes).__name__ if outcomes is not None else 'nothing'} instead."
            )
    except RequestError as exc:
        await send_json(send, exc.status, exc.body)
        return
    status, body = await anyio.to_thread.run_sync(_ingest, store, model, outcomes)
    await send_json(send, status, body)
