"""Anthropic through the official `anthropic` SDK (adapter type "anthropic", route "sdk").

One `Anthropic` client per connection and one `AsyncAnthropic` per connection and event loop
(an async client's pool belongs to its loop), both with `max_retries=0` (our `RetryPolicy`
retries, the same way for every adapter, and never after a stream has started) and with
redirects off (see `_sdk`).

Mapping to the Messages API (the request body and the reply parsers live in
`_anthropic_wire`, which also documents tools, thinking, images and structured output):

- the system prompt goes in the real `system` field, never as a message;
- `max_tokens` is required by the API: when the caller gives none we send
  `DEFAULT_MAX_TOKENS` (4096), enough for a long answer from every current model and accepted
  by all of them (older models cap output at 4096 or 8192); with reasoning, the thinking
  budget on top of it;
- `stop` becomes `stop_sequences`; `temperature` is sent as is, in the request body (the 2.x
  SDK dropped it from `create`'s typed arguments, the API still accepts it).

As for OpenAI, calls go through the SDK's `with_streaming_response` and the body is read and
parsed here: the call's total deadline is checked between chunks, the size is capped, and a
stream stops reading at `message_stop` (a server that keeps the connection open after it
cannot hold the call); a stream that ends without `message_stop` raises.

Usage: Anthropic reports `input_tokens` without the cached tokens, and the cache reads and
writes apart (`cache_read_input_tokens`, `cache_creation_input_tokens`): exactly our buckets.
A stream reports them in `message_start` (so a stream stopped early still records its input)
and the output count in `message_delta` (`message_start`'s provisional output count is
ignored).

A stream gives what a whole reply gives (`MessageEvents`): `ReasoningDelta` per
`thinking_delta`, `ToolCallDelta` per `input_json_delta` (id and name on the first),
`ToolCallDone` at the call's `content_block_stop` (the joined pieces parsed, then written with
`canonical_json` as a whole reply's `input` is), `ReplayDetail` at each thinking block's stop
(with the signature its `signature_delta` brought) and at each `redacted_thinking` block's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rlm_code.core.exceptions import ResponseFormatError
from rlm_code.models.adapters._anthropic_wire import (
    DEFAULT_MAX_TOKENS,
    anthropic_usage,
    failed,
    parse_message,
    request_body,
    shape_error,
    text_field,
)
from rlm_code.models.adapters._lines import SSEEvent, loads
from rlm_code.models.adapters._stainless import StainlessAdapter
from rlm_code.models.adapters._tool_calls import ToolCallAssembler, canonical_json
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    ReasoningDelta,
    ReplayDetail,
    Response,
    StreamEnd,
    TextDelta,
    ToolCallDone,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

# -- streams ------------------------------------------------------------------------------------


class _Block:
    """An open content block that is not plain text: thinking, redacted thinking or a call."""

    __slots__ = ("data", "id", "kind", "name", "ordinal", "parts", "sent", "signature", "start")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.parts: list[str] = []
        self.signature = ""
        self.data = ""
        self.id: str | None = None
        self.name: str | None = None
        self.ordinal = 0
        self.sent = False  # a ToolCallDelta went out for this call
        self.start = ""  # arguments some servers put in content_block_start's `input`


def _index(event: dict[str, Any]) -> int:
    """A content block's index (-1 for anything but an int: the key must be hashable)."""
    index = event.get("index")
    return index if isinstance(index, int) else -1


def _canonical(done: ToolCallDone) -> ToolCallDone:
    call = done.tool_call
    return ToolCallDone(replace(call, arguments_json=canonical_json(call.arguments)))


class MessageEvents:
    """Messages stream events -> our events; `done` once `message_stop` arrived.

    A text delta costs what it did before tool calls existed: it is the first thing checked,
    and only blocks that are not text (thinking, tool calls) are tracked."""

    __slots__ = ("_blocks", "_calls", "_count", "done", "provider", "raw")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.raw: str | None = None
        self.done = False
        self._blocks: dict[int, _Block] = {}
        self._calls = ToolCallAssembler(provider)
        self._count = 0  # tool calls seen: the next call's index

    def event(self, sse: SSEEvent) -> list[AdapterEvent]:
        if sse.event == "ping" or not sse.data.strip():
            return []
        provider = self.provider
        event = loads(sse.data, provider)
        if not isinstance(event, dict):
            raise shape_error(provider, "a JSON object in the stream")
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta")
            if not isinstance(delta, dict):
                return []
            if delta.get("type") == "text_delta":
                text = delta.get("text")
                if not isinstance(text, str):
                    raise shape_error(provider, "text in a text delta")
                return [TextDelta(text)] if text else []
            return self._delta(_index(event), delta)
        if kind == "content_block_start":
            return self._start(_index(event), event.get("content_block"))
        if kind == "content_block_stop":
            block = self._blocks.pop(_index(event), None)
            return self._stop(block) if block is not None else []
        if kind == "message_start":
            message = event.get("message")
            usage = anthropic_usage(message.get("usage") if isinstance(message, dict) else None)
            if usage is None:
                return []
            # Its output count is provisional (the real one comes in message_delta): left out,
            # so a stream stopped early does not count a token that may never have come.
            return [UsageReport(replace(usage, output_tokens=None))]
        if kind == "message_delta":
            delta = event.get("delta")
            reason = delta.get("stop_reason") if isinstance(delta, dict) else None
            if isinstance(reason, str):
                self.raw = reason
            usage = anthropic_usage(event.get("usage"))
            return [UsageReport(usage)] if usage is not None else []
        if kind == "message_stop":
            if self._blocks:
                raise shape_error(provider, "the end of every content block before message_stop")
            self.done = True
            return [StreamEnd(normalize_finish_reason(self.raw), self.raw)]
        if kind == "error" or sse.event == "error":
            raise failed(event, provider)
        return []

    def _start(self, index: int, block: object) -> list[AdapterEvent]:
        if not isinstance(block, dict):
            raise shape_error(self.provider, "a content block in content_block_start")
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return [TextDelta(text)] if isinstance(text, str) and text else []
        if kind == "tool_use":
            tracked = self._blocks[index] = _Block(kind)
            call_id, name, start = block.get("id"), block.get("name"), block.get("input")
            tracked.id = call_id if isinstance(call_id, str) else None
            tracked.name = name if isinstance(name, str) else None
            tracked.start = canonical_json(start) if isinstance(start, dict) and start else ""
            tracked.ordinal = self._count
            self._count += 1
            return []
        if kind == "thinking":
            tracked = self._blocks[index] = _Block(kind)
            thinking = text_field(block, "thinking", self.provider)
            tracked.signature = text_field(block, "signature", self.provider)
            tracked.parts.append(thinking)
            return [ReasoningDelta(thinking)] if thinking else []
        if kind == "redacted_thinking":
            tracked = self._blocks[index] = _Block(kind)
            tracked.data = text_field(block, "data", self.provider)
        return []  # server tool blocks and the like: nothing of ours

    def _delta(self, index: int, delta: dict[str, Any]) -> list[AdapterEvent]:
        kind = delta.get("type")
        block = self._blocks.get(index)
        if kind == "thinking_delta":
            text = text_field(delta, "thinking", self.provider)
            if block is not None:
                block.parts.append(text)
            return [ReasoningDelta(text)] if text else []
        if kind == "signature_delta":
            if block is not None:
                block.signature += text_field(delta, "signature", self.provider)
            return []
        if kind == "input_json_delta":
            piece = text_field(delta, "partial_json", self.provider)
            if block is None or block.kind != "tool_use":
                raise shape_error(self.provider, "a tool_use block for an input_json_delta")
            first = not block.sent
            block.sent = True
            return [
                self._calls.add(
                    block.ordinal, block.id if first else None, block.name if first else None, piece
                )
            ]
        return []  # citations and other deltas: not part of our reply

    def _stop(self, block: _Block) -> list[AdapterEvent]:
        kind = block.kind
        if kind == "thinking":
            detail = {
                "type": "thinking",
                "thinking": "".join(block.parts),
                "signature": block.signature,
            }
            return [ReplayDetail(detail)]
        if kind == "redacted_thinking":
            return [ReplayDetail({"type": "redacted_thinking", "data": block.data})]
        events: list[AdapterEvent] = []
        if not block.sent:  # a call without input deltas (no arguments, or all of them at start)
            events.append(self._calls.add(block.ordinal, block.id, block.name, block.start))
        done = self._calls.done(block.ordinal)
        if done is not None:
            events.append(_canonical(done))
        return events


# The stream parser under the name the adapter tests know it by.
_StreamParser = MessageEvents


class AnthropicAdapter(StainlessAdapter):
    """Messages API on the official SDK; see the module docstring."""

    adapter_type = "anthropic"
    end_marker = "message_stop"
    sdk_module = "anthropic"
    sync_client = "Anthropic"
    async_client = "AsyncAnthropic"
    key_env = "ANTHROPIC_API_KEY"

    def _arguments(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        transform = getattr(self._sdk, "transform_schema", None)
        return request_body(request, stream, self.endpoint.provider_id, transform)

    def _create(self, client: Any) -> Any:
        return client.messages.with_streaming_response.create

    def _parse(self, data: object) -> tuple[str, Usage, str | None]:
        reply = parse_message(data, self.endpoint.provider_id)
        return reply.text, reply.usage, reply.stop_reason

    def _reply(self, request: ChatRequest, body: bytes) -> Response:
        reply = parse_message(loads(body, self.endpoint.provider_id), self.endpoint.provider_id)
        return self.reply(
            request,
            reply.text,
            reply.usage,
            reply.stop_reason,
            tool_calls=reply.tool_calls,
            reasoning=reply.reasoning,
            reasoning_details=reply.details,
        )

    def _stream_parser(self) -> MessageEvents:
        return MessageEvents(self.endpoint.provider_id)

    def count_tokens(self, request: ChatRequest) -> int:
        """`messages.count_tokens` with the same messages, system prompt, tools and thinking
        the call would send."""
        args = self._arguments(request, False)
        counted = {key: value for key, value in args.items() if key in _COUNTED}

        def attempt() -> int:
            with self._errors.at(request.model):
                answer = self._client.messages.count_tokens(**counted)
            tokens = getattr(answer, "input_tokens", None)
            if not isinstance(tokens, int) or isinstance(tokens, bool):
                raise ResponseFormatError(
                    f"{self.endpoint.provider_id} sent a token count without input_tokens",
                    provider=self.endpoint.provider_id,
                )
            return tokens

        return self._retry.call(attempt)


# What `messages.count_tokens` takes of a `messages.create` request.
_COUNTED = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})


__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicAdapter",
    "MessageEvents",
    "anthropic_usage",
    "parse_message",
]
