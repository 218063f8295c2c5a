"""The SDK adapters against hostile loopback servers (issue 10 items 3, 5, 11 and 14).

Each test starts raw socket servers on 127.0.0.1 that misbehave on purpose and drives the
three SDK adapters directly (an `Endpoint`, no connector), sync and async, whole and streamed:

- a server that echoes the key headers into its 400/500 body: no full key anywhere on the
  typed error or on anything chained to it (`__cause__`/`__context__`, walked recursively);
- a 307 to a second server on another port (another origin): never followed, the second
  server never sees a request;
- a server that trickles bytes before the answer is complete: the call's `timeout` bounds the
  whole call (the SDKs' own timeouts are per read);
- a server that keeps the connection open, trickling, after the end marker: the stream ends
  with its reply instead of waiting for the server.

Time bounds asserted here are hang detectors (several times the expected time), not speed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlm_code.core.config import RetrySettings, TimeoutSettings
from rlm_code.core.exceptions import ModelError, ModelTimeoutError, ProviderError
from rlm_code.models.adapters.base import Adapter, Endpoint, load_adapter
from rlm_code.models.providers.registry import ProviderRegistry
from rlm_code.models.types import ChatRequest, GenerationParams, Message, StreamEnd, TextDelta

from .conftest import serve_each

KEYS = {
    "openai": "sk-test-CANARYopenai0123456789abcdef",
    "anthropic": "sk-ant-test-CANARYanthropic0123456789",
    "gemini": "AIzaTestCANARYgemini0123456789abcdefg",
}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-opus-4-6", "gemini": "gemini-2.5-flash"}
KEY_HEADERS = (b"authorization", b"x-api-key", b"x-goog-api-key")
SDKS = list(KEYS)
MODES = ["complete", "stream", "acomplete", "astream"]

Handler = Callable[[socket.socket, str, dict[bytes, bytes]], None]


class RawServer:
    """A loopback HTTP/1.1 server: records each request's path and headers, then lets
    `handler(conn, path, headers)` write whatever answer (or non-answer) it likes."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[tuple[str, dict[bytes, bytes]]] = []
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(32)
        self.port = self._sock.getsockname()[1]
        self._closing = False
        threading.Thread(target=serve_each, args=(self._sock, self._one), daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _one(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get(b"content-length", b"0"))
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            self.requests.append((path, dict(headers)))
            headers[b":body"] = rest
            self.handler(conn, path, headers)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._sock.close()


def send(conn: socket.socket, status: int, body: bytes, extra: str = "") -> None:
    conn.sendall(
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )


def trickle(conn: socket.socket, piece: bytes, seconds: float = 20.0) -> None:
    """Send `piece` every 0.05 s until the client hangs up (or `seconds` pass)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        conn.sendall(piece)
        time.sleep(0.05)


def sse_head(conn: socket.socket) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")


def data(obj: Any, event: str | None = None) -> bytes:
    name = f"event: {event}\n" if event else ""
    return f"{name}data: {json.dumps(obj)}\n\n".encode()


def whole_stream(sdk: str) -> bytes:
    """A complete, valid stream saying "Hi" in `sdk`'s wire format."""
    if sdk == "openai":
        return (
            data({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None}]})
            + data({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            + data({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 1}})
            + b"data: [DONE]\n\n"
        )
    if sdk == "anthropic":
        usage = {"input_tokens": 3, "output_tokens": 1}
        message: dict[str, Any] = {"id": "m", "type": "message", "role": "assistant", "content": [],
                   "model": "c", "stop_reason": None, "usage": usage}  # fmt: skip
        delta = {"type": "text_delta", "text": "Hi"}
        return (
            data({"type": "message_start", "message": message}, "message_start")
            + data(
                {"type": "content_block_delta", "index": 0, "delta": delta}, "content_block_delta"
            )
            + data(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn"},
                    "usage": {"output_tokens": 1},
                },
                "message_delta",
            )
            + data({"type": "message_stop"}, "message_stop")
        )
    candidate = {"content": {"role": "model", "parts": [{"text": "Hi"}]}, "finishReason": "STOP"}
    meta = {"promptTokenCount": 3, "candidatesTokenCount": 1}
    return data({"candidates": [candidate], "usageMetadata": meta})


def adapter_for(sdk: str, url: str, read: float = 30.0) -> Adapter:
    spec = ProviderRegistry.default().get(sdk)
    assert spec is not None
    base = f"{url}/v1" if sdk == "openai" else url
    endpoint = Endpoint(
        spec, MODELS[sdk], base, KEYS[sdk],
        TimeoutSettings(connect=5, read=read), RetrySettings(max_attempts=1),
    )  # fmt: skip
    return load_adapter(spec.adapter_type)(endpoint)


def request_for(sdk: str, timeout: float | None = None) -> ChatRequest:
    params = GenerationParams(timeout=timeout)
    return ChatRequest(MODELS[sdk], (Message("user", "hello"),), None, params)


def run(adapter: Adapter, mode: str, request: ChatRequest) -> tuple[str, list[Any]]:
    """The reply text and (for streams) the events, whatever the mode."""
    if mode == "complete":
        return adapter.complete(request).text, []
    if mode == "stream":
        events = list(adapter.stream(request))
    elif mode == "acomplete":

        async def whole() -> str:
            try:
                return (await adapter.acomplete(request)).text
            finally:
                await adapter.aclose()

        return asyncio.run(whole()), []
    else:

        async def streamed() -> list[Any]:
            try:
                return [event async for event in adapter.astream(request)]
            finally:
                await adapter.aclose()

        events = asyncio.run(streamed())
    return "".join(e.text for e in events if isinstance(e, TextDelta)), events


@pytest.fixture
def servers() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    yield made
    for server in made:
        server.close()


def start(servers: list[RawServer], handler: Handler) -> RawServer:
    server = RawServer(handler)
    servers.append(server)
    return server


# -- 10.11: a server echoing the key leaves no full key anywhere on our error ---------------


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and everything reachable through `__cause__` / `__context__`."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        exc = todo.pop()
        if id(exc) in seen:
            continue
        seen.add(id(exc))
        yield exc
        todo.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)


@pytest.mark.parametrize("status", [400, 500])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sdk", SDKS)
def test_an_echoed_key_is_nowhere_on_the_error_or_its_chain(servers, sdk, mode, status):
    def echo(conn: socket.socket, path: str, headers: dict[bytes, bytes]) -> None:
        said = " ".join(headers[h].decode() for h in KEY_HEADERS if h in headers)
        body = {
            "error": {
                "code": status,
                "message": f"bad request with {said}",
                "type": "invalid_request_error",
                "status": "INVALID_ARGUMENT",
            }
        }
        send(conn, status, json.dumps(body).encode())  # fmt: skip

    server = start(servers, echo)
    adapter = adapter_for(sdk, server.url)
    key = KEYS[sdk]
    with pytest.raises(ModelError) as info:
        run(adapter, mode, request_for(sdk))
    adapter.close()
    assert any(key in " ".join(h.decode() for h in hs.values()) for _, hs in server.requests)
    error = info.value
    assert error.status_code == status
    assert error.original and error.original.split(".")[0] in ("openai", "anthropic", "google")
    assert error.__cause__ is None and error.__context__ is None
    for exc in chain(error):
        assert isinstance(exc, ModelError)  # no SDK exception is kept
        for text in (str(exc), repr(exc), *map(str, exc.args), *map(str, vars(exc).values())):
            assert key not in text
            assert key[-20:] not in text  # not even most of it


# -- 10.5: no redirect is followed, so the key never reaches another origin -----------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sdk", SDKS)
def test_a_redirect_to_another_origin_is_not_followed(servers, sdk, mode):
    elsewhere = start(servers, lambda conn, path, headers: send(conn, 200, b"{}"))

    def redirect(conn: socket.socket, path: str, headers: dict[bytes, bytes]) -> None:
        send(conn, 307, b"", f"Location: {elsewhere.url}{path}\r\n")

    server = start(servers, redirect)
    adapter = adapter_for(sdk, server.url)
    with pytest.raises(ProviderError) as info:
        run(adapter, mode, request_for(sdk))
    adapter.close()
    assert info.value.status_code == 307
    assert "redirect" in str(info.value)
    assert len(server.requests) == 1
    assert elsewhere.requests == []  # the key went nowhere else


# -- 10.14: `timeout` bounds the whole call --------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sdk", SDKS)
def test_the_call_timeout_bounds_a_trickling_answer(servers, sdk, mode):
    """One byte of JSON whitespace (or an SSE comment) every 0.05 s: each read succeeds, so
    the SDKs' per-read timeouts never fire; the call's 1 s timeout must."""

    def drip(conn: socket.socket, path: str, headers: dict[bytes, bytes]) -> None:
        body = headers[b":body"].replace(b" ", b"")
        if "stream" in path or b'"stream":true' in body:
            sse_head(conn)
            # SSE comments; Gemini's SDK reads any non-data line as JSON, so blank lines there.
            trickle(conn, b"\n" if "Content" in path else b": keep-alive\n")
        else:
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{"
            )
            trickle(conn, b" ")

    server = start(servers, drip)
    adapter = adapter_for(sdk, server.url, read=30)
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        run(adapter, mode, request_for(sdk, timeout=1.0))
    adapter.close()
    assert time.monotonic() - started < 10  # a hang detector: the server would go on 20 s


# -- 10.3: nothing is read after the end marker -----------------------------------------------


@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("sdk", SDKS)
def test_a_stream_ends_at_its_end_marker_while_the_server_keeps_talking(servers, sdk, mode):
    def linger(conn: socket.socket, path: str, headers: dict[bytes, bytes]) -> None:
        sse_head(conn)
        conn.sendall(whole_stream(sdk))
        trickle(conn, b": still here\n\n")

    server = start(servers, linger)
    adapter = adapter_for(sdk, server.url, read=30)
    started = time.monotonic()
    text, events = run(adapter, mode, request_for(sdk))
    elapsed = time.monotonic() - started
    adapter.close()
    assert text == "Hi"
    assert isinstance(events[-1], StreamEnd) and events[-1].finish_reason == "stop"
    assert sum(isinstance(e, StreamEnd) for e in events) == 1
    assert elapsed < 10  # a hang detector: the server trickles for 20 s
