"""Protocol-neutral records shared by the server and the per-protocol format modules.

Each protocol module turns its request JSON into a `WireRequest`, and a `WireReply` (computed
once, the same way for every protocol) back into that protocol's JSON or stream frames. Keeping
the model logic out of the format modules is what makes the token numbers identical across
protocols.
"""

from __future__ import annotations

import json
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Literal, NamedTuple

from rlm_code.testing.scripted import WireToolCall, signature_of
from rlm_code.testing.text import split_pieces

__all__ = [
    "ErrorKind",
    "ErrorReply",
    "ErrorSpec",
    "StreamPlan",
    "WireError",
    "WireFormat",
    "WireReply",
    "WireRequest",
    "content_text",
    "dumps",
    "message_texts",
    "optional_int",
    "require_object",
    "required_text",
    "text_of_parts",
]

ErrorKind = Literal[
    "bad_request",  # 400: the request itself is invalid
    "auth_missing",  # no key although the server requires one
    "auth_invalid",  # a key that is not the required one
    "unauthorized",  # the ``401`` fault
    "not_found",  # unknown model (``404`` fault, Ollama, ``strict_models``)
    "rate_limit",  # the ``429`` fault
    "server_error",  # the ``500`` fault
    "unavailable",  # the ``503`` fault
]

JsonObject = dict[str, Any]


class ErrorSpec(NamedTuple):
    """One row of a protocol's error table: what the service answers for an `ErrorKind`."""

    status: int
    type: str  # the body's error type or status name; "" where the body has none
    message: str  # default text; ``{model}`` and ``{retry}`` (seconds) are filled in
    code: str | None = None  # OpenAI's machine-readable ``code``


def dumps(value: object) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept raw as the real services send it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WireError(Exception):
    """Raised while parsing a request; answered with the protocol's own error body."""

    def __init__(self, kind: ErrorKind, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message
        self.param = param


@dataclass(frozen=True)
class WireRequest:
    """What the server needs to know about one chat/generate request, whatever its protocol."""

    model: str
    texts: tuple[str, ...]  # text of every message, system prompt included
    last_user_text: str
    max_tokens: int | None = None
    stream: bool = False
    stream_usage: bool = False  # OpenAI ``stream_options.include_usage``
    endpoint: str = "chat"  # Ollama: "chat" or "generate"
    # Beyond text (see `scripted` for what the "model" does with these):
    tools: tuple[tuple[str, JsonObject], ...] = ()  # (name, parameters schema) offered
    tool_choice: str | None = None  # "auto", "none", "required" or "tool" (then forced_tool)
    forced_tool: str | None = None
    schema: JsonObject | None = None  # structured output asked for
    reasoning: bool = False  # reasoning / thinking asked for
    tool_results: tuple[str, ...] = ()  # the results in the last turn(s), when it holds some
    # What the real provider would refuse with a 400 in strict mode (forgotten tool results,
    # reasoning not sent back, a changed signature); answered only when the server is strict.
    strict_problem: WireError | None = None


@dataclass(frozen=True)
class WireReply:
    """The answer to one `WireRequest`, identical for every protocol."""

    request: WireRequest
    text: str
    prompt_tokens: int
    completion_tokens: int
    truncated: bool = False  # stopped by max_tokens
    usage: bool = True  # False for the ``no_usage`` fault
    tool_calls: tuple[WireToolCall, ...] = ()
    reasoning: str | None = None
    reasoning_tokens: int = 0  # part of completion_tokens
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:24])
    created: float = field(default_factory=time.time)

    @property
    def model(self) -> str:
        return self.request.model

    @cached_property
    def pieces(self) -> list[str]:
        """The reply's stream pieces (`split_pieces`), split once per reply."""
        return split_pieces(self.text)

    @cached_property
    def reasoning_pieces(self) -> list[str]:
        """The reasoning's stream pieces (none without reasoning)."""
        return split_pieces(self.reasoning) if self.reasoning else []

    @property
    def signature(self) -> str:
        """The signature of this reply's reasoning (`scripted.signature_of`)."""
        return signature_of(self.reasoning or "")

    @staticmethod
    def argument_pieces(call: WireToolCall) -> list[str]:
        """A tool call's argument text in the pieces a stream sends (at least one)."""
        pieces = split_pieces(call.arguments_json)
        return pieces if "".join(pieces) == call.arguments_json else [call.arguments_json]


@dataclass(frozen=True)
class ErrorReply:
    """An error answer: status, JSON (or plain text) body and extra headers."""

    status: int
    body: JsonObject | str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StreamPlan:
    """The frames of one streamed answer: opening frames, one content frame per reply piece,
    closing frames.

    ``content`` is produced on demand (usually a generator), so a reply of 100,000 pieces is
    encoded frame by frame while it is sent, between which the writer yields to the event loop,
    instead of in one block before the first byte that would stall every other request.
    ``content`` yields exactly ``piece_count`` frames; faults use the count to insert a
    malformed frame after the first content frame or cut the stream in the middle of the content.
    """

    head: Sequence[bytes]
    content: Iterable[bytes]
    piece_count: int
    tail: Sequence[bytes] = ()


class WireFormat(ABC):
    """One protocol's view of the wire: auth, request parsing, answers and errors."""

    name: str
    stream_content_type: str

    @abstractmethod
    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The API key the request carries, or None."""

    # kind -> how this service answers it; `error` fills in the text, `error_body` the shape.
    errors: ClassVar[Mapping[ErrorKind, ErrorSpec]]

    def error(
        self,
        kind: ErrorKind,
        *,
        model: str = "",
        message: str | None = None,
        param: str | None = None,
        retry_after: int = 1,
    ) -> ErrorReply:
        """This protocol's error answer for ``kind``; never includes the key.

        ``message`` replaces the default text; ``param`` names the offending request field;
        ``retry_after`` is the delay a rate-limit body may mention.
        """
        spec = self.errors[kind]
        if message is None:
            message = spec.message.format(model=model or "unknown", retry=retry_after)
        return ErrorReply(spec.status, self.error_body(kind, spec, message, param, retry_after))

    @abstractmethod
    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        """The JSON error body of this service, around the final ``text``."""

    @abstractmethod
    def malformed_frame(self) -> bytes:
        """A stream frame, framed correctly, whose JSON payload is invalid."""

    def response_headers(self) -> dict[str, str]:
        """Headers the real service adds to every answer (request ids and the like)."""
        return {}

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        """Turn a request body into a `WireRequest`, raising `WireError` when it is invalid."""
        raise WireError("bad_request", f"{self.name} has no chat endpoint {endpoint!r}")

    def render(self, completion: WireReply) -> JsonObject:
        """The non-streamed JSON answer."""
        raise NotImplementedError

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        """The streamed answer; ``terminate=False`` leaves out the end-of-stream marker."""
        raise NotImplementedError


def require_object(body: object) -> JsonObject:
    """The request body as a JSON object, else the 400 every service answers."""
    if not isinstance(body, dict):
        raise WireError("bad_request", "The request body is not a JSON object.")
    return body


def optional_int(value: object, param: str) -> int | None:
    """An integer request parameter (``max_tokens`` and friends), validated like the services."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise WireError("bad_request", f"{param}: Input should be a valid integer", param=param)
    if value < 0:
        raise WireError("bad_request", f"{param}: must be a non-negative integer", param=param)
    return value


def text_of_parts(parts: Sequence[object], *, key: str = "text") -> str:
    """Concatenate (no separator) the ``text`` of every text part/block in ``parts``."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, dict):
            value = part.get(key)
            kind = part.get("type")
            if isinstance(value, str) and kind in (None, "text", "input_text"):
                texts.append(value)
        elif isinstance(part, str):
            texts.append(part)
    return "".join(texts)


def content_text(content: Any) -> str:
    """The text of a message ``content`` that is a string or a list of text parts/blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return text_of_parts(content)
    return ""


def required_text(data: Mapping[str, Any], key: str, message: str) -> str:
    """A required non-empty string field (the model name), else a 400 naming the field."""
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise WireError("bad_request", message, param=key)
    return value


def message_texts(
    messages: Iterable[object],
    text_of: Callable[[Any], str],
    *,
    key: str = "content",
    invalid: str,
    param: str | None = None,
    default_role: str | None = None,
) -> tuple[list[str], str]:
    """The text of every message (``text_of`` applied to its ``key``) and of the last user one.

    Every chat protocol walks its message list the same way; only the field holding the text,
    how that field turns into text, the role a message without one has and the 400 message for
    a message that is not an object differ.
    """
    texts: list[str] = []
    last_user = ""
    for message in messages:
        if not isinstance(message, dict):
            raise WireError("bad_request", invalid, param=param)
        text = text_of(message.get(key))
        texts.append(text)
        if message.get("role", default_role) == "user":
            last_user = text
    return texts, last_user
