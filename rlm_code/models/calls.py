"""Run one call on a held connection and count it: the single path every generation takes.

The connector (and anything else that holds a `Connection`) hands over a validated request;
these functions admit it (`Metering.admit`: the budgets in effect may refuse it or cap it,
before any I/O), call the adapter, release the connection when the call ends, and count the
call once from its own `Response` — a whole call when it returns, a stream when it ends,
fails or is left early. A call that fails before any reply arrives is counted as a failure
and charges no tokens.
"""

from __future__ import annotations

from collections.abc import Callable

from rlm_code.core.exceptions import ModelError
from rlm_code.models.connection import Connection
from rlm_code.models.metering import MeteredCall, Metering
from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
from rlm_code.models.types import ChatRequest, Response


def _admit(
    conn: Connection, request: ChatRequest, metering: Metering
) -> tuple[ChatRequest, MeteredCall]:
    try:
        return metering.admit(conn, request)
    except BaseException:
        conn.release()
        raise


def complete(conn: Connection, request: ChatRequest, metering: Metering) -> Response:
    """The adapter's whole reply; the connection is released whatever happens."""
    request, call = _admit(conn, request, metering)
    try:
        response = conn.adapter.complete(request)
    except ModelError as exc:
        raise call.failed(exc) from None
    finally:
        conn.release()
    call.finished(response, streamed=False)
    return response


async def acomplete(conn: Connection, request: ChatRequest, metering: Metering) -> Response:
    """Async twin of `complete`."""
    request, call = _admit(conn, request, metering)
    try:
        response = await conn.adapter.acomplete(request)
    except ModelError as exc:
        raise call.failed(exc) from None
    finally:
        conn.release()
    call.finished(response, streamed=False)
    return response


def _on_done(conn: Connection, call: MeteredCall) -> Callable[[Response, ModelError | None], None]:
    def done(response: Response, error: ModelError | None) -> None:
        conn.release()
        if error is not None and not response.text and not response.usage.known:
            call.failed(error)
        else:
            call.finished(response, streamed=True)

    return done


def stream(conn: Connection, request: ChatRequest, metering: Metering) -> ResponseStream:
    """The adapter's event stream as a `ResponseStream` that releases and counts when it ends
    (watched by the budgets in effect, when they limit output tokens or time)."""
    request, call = _admit(conn, request, metering)
    events = conn.adapter.stream(request)
    if call.watch is not None:
        events = call.watch.sync(events)
    return ResponseStream(events, conn.spec.provider_id, conn.model, _on_done(conn, call))


def astream(conn: Connection, request: ChatRequest, metering: Metering) -> AsyncResponseStream:
    """Async twin of `stream`."""
    request, call = _admit(conn, request, metering)
    events = conn.adapter.astream(request)
    if call.watch is not None:
        events = call.watch.asynchronous(events)
    return AsyncResponseStream(events, conn.spec.provider_id, conn.model, _on_done(conn, call))
