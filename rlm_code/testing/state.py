"""State shared between the server's event-loop thread and the thread that drives the tests.

Everything the test thread can read or change while requests are in flight (recorded requests,
the scripted fault queue, scripted replies) sits behind one lock, so tests never see a half
update and never need to hop onto the server's event loop.

What is recorded is bounded, because ``serve-local`` may run for days and receive large
requests: the newest `ServerConfig.max_recorded_requests` requests are kept (older ones are
dropped), and of each body at most `ServerConfig.max_recorded_body` bytes; a longer body is
kept cut to that size, with ``json`` None, ``body_size`` its real length and ``truncated``
True. So the recorded bodies never hold more than the product of the two limits.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from rlm_code.testing.faults import parse_fault_mode
from rlm_code.testing.formats.ollama import ollama_name
from rlm_code.testing.scripted import ScriptedReply

__all__ = [
    "DEFAULT_MAX_RECORDED_BODY",
    "DEFAULT_MAX_RECORDED_REQUESTS",
    "PROTOCOLS",
    "RecordedRequest",
    "ServerConfig",
    "ServerState",
]

PROTOCOLS: tuple[str, ...] = ("openai", "anthropic", "gemini", "ollama", "tgi", "llamacpp")

DEFAULT_MODELS: tuple[str, ...] = (
    "test-model",
    "llama3.2:latest",
    "qwen2.5-coder:7b",
    "gpt-4o-mini",
    "claude-sonnet-4-5-20250929",
    "gemini-2.5-flash",
)

DEFAULT_MAX_RECORDED_REQUESTS = 1000
DEFAULT_MAX_RECORDED_BODY = 64 * 1024  # bytes kept of one request body

_SECRET_HEADERS = frozenset({"authorization", "x-api-key", "x-goog-api-key", "api-key"})


@dataclass(frozen=True, repr=False)
class RecordedRequest:
    """One request as the server received it, for assertions in tests.

    ``headers`` has lower-case names; ``json`` is the parsed body or None. ``body`` is the body
    as received, or its first ``max_recorded_body`` bytes when ``truncated`` (then ``json`` is
    None too, so a large request is not kept alive as parsed objects); ``body_size`` is the
    length received. The repr hides key headers so a failing assertion does not print a key
    into CI logs.
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    body: bytes
    body_size: int = -1  # -1: len(body)
    truncated: bool = False

    def __post_init__(self) -> None:
        if self.body_size < 0:
            object.__setattr__(self, "body_size", len(self.body))

    def bounded(self, max_body: int) -> RecordedRequest:
        """This record with its body cut to ``max_body`` bytes (and no JSON) if longer."""
        if len(self.body) <= max_body:
            return self
        return replace(self, json=None, body=self.body[:max_body], truncated=True)

    def __repr__(self) -> str:
        headers = {
            name: ("<redacted>" if name in _SECRET_HEADERS else value)
            for name, value in self.headers.items()
        }
        query = {name: ("<redacted>" if name == "key" else v) for name, v in self.query.items()}
        return (
            f"RecordedRequest(method={self.method!r}, path={self.path!r}, query={query!r}, "
            f"headers={headers!r}, json={self.json!r}, body_size={self.body_size})"
        )


@dataclass(frozen=True)
class ServerConfig:
    """The fixed settings of one server, validated by `LocalProtocolServer`."""

    protocols: frozenset[str] = frozenset(PROTOCOLS)
    require_key: str | bool | None = None
    latency_ms: int = 0
    models: tuple[str, ...] = DEFAULT_MODELS
    strict_models: bool = False
    strict: bool = False  # answer forgotten tool results / reasoning with the real 400s
    max_recorded_requests: int = DEFAULT_MAX_RECORDED_REQUESTS
    max_recorded_body: int = DEFAULT_MAX_RECORDED_BODY
    ratelimit: tuple[int, float] | None = None  # (requests, window seconds): see testing.limits

    def enabled(self, *names: str) -> bool:
        """True when any of ``names`` is an enabled protocol."""
        return any(name in self.protocols for name in names)


@dataclass
class ServerState:
    """Mutable, lock-protected state of one running server."""

    config: ServerConfig
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _requests: deque[RecordedRequest] = field(init=False)
    _faults: deque[str | None] = field(default_factory=deque)
    _replies: dict[str, str] = field(default_factory=dict)
    _queued: deque[ScriptedReply] = field(default_factory=deque)
    _load: dict[str, int] = field(default_factory=dict)
    _peers: dict[object, None] = field(default_factory=dict)  # bounded, oldest first
    _window: list[float] = field(default_factory=lambda: [0.0, 0.0])  # start, requests

    def __post_init__(self) -> None:
        self._requests = deque(maxlen=self.config.max_recorded_requests)
        self.reset_counters()

    # -- load counters (rlm_code.testing.limits) ---------------------------------------------

    def reset_counters(self) -> None:
        with self._lock:
            self._load.update(in_flight=0, max_in_flight=0, connections_opened=0)
            self._peers.clear()

    def counter(self, name: str) -> int:
        with self._lock:
            return self._load[name]

    def enter(self) -> None:
        with self._lock:
            load = self._load
            load["in_flight"] += 1
            load["max_in_flight"] = max(load["max_in_flight"], load["in_flight"])

    def leave(self) -> None:
        with self._lock:
            self._load["in_flight"] -= 1

    def opened_by(self, peer: object) -> None:
        """Count a connection the first time its client address and port send a request."""
        if peer is None:
            return
        with self._lock:
            if peer in self._peers:
                return
            self._peers[peer] = None
            self._load["connections_opened"] += 1
            if len(self._peers) > 65536:
                del self._peers[next(iter(self._peers))]

    def take_request(self, limit: tuple[int, float], now: float) -> tuple[bool, dict[str, str]]:
        """Count one request against the fixed window; `(allowed, rate-limit headers)`."""
        allowed_n, span = limit
        with self._lock:
            start, used = self._window
            if now - start >= span:
                start, used = now, 0.0
            allowed = used < allowed_n
            if allowed:
                used += 1
            self._window[:] = [start, used]
        reset = max(0.0, start + span - now)
        return allowed, {
            "x-ratelimit-limit-requests": str(allowed_n),
            "x-ratelimit-remaining-requests": str(int(allowed_n - used)),
            "x-ratelimit-reset-requests": f"{reset:.3f}s",
        }

    # -- recording ------------------------------------------------------------------------------

    def record(self, request: RecordedRequest) -> None:
        """Keep ``request`` (body cut to the limit); the oldest record goes when full."""
        kept = request.bounded(self.config.max_recorded_body)
        with self._lock:
            self._requests.append(kept)

    def recorded_bytes(self) -> int:
        """Bytes of request bodies the server holds now (at most both limits multiplied)."""
        with self._lock:
            return sum(len(request.body) for request in self._requests)

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

    def queue_replies(self, replies: Iterable[ScriptedReply]) -> None:
        items = list(replies)
        if not all(isinstance(item, ScriptedReply) for item in items):
            raise TypeError("queue_replies takes ScriptedReply objects")
        with self._lock:
            self._queued.extend(items)

    def next_queued_reply(self) -> ScriptedReply | None:
        with self._lock:
            return self._queued.popleft() if self._queued else None

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
