"""The raw-HTTP adapters against hostile loopback servers (issue 10: 3, 5, 7, 9, 11, 14, 15, 19).

Each test starts a raw socket server on 127.0.0.1 that answers every request with a scripted
byte sequence (chunked bodies that never end, gzip bombs, redirects, keep-alive trickles after
the end marker), and drives `OllamaAdapter` / `OpenAICompatibleAdapter` directly, blocking
and async, plain and streamed. A call that should end is run under a guard far longer than it
may take; the guard only catches hangs, it does not measure speed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlm_code.core.config import RetrySettings, TimeoutSettings
from rlm_code.core.exceptions import (
    InvalidInputError,
    ModelError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ResponseFormatError,
)
from rlm_code.models.adapters.base import Endpoint
from rlm_code.models.adapters.http_adapter import HTTPAdapter
from rlm_code.models.adapters.ollama import OllamaAdapter
from rlm_code.models.adapters.openai_compatible import OpenAICompatibleAdapter
from rlm_code.models.providers.registry import PROVIDERS
from rlm_code.models.types import ChatRequest, GenerationParams, Message, StreamEnd, TextDelta

from .conftest import serve_each

SPECS = {p.provider_id: p for p in PROVIDERS}
Send = Callable[[bytes], None]


class RawServer:
    """Loopback HTTP/1.1 server: reads each request, then runs `script(send, stopped)`."""

    def __init__(self, script: Callable[[Send, threading.Event], None]) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        threading.Thread(target=serve_each, args=(self._sock, self._serve), daemon=True).start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = b""
            while b"\r\n\r\n" not in data:
                more = conn.recv(65536)
                if not more:
                    return
                data += more
            head, _, body = data.partition(b"\r\n\r\n")
            length = next(
                (
                    int(h.split(b":")[1])
                    for h in head.split(b"\r\n")
                    if h.lower().startswith(b"content-length")
                ),
                0,
            )
            while len(body) < length:
                body += conn.recv(65536)
            self.requests.append(head)
            with contextlib.suppress(OSError):
                self.script(conn.sendall, self.stopped)
                while not self.stopped.is_set() and conn.recv(65536):
                    pass  # keep the connection open until the client closes it

    def close(self) -> None:
        self.stopped.set()
        self._sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    made: list[RawServer] = []

    def make(script: Callable[[Send, threading.Event], None]) -> RawServer:
        made.append(RawServer(script))
        return made[-1]

    yield make
    for server in made:
        server.close()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED = b"HTTP/1.1 200 OK\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
SSE_HEAD = CHUNKED % b"text/event-stream"
NDJSON_HEAD = CHUNKED % b"application/x-ndjson"
SSE_BODY = (
    b'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n'
    b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    b"data: [DONE]\n\n"
)
NDJSON_BODY = (
    b'{"message":{"content":"Hi"},"done":false}\n'
    b'{"message":{"content":""},"done":true,"done_reason":"stop","eval_count":1}\n'
)


def adapter(kind: str, url: str, *, read: float = 30.0, key: str | None = None) -> HTTPAdapter:
    timeouts = TimeoutSettings(connect=2, read=read)
    retry = RetrySettings(max_attempts=1)
    if kind == "ollama":
        return OllamaAdapter(Endpoint(SPECS["ollama"], "m", url, key, timeouts, retry))
    return OpenAICompatibleAdapter(Endpoint(SPECS["vllm"], "m", url + "/v1", key, timeouts, retry))


def request(timeout: float | None = None) -> ChatRequest:
    return ChatRequest("m", (Message("user", "hi"),), params=GenerationParams(timeout=timeout))


def call(a: HTTPAdapter, mode: str, req: ChatRequest) -> Any:
    """One call in `mode`, under a hang guard (60 s) that only fails a call that never ends."""

    def run() -> Any:
        if mode == "complete":
            return a.complete(req)
        if mode == "stream":
            return list(a.stream(req))
        if mode == "acomplete":
            return asyncio.run(a.acomplete(req))

        async def collect() -> list[Any]:
            return [event async for event in a.astream(req)]

        return asyncio.run(collect())

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        future = pool.submit(run)
        done, _ = concurrent.futures.wait([future], timeout=60)
        if not done:  # (ModelTimeoutError is a TimeoutError too: not `except TimeoutError`)
            pytest.fail(f"{mode} did not end")
        return future.result()


MODES = ["complete", "stream", "acomplete", "astream"]
STREAMS = ["stream", "astream"]


# 10.3: after the end marker the adapter stops reading, even if the server keeps talking.
@pytest.mark.parametrize("mode", STREAMS)
@pytest.mark.parametrize("kind", ["openai", "ollama"])
def test_a_stream_ends_at_its_end_marker_while_the_server_trickles_keep_alives(serve, kind, mode):
    head, body, alive = (
        (SSE_HEAD, SSE_BODY, b": keep-alive\n\n")
        if kind == "openai"
        else (NDJSON_HEAD, NDJSON_BODY, b"\n")
    )

    def script(send: Send, stopped: threading.Event) -> None:
        send(head + chunk(body))
        while not stopped.wait(0.05):  # never ends the body, never closes
            send(chunk(alive))

    server = serve(script)
    a = adapter(kind, server.url())
    events = call(a, mode, request())
    assert events[0] == TextDelta("Hi") and events[-1] == StreamEnd("stop", "stop")
    a.close()


# 10.14: `timeout` bounds the whole call, whatever the server does between bytes.
@pytest.mark.parametrize("mode", MODES)
def test_the_call_timeout_bounds_a_server_that_drips_one_byte_every_quarter_second(serve, mode):
    def script(send: Send, stopped: threading.Event) -> None:
        head = SSE_HEAD if mode.endswith("stream") else CHUNKED % b"application/json"
        send(head)
        while not stopped.wait(0.25):
            send(chunk(b":" if mode.endswith("stream") else b" "))

    server = serve(script)
    a = adapter("openai", server.url())
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError) as caught:
        call(a, mode, request(timeout=2))
    assert time.monotonic() - started < 8  # ~2 s; the old transport took 25 s or forever
    assert "2 s" in str(caught.value)
    a.close()


@pytest.mark.parametrize("mode", MODES)
def test_the_call_timeout_bounds_a_server_that_stalls_mid_body(serve, mode):
    def script(send: Send, stopped: threading.Event) -> None:
        send((SSE_HEAD if mode.endswith("stream") else CHUNKED % b"application/json") + chunk(b" "))
        stopped.wait(30)

    server = serve(script)
    a = adapter("openai", server.url())
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        call(a, mode, request(timeout=1))
    assert time.monotonic() - started < 8
    a.close()


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_a_timeout_that_is_not_a_positive_finite_number_is_refused_before_io(serve, bad):
    server = serve(lambda send, stopped: None)
    a = adapter("openai", server.url())
    for mode in MODES:
        with pytest.raises(InvalidInputError):
            call(a, mode, request(timeout=bad))
    assert server.requests == []
    a.close()


# 10.15 and 10.9: a gzip bomb, and a reply or a line over its cap, end in a typed error.
def assert_too_large(server: Any, kind: str, mode: str, cap: str) -> None:
    """A call to `server` fails as a reply over the size cap named `cap`."""
    a = adapter(kind, server.url())
    with pytest.raises(ResponseFormatError, match=cap):
        call(a, mode, request())
    a.close()


@pytest.fixture(scope="module")
def gzip_bomb() -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    comments = (b": " + b"0" * 1022 + b"\n") * 1024  # 1 MiB of SSE comments and whitespace
    return b"".join(packer.compress(comments) for _ in range(80)) + packer.flush()


@pytest.mark.parametrize("mode", MODES)
def test_a_gzip_bomb_stops_at_the_reply_cap(serve, gzip_bomb, mode):
    assert len(gzip_bomb) < 1 << 20  # under 1 MB on the wire, 80 MiB unpacked

    def script(send: Send, stopped: threading.Event) -> None:
        send(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(gzip_bomb) + gzip_bomb
        )

    assert_too_large(serve(script), "openai", mode, "64 MiB")


@pytest.mark.parametrize("mode", STREAMS)
def test_a_stream_line_over_the_cap_is_a_typed_error(serve, mode):
    def script(send: Send, stopped: threading.Event) -> None:
        send(NDJSON_HEAD)
        piece = chunk(b"x" * (1 << 20))
        for _ in range(17):
            send(piece)
        stopped.wait(30)

    assert_too_large(serve(script), "ollama", mode, "16 MiB")


# 10.19 end to end: CR-only lines and multi-line data from a real socket.
@pytest.mark.parametrize("mode", STREAMS)
def test_spec_conformant_sse_from_the_wire(serve, mode):
    body = (
        b': hello\r\rdata: {"choices":[{"delta":\rdata: {"content":"Hi"},"finish_reason":"stop"}]}'
        b"\r\rdata: [DONE]\r\r"
    )
    server = serve(lambda send, stopped: send(SSE_HEAD + chunk(body) + b"0\r\n\r\n"))
    a = adapter("openai", server.url())
    assert call(a, mode, request()) == [TextDelta("Hi"), StreamEnd("stop", "stop")]
    a.close()


# 10.5: redirects are never followed; the 3xx is a typed error naming where it pointed.
@pytest.mark.parametrize("mode", MODES)
def test_a_redirect_is_not_followed_and_says_where_it_pointed(serve, mode):
    target = serve(lambda send, stopped: send(SSE_HEAD + chunk(SSE_BODY) + b"0\r\n\r\n"))
    location = f"http://user:hunter2pass@127.0.0.1:{target.port}/v1/chat/completions?key=abcdef123"

    def script(send: Send, stopped: threading.Event) -> None:
        send(
            b"HTTP/1.1 307 Temporary Redirect\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
            % location.encode()
        )

    server = serve(script)
    a = adapter("openai", server.url(), key="sk-test-redirect-0123456789")
    with pytest.raises(ProviderError) as caught:
        call(a, mode, request())
    message = str(caught.value)
    assert caught.value.status_code == 307 and f"127.0.0.1:{target.port}" in message
    assert "hunter2pass" not in message and "abcdef123" not in message
    assert target.requests == []  # the key never went to the other origin
    a.close()


# 10.7: a URL or header no transport can send is InvalidInputError before any I/O.
@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://exa mple.com", None),
        ("http://[::1", None),
        ("ftp://127.0.0.1:9", None),
        ("not a url", None),
        ("http://127.0.0.1:9", "sk-tést-ünicode-key-0123"),
        ("http://127.0.0.1:9", "sk-test-with\nnewline-0123"),
    ],
)
def test_bad_urls_and_headers_are_invalid_input_before_io(url, key):
    with pytest.raises(InvalidInputError) as caught:
        adapter("openai", url, key=key)
    if key:
        assert key not in str(caught.value) and "0123" not in str(caught.value)


def test_url_credentials_plus_a_key_are_invalid_input_on_the_async_path(serve):
    server = serve(lambda send, stopped: send(SSE_HEAD + chunk(SSE_BODY) + b"0\r\n\r\n"))
    url = f"http://user:pw-secret-99@127.0.0.1:{server.port}"
    a = adapter("openai", url, key="sk-test-userinfo-0123456789")
    for mode in ("acomplete", "astream"):
        with pytest.raises(InvalidInputError) as caught:
            call(a, mode, request())
        assert "pw-secret-99" not in str(caught.value)
    a.close()


# 11.4 / 10.11: one boundary maps transport errors; the original is named, never chained.
@pytest.mark.parametrize("mode", MODES)
def test_mapped_errors_name_the_original_and_chain_nothing(serve, mode):
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    a = adapter("openai", f"http://127.0.0.1:{port}")
    with pytest.raises(ProviderConnectionError) as caught:
        call(a, mode, request())
    error = caught.value
    assert error.original in ("httpx2.ConnectError", "aiohttp.ClientConnectorError")
    assert error.__cause__ is None and error.__context__ is None
    a.close()

    def stall(send: Send, stopped: threading.Event) -> None:
        send(SSE_HEAD if mode.endswith("stream") else CHUNKED % b"application/json")
        stopped.wait(30)

    server = serve(stall)
    b = adapter("openai", server.url(), read=0.3)
    with pytest.raises(ModelTimeoutError) as timed:
        call(b, mode, request())
    assert timed.value.original in (
        "httpx2.ReadTimeout",
        "aiohttp.SocketTimeoutError",
        "TimeoutError",
    )
    assert timed.value.__cause__ is None and timed.value.__context__ is None
    b.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_echoed_key_in_an_error_body_is_redacted(serve, mode):
    key = "sk-test-echoed-" + "k" * 40

    def script(send: Send, stopped: threading.Event) -> None:
        body = b'{"error":{"message":"bad key %s"}}' % key.encode()
        send(b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    server = serve(script)
    a = adapter("openai", server.url(), key=key)
    with pytest.raises(ModelError) as caught:
        call(a, mode, request())
    assert caught.value.status_code == 400
    assert key[:20] not in repr(caught.value) and caught.value.__context__ is None
    a.close()
