"""State shared between the server's event-loop thread and the thread that drives the tests.

Everything the test thread can read or change while requests are in flight (recorded requests,
the scripted fault queue, scripted replies) sits behind one lock, so tests never see a half
update and never need to hop onto the server's event loop.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rlm_code.testing.faults import parse_fault_mode
from rlm_code.testing.formats.ollama import ollama_name

__all__ = ["PROTOCOLS", "RecordedRequest", "ServerConfig", "ServerState"]

PROTOCOLS: tuple[str, ...] = ("openai", "anthropic", "gemini", "ollama", "tgi", "llamacpp")

DEFAULT_MODELS: tuple[str, ...] = (
    "test-model",
    "llama3.2:latest",
    "qwen2.5-coder:7b",
    "gpt-4o-mini",
    "claude-sonnet-4-5-20250929",
    "gemini-2.5-flash",
)

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request as the server received it, for assertions in tests.

    ``headers`` has lower-case names; ``json`` is the parsed body or None. The repr hides key
    headers so a failing assertion does not print a key into CI logs.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes

    def __repr__(self) -> str:
        headers = {
            name: ("<redacted>" if name in _SECRET_HEADERS else value)
            for name, value in self.headers.items()
        }
        query = {name: ("<redacted>" if name == "key" else v) for name, v in self.query.items()}
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, query={query!r}, "
            f"headers={headers!r}, json={self.json!r})"
        )


@dataclass(frozen=True)
class ServerConfig:
    """The fixed settings of one server, validated by `LocalProtocolServer`."""

    protocols: frozenset[str] = frozenset(PROTOCOLS)
    require_key: str | bool | None = None
    latency_ms: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    strict_models: bool = False

    def enabled(self, *names: str) -> bool:
        """True when any of ``names`` is an enabled protocol."""
        return any(name in self.protocols for name in names)


@dataclass
class ServerState:
    """Mutable, lock-protected state of one running server."""

    config: ServerConfig
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _requests: list[RecordedRequest] = field(default_factory=list)
    _faults: deque[str | None] = field(default_factory=deque)
    _replies: dict[str, str] = field(default_factory=dict)

    # -- recording ------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- scripted faults ------------------------------------------------------------------------

    def script_faults(self, modes: Iterable[str]) -> None:
        parsed = [parse_fault_mode(mode) for mode in modes]  # validate all before queueing any
        with self._lock:
            self._faults.extend(parsed)

    def next_scripted_fault(self) -> str | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    def pending_faults(self) -> list[str]:
        with self._lock:
            return [mode or "ok" for mode in self._faults]

    # -- scripted replies -----------------------------------------------------------------------

    def set_reply(self, model: str, text: str | None) -> None:
        with self._lock:
            if text is None:
                self._replies.pop(model, None)
            else:
                self._replies[model] = text

    def reply_for(self, model: str) -> str | None:
        with self._lock:
            if model in self._replies:
                return self._replies[model]
            wanted = ollama_name(model)
            for name, text in self._replies.items():
                if ollama_name(name) == wanted:
                    return text
            return None

    # -- models ---------------------------------------------------------------------------------

    def model_exists(self, model: str) -> bool:
        wanted = ollama_name(model)
        return any(model == name or ollama_name(name) == wanted for name in self.config.models)
