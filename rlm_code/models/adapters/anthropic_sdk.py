"""Anthropic through the official `anthropic` SDK (adapter type "anthropic", route "sdk").

One `Anthropic` client per connection and one `AsyncAnthropic` per connection and event loop
(an async client's pool belongs to its loop), both with `max_retries=0` (our `RetryPolicy`
retries, the same way for every adapter, and never after a stream has started) and with
redirects off (see `_sdk`).

Mapping to the Messages API:

- the system prompt goes in the real `system` field, never as a message;
- `max_tokens` is required by the API: when the caller gives none we send
  `DEFAULT_MAX_TOKENS` (4096), enough for a long answer from every current model and accepted
  by all of them (older models cap output at 4096 or 8192);
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
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rlm_code.core.exceptions import ProviderError, ResponseFormatError
from rlm_code.models.adapters._lines import SSEEvent, loads
from rlm_code.models.adapters._stainless import StainlessAdapter
from rlm_code.models.adapters.base import as_count
from rlm_code.models.adapters.errors import error_detail
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    StreamEnd,
    TextDelta,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

DEFAULT_MAX_TOKENS = 4096


def anthropic_usage(data: object) -> Usage | None:
    """A Messages `usage` object in our buckets; None when it is not an object."""
    if not isinstance(data, dict):
        return None
    return Usage(
        as_count(data.get("input_tokens")),
        as_count(data.get("output_tokens")),
        as_count(data.get("cache_read_input_tokens")),
        as_count(data.get("cache_creation_input_tokens")),
    )


def _shape_error(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(f"{provider} sent a message without {what}", provider=provider)


def parse_message(data: object, provider: str) -> tuple[str, Usage, str | None]:
    """A Messages API `message` body -> (text, usage, raw stop reason)."""
    if not isinstance(data, dict):
        raise _shape_error(provider, "a JSON object")
    content = data.get("content")
    if not isinstance(content, list):
        if "error" in data:
            raise _failed(data, provider)
        raise _shape_error(provider, "content")
    text = "".join(
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )
    reason = data.get("stop_reason")
    usage = anthropic_usage(data.get("usage")) or Usage()
    return text, usage, reason if isinstance(reason, str) else None


def _failed(data: dict[str, Any], provider: str) -> ProviderError:
    return ProviderError(
        f"{provider} failed mid-stream: {error_detail(json.dumps(data))}", provider=provider
    )


class _StreamParser:
    """Messages stream events -> our events; `done` once `message_stop` arrived."""

    __slots__ = ("done", "provider", "raw")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.raw: str | None = None
        self.done = False

    def event(self, sse: SSEEvent) -> list[AdapterEvent]:
        if sse.event == "ping" or not sse.data.strip():
            return []
        provider = self.provider
        event = loads(sse.data, provider)
        if not isinstance(event, dict):
            raise _shape_error(provider, "a JSON object in the stream")
        kind = event.get("type")
        if kind == "content_block_delta":
            delta = event.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                text = delta.get("text")
                if not isinstance(text, str):
                    raise _shape_error(provider, "text in a text delta")
                return [TextDelta(text)] if text else []
            return []  # thinking, signatures, tool input: not part of the reply text
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
            self.done = True
            return [StreamEnd(normalize_finish_reason(self.raw), self.raw)]
        if kind == "error" or sse.event == "error":
            raise _failed(event, provider)
        return []


class AnthropicAdapter(StainlessAdapter):
    """Messages API on the official SDK; see the module docstring."""

    adapter_type = "anthropic"
    end_marker = "message_stop"
    sdk_module = "anthropic"
    sync_client = "Anthropic"
    async_client = "AsyncAnthropic"
    key_env = "ANTHROPIC_API_KEY"

    def _arguments(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        p = request.params
        args: dict[str, Any] = {
            "model": request.model,
            "max_tokens": p.max_tokens if p.max_tokens is not None else DEFAULT_MAX_TOKENS,
            "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        }
        if request.system:
            args["system"] = request.system
        if p.temperature is not None:
            # anthropic 2.x no longer lists `temperature` among `create`'s arguments; the API
            # still takes it (for the models that support sampling settings).
            args["extra_body"] = {"temperature": p.temperature}
        if p.stop:
            args["stop_sequences"] = list(p.stop)
        if stream:
            args["stream"] = True
        return args

    def _create(self, client: Any) -> Any:
        return client.messages.with_streaming_response.create

    def _parse(self, data: object) -> tuple[str, Usage, str | None]:
        return parse_message(data, self.endpoint.provider_id)

    def _stream_parser(self) -> _StreamParser:
        return _StreamParser(self.endpoint.provider_id)


__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicAdapter", "anthropic_usage", "parse_message"]
