"""Run one call on a held connection and record it: the single path every generation takes.

The connector (and anything else that holds a `Connection`) hands over a validated request;
these functions call the adapter, release the connection when the call ends, and record the
call's own usage from its `Response` — a whole call when it returns, a stream when it ends,
fails or is left early. A call that fails before any reply arrives is counted as a failure
and charges no tokens.
"""

from __future__ import annotations

from collections.abc import Callable

from rlm_code.core.exceptions import ModelError
from rlm_code.models.connection import Connection
from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
from rlm_code.models.types import ChatRequest, Response
from rlm_code.models.usage import UsageTracker, monotonic_ms


def _record(
    tracker: UsageTracker, conn: Connection, response: Response, started: float, streamed: bool
) -> None:
    tracker.record(
        conn.spec.provider_id,
        conn.model,
        response.usage,
        streamed=streamed,
        interrupted=not response.complete,
        latency_ms=monotonic_ms() - started,
        finish_reason=response.finish_reason,
    )


def complete(conn: Connection, request: ChatRequest, tracker: UsageTracker) -> Response:
    """The adapter's whole reply; the connection is released whatever happens."""
    started = monotonic_ms()
    try:
        response = conn.adapter.complete(request)
    except ModelError:
        tracker.record_failure()
        raise
    finally:
        conn.release()
    _record(tracker, conn, response, started, streamed=False)
    return response


async def acomplete(conn: Connection, request: ChatRequest, tracker: UsageTracker) -> Response:
    """Async twin of `complete`."""
    started = monotonic_ms()
    try:
        response = await conn.adapter.acomplete(request)
    except ModelError:
        tracker.record_failure()
        raise
    finally:
        conn.release()
    _record(tracker, conn, response, started, streamed=False)
    return response


def _on_done(
    conn: Connection, tracker: UsageTracker
) -> Callable[[Response, ModelError | None], None]:
    started = monotonic_ms()

    def done(response: Response, error: ModelError | None) -> None:
        conn.release()
        if error is not None and not response.text and not response.usage.known:
            tracker.record_failure()
        else:
            _record(tracker, conn, response, started, streamed=True)

    return done


def stream(conn: Connection, request: ChatRequest, tracker: UsageTracker) -> ResponseStream:
    """The adapter's event stream as a `ResponseStream` that releases and records when it ends."""
    done = _on_done(conn, tracker)
    return ResponseStream(conn.adapter.stream(request), conn.spec.provider_id, conn.model, done)


def astream(conn: Connection, request: ChatRequest, tracker: UsageTracker) -> AsyncResponseStream:
    """Async twin of `stream`."""
    done = _on_done(conn, tracker)
    events = conn.adapter.astream(request)
    return AsyncResponseStream(events, conn.spec.provider_id, conn.model, done)
