"""Fuzzing whole adapters on the wire: random answers from a raw loopback server.

For each of the five adapter types, plain and streamed, a server on 127.0.0.1 answers with
bytes drawn by hypothesis — random bytes, truncated JSON, SSE and NDJSON with garbage frames,
wrong types in usage fields — under a 200 status and the protocol's content type. Whatever
comes back, the connector must return text or raise a `ModelError` child within its timeout:
no other exception type, no hang. The SDK adapters are driven through the real SDKs.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ModelError
from rlm_code.models.llm_connector import LLMConnector


class RawServer:
    """Answers every request with the bytes set in `body` (status 200), then closes."""

    def __init__(self) -> None:
        self.body = b""
        self.content_type = "application/json"
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            while len(rest) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                rest += chunk
            body = self.body
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: " + self.content_type.encode()
                + b"\r\nContent-Length: " + str(len(body)).encode()
                + b"\r\nConnection: close\r\n\r\n" + body
            )  # fmt: skip
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self) -> None:
        self._stop = True
        self._sock.close()


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawServer]:
    server = RawServer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz-project")
    (root / "rlm_config.yaml").write_text(
        "timeouts: {connect: 2, read: 2}\nretries: {max_attempts: 1}\n"
    )
    return root


TARGETS = {
    "openai": ("gpt-4o", "openai", "sk-test-fuzz", "/v1"),
    "anthropic": ("claude-opus-4-6", "anthropic", "sk-ant-test-fuzz", ""),
    "gemini": ("gemini-2.5-flash", "gemini", "AIzaTestFuzz", ""),
    "ollama": ("llama3.2:latest", "ollama", None, ""),
    "openai_compatible": ("test-model", "vllm", None, "/v1"),
}

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20)),
    lambda c: st.one_of(
        st.lists(c, max_size=3), st.dictionaries(st.text(max_size=10), c, max_size=4)
    ),
    max_leaves=12,
)
plausible = st.fixed_dictionaries(
    {},
    optional={
        "choices": json_values, "usage": json_values, "content": json_values,
        "candidates": json_values, "usageMetadata": json_values, "message": json_values,
        "done": json_values, "eval_count": json_values, "type": json_values,
        "error": json_values, "delta": json_values,
    },
)  # fmt: skip


def frames(prefix: bytes) -> st.SearchStrategy[bytes]:
    """A stream body: several frames, each JSON (maybe cut short) or raw bytes."""
    frame = st.one_of(
        plausible.map(lambda d: json.dumps(d).encode()),
        plausible.map(lambda d: json.dumps(d).encode()[: max(1, len(json.dumps(d)) // 2)]),
        st.binary(max_size=40),
    )
    return st.lists(frame, max_size=6).map(lambda fs: b"".join(prefix + f + b"\n\n" for f in fs))


bodies = st.one_of(
    st.binary(max_size=300),
    plausible.map(lambda d: json.dumps(d).encode()),
    frames(b"data: "),
    frames(b""),
)


def call(connector: LLMConnector, streamed: bool) -> None:
    if streamed:
        for chunk in connector.stream_response("fuzz me"):
            assert isinstance(chunk, str)
    else:
        assert isinstance(connector.generate_response("fuzz me"), str)


@pytest.mark.parametrize("streamed", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("adapter", list(TARGETS))
def test_random_answers_give_text_or_model_errors(raw_server, project, adapter, streamed):
    model, provider, key, suffix = TARGETS[adapter]
    connector = LLMConnector(ConfigManager(project_root=project))
    raw_server.body = json.dumps({"models": [{"name": model}]}).encode()
    connector.connect_to_model(model, model_type=provider, api_key=key,
                               base_url=raw_server.url + suffix)  # fmt: skip
    raw_server.content_type = "text/event-stream" if streamed else "application/json"

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(bodies)
    def check(body: bytes) -> None:
        raw_server.body = body
        started = time.monotonic()
        with contextlib.suppress(ModelError):
            call(connector, streamed)
        assert time.monotonic() - started < 10

    try:
        check()
    finally:
        connector.close()
