"""Tool calls as they arrive: one assembler for every wire format.

Providers send a tool call either whole (Gemini `functionCall`, Ollama `tool_calls`, any
non-streamed reply) or in pieces (OpenAI-style `delta.tool_calls[i].function.arguments`
fragments, Anthropic `input_json_delta`). Either way the caller sees the same thing: one
`ToolCallDelta` per piece, then one `ToolCallDone` with the parsed call. The arguments are
parsed once, when the call is whole; arguments that are not a JSON object are a typed
`ResponseFormatError` — never a half-parsed call handed to the agent.

`arguments_json` is the exact string the model sent. APIs that send arguments as an object
(Anthropic, Gemini, Ollama) have no such string, so `canonical_json` writes one the same way
in whole and streamed replies, and the two reassemble to the same `Response`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from rlm_code.core.exceptions import ResponseFormatError
from rlm_code.models.types import ToolCall, ToolCallDelta, ToolCallDone


def new_call_id() -> str:
    """A unique id for a provider that gives its tool calls none (Gemini, Ollama)."""
    return "call_" + uuid.uuid4().hex[:24]


def canonical_json(arguments: object) -> str:
    """The arguments object as text, written one way everywhere (UTF-8 kept as is)."""
    return json.dumps(arguments, ensure_ascii=False)


def parse_arguments(provider: str, name: str, arguments_json: str) -> dict[str, Any]:
    """A tool call's arguments as a dict. An empty string means no arguments (OpenAI sends it
    for tools without parameters); anything else must be a JSON object."""
    if not arguments_json.strip():
        return {}
    try:
        value = json.loads(arguments_json)
    except ValueError as exc:
        raise ResponseFormatError(
            f"{provider} sent tool call {name!r} with arguments that are not valid JSON "
            f"({exc.args[0]})",
            provider=provider,
            hint="The reply may have been cut off (max_tokens) or the model wrote broken "
            "JSON; retry, or raise max_tokens.",
        ) from None
    if not isinstance(value, dict):
        raise ResponseFormatError(
            f"{provider} sent tool call {name!r} with arguments that are not a JSON object",
            provider=provider,
        )
    return value


def tool_call(
    provider: str,
    call_id: str | None,
    name: object,
    arguments_json: str,
    extra: dict[str, Any] | None = None,
) -> ToolCall:
    """A whole tool call, checked: it has a name, and its arguments parse."""
    if not isinstance(name, str) or not name:
        raise ResponseFormatError(f"{provider} sent a tool call without a name", provider=provider)
    arguments = parse_arguments(provider, name, arguments_json)
    return ToolCall(call_id or new_call_id(), name, arguments, arguments_json, extra)


class _Pending:
    __slots__ = ("extra", "fragments", "id", "name")

    def __init__(self) -> None:
        self.id: str | None = None
        self.name: str | None = None
        self.fragments: list[str] = []
        self.extra: dict[str, Any] | None = None


class ToolCallAssembler:
    """Pieces of tool calls, keyed by their index in the reply -> deltas, then whole calls.

    `add` takes one piece (id and name when the provider sends them, usually on the first
    piece) and returns the `ToolCallDelta` to show; `done(index)` (when the provider closes
    one call) or `finish()` (at the end of the reply, for APIs that close them all at once)
    returns the `ToolCallDone`s in index order. A call is done once."""

    __slots__ = ("_pending", "_provider", "finished")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._pending: dict[int, _Pending] = {}
        self.finished: list[ToolCall] = []

    def __bool__(self) -> bool:
        return bool(self._pending) or bool(self.finished)

    def add(
        self,
        index: int,
        call_id: str | None,
        name: str | None,
        fragment: str,
        extra: dict[str, Any] | None = None,
    ) -> ToolCallDelta:
        pending = self._pending.get(index)
        if pending is None:
            pending = self._pending[index] = _Pending()
        if call_id:
            pending.id = call_id
        if name:
            pending.name = name if pending.name is None else pending.name
        if extra:
            pending.extra = extra
        if fragment:
            pending.fragments.append(fragment)
        return ToolCallDelta(index, call_id or None, name or None, fragment)

    def done(self, index: int) -> ToolCallDone | None:
        """Close the `index`-th call (None when there is no such open call)."""
        pending = self._pending.pop(index, None)
        if pending is None:
            return None
        call = tool_call(
            self._provider, pending.id, pending.name, "".join(pending.fragments), pending.extra
        )
        self.finished.append(call)
        return ToolCallDone(call)

    def finish(self) -> list[ToolCallDone]:
        """Close every open call, in index order."""
        return [done for i in sorted(self._pending) if (done := self.done(i)) is not None]
