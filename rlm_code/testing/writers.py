"""Byte-level answer writers of the local protocol server, where the wire faults happen.

Protocol modules produce JSON documents and stream frames; these functions put them on the wire,
either faithfully or damaged as the request's fault asks (cut short, malformed, split inside
UTF-8 characters, dripped, ...). A client that disconnects is never an error here: the writer
just stops, so no traceback reaches the logs.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator, Mapping

from aiohttp import web

from rlm_code.testing.faults import (
    BAD_UTF8_BYTES,
    BAD_UTF8_MARK,
    Fault,
    split_inside_characters,
)
from rlm_code.testing.wire import StreamPlan

__all__ = ["abort", "hang", "pause", "send_body", "send_stream"]

_MARK_BYTES = BAD_UTF8_MARK.encode("utf-8")
_POLL_S = 0.05
_SPLIT_PAUSE_S = 0.005

HTML_BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def pause(request: web.BaseRequest, stopping: threading.Event, seconds: float | None) -> bool:
    """Wait ``seconds`` (None: forever); False as soon as the server stops or the client leaves.

    Polling keeps every wait short, so stopping the server never waits on a sleeping handler.
    """
    loop = asyncio.get_running_loop()
    deadline = None if seconds is None else loop.time() + seconds
    while True:
        if stopping.is_set() or client_gone(request):
            return False
        step = _POLL_S
        if deadline is not None:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return True
            step = min(step, remaining)
        await asyncio.sleep(step)


async def abort(request: web.BaseRequest) -> None:
    """Close the connection mid-answer, after the bytes already written have left."""
    transport = request.transport
    if transport is None:
        return
    for _ in range(100):
        if transport.is_closing() or transport.get_write_buffer_size() == 0:
            break
        await asyncio.sleep(0.01)
    transport.abort()


async def hang(request: web.BaseRequest, stopping: threading.Event) -> web.StreamResponse:
    """Never answer; drop the connection when the server stops (or the client is gone)."""
    await pause(request, stopping, None)
    await abort(request)
    return web.Response(status=204)  # never reaches the client: the connection is closed


async def send_body(
    request: web.BaseRequest,
    stopping: threading.Event,
    *,
    status: int,
    body: bytes,
    content_type: str,
    headers: Mapping[str, str],
    fault: Fault | None,
) -> web.StreamResponse:
    """Send a complete (non-streamed) answer, applying body-level faults."""
    mode = fault.mode if fault else None
    drip_s = fault.drip_ms / 1000 if mode == "drip" and fault is not None else 0.0
    if drip_s and not await pause(request, stopping, drip_s):
        await abort(request)
        return web.Response(status=204)
    if mode == "bad_utf8":
        body = body.replace(_MARK_BYTES, BAD_UTF8_BYTES)
    elif mode == "malformed":
        text = body.decode("utf-8", errors="replace")
        body = text[: len(text) // 2].encode("utf-8")
    elif mode == "empty_body":
        body = b""
    if mode not in ("truncate", "split_utf8"):
        complete = web.Response(status=status, body=body, headers=headers)
        complete.content_type = content_type
        return complete

    response = web.StreamResponse(status=status, headers=headers)
    response.content_type = content_type
    response.content_length = len(body)
    try:
        await response.prepare(request)
        if mode == "truncate":
            await response.write(body[: max(1, len(body) // 2)])
            await abort(request)
            return response
        for segment in split_inside_characters(body):
            await response.write(segment)
            await asyncio.sleep(_SPLIT_PAUSE_S)
        await response.write_eof()
    except ConnectionError:
        pass  # the client left; nothing to report
    return response


async def send_stream(
    request: web.BaseRequest,
    stopping: threading.Event,
    *,
    plan: StreamPlan,
    content_type: str,
    headers: Mapping[str, str],
    malformed_frame: bytes,
    fault: Fault | None,
) -> web.StreamResponse:
    """Stream ``plan`` frame by frame, applying stream-level faults."""
    mode = fault.mode if fault else None
    response = web.StreamResponse(status=200, headers=headers)
    response.content_type = content_type.split(";")[0]
    if "charset=" in content_type:
        response.charset = content_type.split("charset=")[1].strip()
    response.headers["Cache-Control"] = "no-cache"
    if mode == "empty_body":
        response.content_length = 0
        return response

    frames = _planned_frames(plan, mode, malformed_frame)
    drip_s = fault.drip_ms / 1000 if mode == "drip" and fault is not None else 0.0

    try:
        await response.prepare(request)
        frame = next(frames, None)
        while frame is not None:
            following = next(frames, None)
            if mode == "bad_utf8":
                frame = frame.replace(_MARK_BYTES, BAD_UTF8_BYTES)
            if mode == "split_utf8":
                for segment in split_inside_characters(frame):
                    await response.write(segment)
                    await asyncio.sleep(_SPLIT_PAUSE_S)
            else:
                await response.write(frame)
            if drip_s and following is not None:
                if not await pause(request, stopping, drip_s):
                    await abort(request)
                    return response
            elif stopping.is_set():
                await abort(request)
                return response
            else:
                # A write to a fast reader never suspends (aiohttp only awaits a full buffer):
                # hand the loop to other requests between frames, or one long stream would
                # hold the whole server until its last frame.
                await asyncio.sleep(0)
            frame = following
        if mode == "truncate":
            await abort(request)
            return response
        await response.write_eof()
    except ConnectionError:
        pass  # the client left mid-stream; that is its right
    return response


def _planned_frames(plan: StreamPlan, mode: str | None, malformed_frame: bytes) -> Iterator[bytes]:
    """The frames of ``plan`` in order, with the ``malformed`` and ``truncate`` faults applied.

    ``malformed`` puts the invalid frame right after the first content frame; ``truncate`` ends
    after half of the content frames (at least one frame after the opening ones). Content frames
    are pulled from the plan one at a time, so nothing is encoded before it is due.
    """
    start = len(plan.head)
    insert_at = start + min(1, plan.piece_count) if mode == "malformed" else -1
    stop_at = start + max(1, plan.piece_count // 2) if mode == "truncate" else -1
    all_frames = itertools.chain(plan.head, plan.content, plan.tail)
    for index, frame in enumerate(all_frames):
        if index == stop_at:
            return
        if index == insert_at:
            yield malformed_frame
        yield frame
    if insert_at >= start and insert_at == start + plan.piece_count + len(plan.tail):
        yield malformed_frame  # only when the plan has no frame after the insertion point
