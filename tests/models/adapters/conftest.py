"""The five adapter types as test targets, each reached through the real connector.

A `Target` knows how to connect an `LLMConnector` to the local protocol server with one
adapter type, and where that provider's wire format puts the system prompt, the turns and the
generation parameters, so the contract tests can assert on the recorded request bodies.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.testing import LocalProtocolServer, RecordedRequest

# Small timeouts and backoff so every case finishes quickly (a project `rlm_config.yaml`):
#     timeouts: {connect: 2, read: READ}
#     retries: {max_attempts: 3, backoff_base: 0.01, backoff_max: BACKOFF_MAX}
# `backoff_max: 2` lets the server's `Retry-After: 1` be honoured; the fault matrix uses 0.5,
# so a 429 is raised at once (with `retry_after`) instead of costing two seconds per case,
# and a read timeout of 0.5 s, still longer than the server's 200 ms drip pauses.
READ_TIMEOUT = 1.0
FAULT_READ_TIMEOUT = 0.5


def project_config(read: float = READ_TIMEOUT, backoff_max: float = 2.0) -> str:
    return (
        f"timeouts: {{connect: 2, read: {read}}}\n"
        f"retries: {{max_attempts: 3, backoff_base: 0.01, backoff_max: {backoff_max}}}\n"
    )


@dataclass(frozen=True)
class Target:
    """One adapter type: how to connect, and where its wire format puts things."""

    adapter: str
    model_type: str
    model: str
    key: str | None
    openai_url: bool

    @property
    def provider(self) -> str:
        return self.model_type

    def connect_args(self, server: LocalProtocolServer, key: str | None = None) -> dict[str, Any]:
        args: dict[str, Any] = {
            "model_name": self.model,
            "model_type": self.model_type,
            "base_url": server.openai_base_url if self.openai_url else server.base_url,
        }
        if key or self.key:
            args["api_key"] = key or self.key
        return args

    def is_chat(self, request: RecordedRequest) -> bool:
        """Whether a recorded request is a generation call (not a model listing)."""
        if request.method != "POST":
            return False
        path = request.path
        return path.endswith(("/chat/completions", "/v1/messages", "/api/chat")) or (
            ":generateContent" in path or ":streamGenerateContent" in path
        )

    def system_of(self, body: dict[str, Any]) -> str | None:
        """The system prompt where this provider carries it."""
        if self.adapter == "anthropic":
            return body.get("system")
        if self.adapter == "gemini":
            instruction = body.get("systemInstruction")
            return "".join(p["text"] for p in instruction["parts"]) if instruction else None
        first = body["messages"][0]
        return first["content"] if first["role"] == "system" else None

    def turns_of(self, body: dict[str, Any]) -> list[tuple[str, str]]:
        """The conversation turns (system prompt excluded) as (role, text), roles normalised."""
        if self.adapter == "gemini":
            roles = {"user": "user", "model": "assistant"}
            return [
                (roles[c["role"]], "".join(p["text"] for p in c["parts"])) for c in body["contents"]
            ]
        return [(m["role"], m["content"]) for m in body["messages"] if m["role"] != "system"]

    def params_of(self, body: dict[str, Any]) -> dict[str, Any]:
        """max_tokens / temperature / stop read back under this provider's own field names."""
        section, max_tokens, stop, absent = PARAM_FIELDS[self.adapter]
        fields = body.get(section, {}) if section else body
        return {
            "max_tokens": fields.get(max_tokens),
            "temperature": fields.get("temperature"),
            "stop": fields.get(stop),
            "absent": all(name not in body for name in absent),
        }


# adapter -> (the body's object holding the settings, or None for the body itself; its
# max-tokens field; its stop field; other APIs' names that must not appear in the body)
_NATIVE = ("max_tokens", "temperature")  # top-level names a nested-settings API must not get
PARAM_FIELDS: dict[str, tuple[str | None, str, str, tuple[str, ...]]] = {
    "openai": (None, "max_completion_tokens", "stop", ("max_tokens",)),
    "openai_compatible": (None, "max_tokens", "stop", ("max_completion_tokens",)),
    "anthropic": (None, "max_tokens", "stop_sequences", ("stop",)),
    "gemini": ("generationConfig", "maxOutputTokens", "stopSequences", _NATIVE),
    "ollama": ("options", "num_predict", "stop", _NATIVE),
}


TARGETS = [
    Target("openai", "openai", "gpt-4o-mini", "sk-test-contract", True),
    Target("anthropic", "anthropic", "claude-sonnet-4-5-20250929", "sk-ant-test-contract", False),
    Target("gemini", "gemini", "gemini-2.5-flash", "AIzaTestContract", False),
    Target("ollama", "ollama", "llama3.2", None, False),
    Target("openai_compatible", "vllm", "test-model", None, True),
]
TARGET_IDS = [t.adapter for t in TARGETS]

CANARY_KEYS = {
    "openai": "sk-test-CANARY0123456789",
    "anthropic": "sk-ant-test-CANARY0123456789",
    "gemini": "AIzaTestCANARY0123456789",
}


@pytest.fixture(params=TARGETS, ids=TARGET_IDS)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


Connect = Callable[..., LLMConnector]


@pytest.fixture
def connect(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Connect]:
    """Factory: `connect(target, server, read=1.0, backoff_max=2.0, key=None)` -> a connected
    `LLMConnector` with its own project config in tmp_path; all are closed afterwards."""
    made: list[LLMConnector] = []

    def make(
        target: Target,
        server: LocalProtocolServer,
        read: float = READ_TIMEOUT,
        backoff_max: float = 2.0,
        key: str | None = None,
    ) -> LLMConnector:
        # Ollama's read timeout is OLLAMA_HTTP_TIMEOUT (default 120 s), not `timeouts.read`.
        monkeypatch.setenv("OLLAMA_HTTP_TIMEOUT", str(read))
        project = tmp_path / f"project{len(made)}"
        project.mkdir()
        (project / "rlm_config.yaml").write_text(project_config(read, backoff_max))
        connector = LLMConnector(ConfigManager(project_root=project))
        made.append(connector)
        assert connector.connect_to_model(**target.connect_args(server, key)) is True
        return connector

    yield make
    for connector in made:
        connector.close()


def chat_requests(target: Target, server: LocalProtocolServer) -> list[RecordedRequest]:
    return [r for r in server.requests if target.is_chat(r)]


def model_key(connector: LLMConnector) -> str:
    status = connector.get_connection_status()
    return str(status["model_id"])


def assert_one_call_of_unknown_usage(connector: LLMConnector, before: dict[str, Any]) -> None:
    """Since `before`: one call, no tokens charged, its usage counted as unknown."""
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    assert delta == {
        "total_calls": 1,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "unknown_usage_calls": 1,
    }


def cut_at(body: bytes, cuts: list[int]) -> list[bytes]:
    """`body` cut into chunks at the sorted offsets `cuts` (empty chunks included)."""
    chunks, start = [], 0
    for cut in [*cuts, len(body)]:
        chunks.append(body[start:cut])
        start = cut
    return chunks


def serve_each(sock: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """A loopback test server's accept loop: each connection handled on its own thread,
    until `sock` is closed."""
    while True:
        try:
            conn, _ = sock.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


# The beyond-text suites' shared checks (`beyond_text.agreed`) explain a failure as a test's own
# asserts do; registered here because this conftest is imported before any of those suites.
pytest.register_assert_rewrite(__name__.rpartition(".")[0] + ".beyond_text")
