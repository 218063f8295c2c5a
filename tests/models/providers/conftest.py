"""Loopback servers that misbehave on purpose, and a registry that never probes real ports.

The local protocol server answers like real providers; these tiny servers cover what it does
not: a port that accepts connections and never answers, one that answers bytes that are not
HTTP, one that answers correctly but far too late, and one with a chosen JSON document. Each
runs on a free loopback port in daemon threads and is closed when its test ends.

`isolated_registry` copies the registry's local rows with their default URLs pointed at closed
loopback ports, so a test only ever reaches the servers it started, whatever runs on the
developer's machine at :11434, :8080 or :8000.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec

LOCAL_SPECS: list[ProviderSpec] = ProviderRegistry.default().list_providers("local")


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def url_for(spec: ProviderSpec, port: int) -> str:
    """A base URL of the row's shape: Ollama's root, or `/v1` for OpenAI-compatible servers."""
    suffix = "" if spec.adapter_type == "ollama" else "/v1"
    return f"http://127.0.0.1:{port}{suffix}"


def isolated_registry(**ports: int) -> ProviderRegistry:
    """The local rows, each defaulting to its own closed port unless `ports` names one."""
    rows = []
    used = set(ports.values())
    for spec in LOCAL_SPECS:
        key = spec.provider_id.replace("-", "_")
        port = ports.get(key)
        while port is None or (key not in ports and port in used):
            port = closed_port()  # the kernel may hand the same free port out twice in a row
        used.add(port)
        rows.append(dataclasses.replace(spec, default_base_url=url_for(spec, port)))
    return ProviderRegistry(rows)


class SilentServer:
    """Listens (the kernel completes every handshake) but never reads nor answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port: int = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


class RawServer:
    """Accepts connections and hands each to `handle(conn, stop)` on its own thread."""

    def __init__(self, handle: Callable[[socket.socket, threading.Event], None]) -> None:
        self.handle = handle
        self.stop = threading.Event()
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.sock.settimeout(0.05)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request; these servers answer any of them alike
                self.handle(conn, self.stop)
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def garbage(conn: socket.socket, stop: threading.Event) -> None:
    """Bytes that are not HTTP, then a closed connection."""
    conn.sendall(b"\x00\xffSSH-2.0-not-http \x07\x08 garbage\r\n\r\n")


def http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = (
        f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def slow(delay: float, body: bytes) -> Callable[[socket.socket, threading.Event], None]:
    """A correct answer, sent after `delay` seconds (or when the server stops)."""

    def handle(conn: socket.socket, stop: threading.Event) -> None:
        stop.wait(delay)
        conn.sendall(http_answer(200, body))

    return handle


class JsonServer:
    """An HTTP server answering GET paths from a table of (status, document); 404 otherwise.

    Records the paths it was asked for, so tests can count requests.
    """

    def __init__(self, routes: dict[str, tuple[int, Any]]) -> None:
        self.paths: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.paths.append(self.path)
                status, doc = routes.get(self.path, (404, {"error": "not found"}))
                body = json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port: int = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def openai_models(*ids: str, owned_by: str = "local") -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "created": 0, "owned_by": owned_by} for i in ids],
    }


@pytest.fixture
def servers() -> Iterator[Callable[..., Any]]:
    """Factory for the servers above; every one is closed after the test."""
    made: list[Any] = []

    def make(kind: str, *args: Any) -> Any:
        factories: dict[str, Callable[..., Any]] = {
            "silent": SilentServer,
            "garbage": lambda: RawServer(garbage),
            "slow": lambda delay, body: RawServer(slow(delay, body)),
            "json": JsonServer,
        }
        server = factories[kind](*args)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def timer() -> Callable[[], Callable[[], float]]:
    """`stop = timer()` starts a clock; `stop()` returns the seconds since."""

    def start() -> Callable[[], float]:
        began = time.perf_counter()
        return lambda: time.perf_counter() - began

    return start
