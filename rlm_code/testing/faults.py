"""Fault modes of the local protocol server: which exist, how a request picks one.

A connector is only as good as its handling of the ways real services fail, so every request can
ask for a failure. The precedence is: the ``X-Fault`` request header, then a model named
``fault-MODE``, then the next entry of the server's FIFO set with ``script_faults``. What each
mode sends on the wire is described in the `rlm_code.testing` package docstring.

This module holds only the protocol-neutral parts (names, parameters, byte-level helpers); the
protocol-specific error bodies live in `rlm_code.testing.formats`. The `BODY_FAULTS` (a
context too long, content refused, a parameter the model does not take) are each protocol's
own answer (`FaultBodies.fault_error`); a protocol whose service has no such error answers
normally.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from rlm_code.testing.wire import ErrorReply, WireFormat

__all__ = [
    "BAD_UTF8_BYTES",
    "BAD_UTF8_MARK",
    "BODY_FAULTS",
    "DEFAULT_CONTEXT_LIMIT",
    "DEFAULT_CONTEXT_REQUESTED",
    "DEFAULT_DRIP_MS",
    "DEFAULT_RETRY_AFTER",
    "FAULT_MODES",
    "SPLIT_UTF8_TEXT",
    "STATUS_FAULTS",
    "Fault",
    "FaultBodies",
    "UnknownFaultError",
    "fault_from_model",
    "fault_reply",
    "int_header",
    "is_fault_model",
    "parse_fault_mode",
    "split_inside_characters",
]

FAULT_MODES: tuple[str, ...] = (
    "429",
    "401",
    "404",
    "500",
    "503",
    "html",
    "malformed",
    "truncate",
    "no_terminator",
    "bad_utf8",
    "split_utf8",
    "empty",
    "empty_body",
    "drip",
    "hang",
    "no_usage",
    "context_length",
    "content_filter",
    "unsupported_parameter",
)

# Modes answered with an error status before any model work is done.
STATUS_FAULTS = frozenset({"429", "401", "404", "500", "503", "html"})
# Modes answered with the protocol's own body for that error (a POST only), before any model
# work; `fault_reply` gives it, or None where the service has no such error.
BODY_FAULTS = frozenset({"context_length", "content_filter", "unsupported_parameter"})

DEFAULT_RETRY_AFTER = 1
DEFAULT_DRIP_MS = 200
# The figures of the ``context_length`` fault: the model's window and what the request "needs"
# (``X-Context-Limit`` and ``X-Context-Requested`` change them).
DEFAULT_CONTEXT_LIMIT = 4096
DEFAULT_CONTEXT_REQUESTED = 5000

# The reply of the ``split_utf8`` mode: two- and three-byte UTF-8 characters, each of which is
# cut between two TCP writes.
SPLIT_UTF8_TEXT = "héllo → 日本"

# ``bad_utf8`` puts this marker into the reply text; the writer swaps its UTF-8 encoding for
# `BAD_UTF8_BYTES` after JSON encoding, because JSON itself cannot carry invalid UTF-8.
BAD_UTF8_MARK = "\ue000\ue001"
BAD_UTF8_BYTES = b"\xff\xfe"

FAULT_MODEL_PREFIX = "fault-"


class UnknownFaultError(ValueError):
    """A fault mode name that is not in `FAULT_MODES`."""

    def __init__(self, mode: str) -> None:
        super().__init__(f"unknown fault mode {mode!r}; known modes: {', '.join(FAULT_MODES)}")
        self.mode = mode


@dataclass(frozen=True)
class Fault:
    """One chosen fault with its parameters (from ``X-Retry-After``, ``X-Drip-Ms``,
    ``X-Context-Limit`` and ``X-Context-Requested``)."""

    mode: str
    retry_after: int = DEFAULT_RETRY_AFTER
    drip_ms: int = DEFAULT_DRIP_MS
    context_limit: int = DEFAULT_CONTEXT_LIMIT
    context_requested: int = DEFAULT_CONTEXT_REQUESTED

    @classmethod
    def from_headers(cls, mode: str, headers: Mapping[str, str]) -> Fault:
        return cls(
            mode=mode,
            retry_after=int_header(headers, "x-retry-after", DEFAULT_RETRY_AFTER),
            drip_ms=int_header(headers, "x-drip-ms", DEFAULT_DRIP_MS),
            context_limit=int_header(headers, "x-context-limit", DEFAULT_CONTEXT_LIMIT),
            context_requested=int_header(headers, "x-context-requested", DEFAULT_CONTEXT_REQUESTED),
        )


@runtime_checkable
class FaultBodies(Protocol):
    """A protocol that answers the `BODY_FAULTS` with its service's own bodies."""

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        """The answer to ``fault`` for a request (``body``: its JSON, ``path``: its URL path),
        or None when the service has no such error and answers normally."""


def fault_reply(
    fmt: WireFormat, fault: Fault, *, model: str, body: object, path: str
) -> ErrorReply | None:
    """``fmt``'s answer to a body fault, None when it has none (the request goes on)."""
    if not isinstance(fmt, FaultBodies):
        return None
    return fmt.fault_error(fault, model=model, body=body, path=path)


def parse_fault_mode(mode: str) -> str | None:
    """Validate one fault name; ``"ok"`` (no fault) gives None."""
    name = mode.strip().lower()
    if name == "ok":
        return None
    if name not in FAULT_MODES:
        raise UnknownFaultError(mode)
    return name


def fault_from_model(model: str) -> str | None:
    """The fault a model name asks for (``fault-429`` gives ``"429"``), if any.

    Unknown ``fault-...`` names raise `UnknownFaultError`, so a typo is loud, not a silent echo.
    An Ollama-style ``:tag`` suffix is ignored.
    """
    name = model.rsplit("/", 1)[-1]
    if not name.startswith(FAULT_MODEL_PREFIX):
        return None
    mode = name[len(FAULT_MODEL_PREFIX) :]
    if mode.endswith(":latest"):
        mode = mode[: -len(":latest")]
    return parse_fault_mode(mode)


def is_fault_model(model: str) -> bool:
    """True for a ``fault-MODE`` name with a known mode; such models exist on every route."""
    try:
        return fault_from_model(model) is not None
    except UnknownFaultError:
        return False


def split_inside_characters(data: bytes) -> list[bytes]:
    """Cut ``data`` right after the first byte of every multi-byte UTF-8 character.

    Each returned segment is sent as its own TCP write, so a client that decodes bytes per read
    instead of per stream sees broken characters.
    """
    segments: list[bytes] = []
    start = 0
    for index, byte in enumerate(data):
        if byte >= 0xC0 and index + 1 < len(data):  # lead byte of a multi-byte character
            segments.append(data[start : index + 1])
            start = index + 1
    segments.append(data[start:])
    return [segment for segment in segments if segment]


def int_header(headers: Mapping[str, str], name: str, default: int) -> int:
    """A non-negative integer request header; absent or unparsable gives ``default``."""
    value = headers.get(name)
    if value is None:
        return default
    try:
        return max(0, int(value.strip()))
    except ValueError:
        return default
