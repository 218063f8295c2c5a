"""Connection reuse and clean-up, seen from the network: a counting TCP proxy sits between the
connector and the local protocol server.

- Every call of a connection, streamed or not, goes over one kept-alive TCP connection (a new
  connection per call costs a TLS handshake against a real provider).
- An event loop's connections are closed when that loop ends (`asyncio.run` per call must not
  leave sockets behind), and every connection is closed on `close()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.models.llm_connector import LLMConnector

from .conftest import Target, project_config
from .test_contract import REPLY, run

pytestmark = [
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]


class CountingProxy:
    """A loopback TCP proxy that counts accepted and still-open client connections."""

    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self.accepted = 0
        self.open = 0
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            for sock in (client, upstream):  # forward small frames at once (no Nagle delay)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self.accepted += 1
                self.open += 1
                self._sockets += [client, upstream]
            done = threading.Event()
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst, done), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, done: threading.Event) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        first = not done.is_set()
        done.set()
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if first:
            with self._lock:
                self.open -= 1

    def wait_open(self, expected: int = 0, timeout: float = 3.0) -> int:
        """Wait until `expected` client connections are open; returns how many are."""
        deadline = time.monotonic() + timeout
        while self.open != expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.open

    def close(self) -> None:
        self._server.close()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):
                    sock.close()


@pytest.fixture
def proxied(local_server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    proxy = CountingProxy(local_server.port)
    monkeypatch.setenv("OLLAMA_HTTP_TIMEOUT", "5")
    (tmp_path / "rlm_config.yaml").write_text(project_config(read=5))
    made: list[LLMConnector] = []

    def make(target: Target) -> LLMConnector:
        args = target.connect_args(local_server)
        args["base_url"] = proxy.url("/v1" if target.openai_url else "")
        connector = LLMConnector(ConfigManager(project_root=tmp_path))
        made.append(connector)
        connector.connect_to_model(**args)
        return connector

    yield proxy, make
    for connector in made:
        connector.close()
    proxy.close()


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_calls_reuse_one_connection(target, proxied, mode):
    proxy, make = proxied
    connector = make(target)
    for _ in range(5):
        assert run(connector, mode) == REPLY
    assert proxy.accepted == 1
    connector.close()
    assert proxy.wait_open(0) == 0


@pytest.mark.parametrize("mode", ["agenerate", "astream"])
def test_async_calls_reuse_a_connection_and_close_it_with_their_loop(target, proxied, mode):
    proxy, make = proxied
    connector = make(target)
    at_connect = proxy.accepted  # Ollama checks the model at connect time (sync pool)

    async def calls() -> list[str]:
        if mode == "agenerate":
            return [await connector.agenerate_response("hello there friend") for _ in range(5)]
        return [
            "".join([c async for c in connector.astream_response("hello there friend")])
            for _ in range(5)
        ]

    for loop_number in (1, 2):
        assert asyncio.run(calls()) == [REPLY] * 5
        assert proxy.accepted - at_connect == loop_number  # one connection per loop
        assert proxy.wait_open(at_connect) == at_connect  # closed when its loop ended
    connector.close()
    assert proxy.wait_open(0) == 0
