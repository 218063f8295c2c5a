"""OpenAI through the official `openai` SDK (adapter type "openai", route "sdk").

One `OpenAI` client per connection, and one `AsyncOpenAI` per connection and event loop (the
async client's connection pool belongs to the loop that opened it; reusing it under a later
`asyncio.run` fails with "Event loop is closed"). Both are built with `max_retries=0` (our
`RetryPolicy` retries, the same way for every adapter, and never after a stream has started)
and with redirects off (see `_sdk`).

Requests use OpenAI's current parameter names: `max_completion_tokens` (not the deprecated
`max_tokens`, which reasoning models reject), `stop`, `temperature`, the system prompt as the
first message.

Calls go through the SDK's `with_streaming_response` (the SDK still builds, authenticates and
sends the request and maps error statuses), but the body is read and parsed here: so the
call's total deadline is checked between chunks, the body size is capped, and a stream stops
reading at `data: [DONE]` (the connection is closed rather than read to its end: a server
that trickles bytes after the end marker cannot hold the call). The SDK's own `Stream` also
ends quietly when a stream stops without `data: [DONE]`, so a cut stream would pass for a
complete one; here it raises, as the raw adapter does on the same bytes.

Usage: `prompt_tokens` includes the cached tokens (`prompt_tokens_details.cached_tokens`),
which are subtracted for `input_tokens` and reported as cache reads; `completion_tokens`
includes `completion_tokens_details.reasoning_tokens`.
"""

from __future__ import annotations

import json
from typing import Any

from rlm_code.core.exceptions import ProviderError, ResponseFormatError
from rlm_code.models.adapters._lines import SSEEvent, loads
from rlm_code.models.adapters._stainless import StainlessAdapter
from rlm_code.models.adapters.base import as_count, openai_messages
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

_DONE = b"[DONE]"


def _shape_error(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(
        f"{provider} sent a chat completion without {what}", provider=provider
    )


def _detail(data: dict[str, Any], key: str, field: str) -> int | None:
    details = data.get(key)
    return as_count(details.get(field)) if isinstance(details, dict) else None


def openai_usage(data: object) -> Usage:
    """A chat-completions `usage` object in our buckets (None where OpenAI did not say)."""
    if not isinstance(data, dict):
        return Usage()
    prompt = as_count(data.get("prompt_tokens"))
    cached = _detail(data, "prompt_tokens_details", "cached_tokens")
    if prompt is not None and cached is not None:
        cached = min(cached, prompt)
        prompt -= cached
    return Usage(
        prompt,
        as_count(data.get("completion_tokens")),
        cached,
        None,
        _detail(data, "completion_tokens_details", "reasoning_tokens"),
    )


def _error_event(data: dict[str, Any], provider: str) -> ProviderError:
    return ProviderError(
        f"{provider} failed mid-stream: {error_detail(json.dumps(data))}", provider=provider
    )


def parse_completion(data: object, provider: str) -> tuple[str, Usage, str | None]:
    """A `chat.completion` body -> (text, usage, raw finish reason)."""
    if not isinstance(data, dict):
        raise _shape_error(provider, "a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        if "error" in data:
            raise _error_event(data, provider)
        raise _shape_error(provider, "choices")
    choice = choices[0]
    message = choice.get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise _shape_error(provider, "text content")
    reason = choice.get("finish_reason")
    return text, openai_usage(data.get("usage")), reason if isinstance(reason, str) else None


class _StreamParser:
    """Chat-completion chunks -> events; remembers the finish reason until `[DONE]`."""

    __slots__ = ("done", "provider", "raw")

    def __init__(self, provider: str) -> None:
        self.provider = provider
        self.raw: str | None = None
        self.done = False

    def feed(self, event: SSEEvent) -> list[AdapterEvent]:
        payload = event.data.strip()
        if payload == _DONE:
            self.done = True
            return [StreamEnd(normalize_finish_reason(self.raw), self.raw)]
        if not payload:
            return []
        provider = self.provider
        chunk = loads(payload, provider)
        if not isinstance(chunk, dict):
            raise _shape_error(provider, "a JSON object in the stream")
        out: list[AdapterEvent] = []
        choices = chunk.get("choices")
        if choices:
            choice = choices[0] if isinstance(choices, list) else None
            if not isinstance(choice, dict):
                raise _shape_error(provider, "choices in the stream")
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self.raw = reason
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            if text is not None and not isinstance(text, str):
                raise _shape_error(provider, "text in the stream")
            if text:
                out.append(TextDelta(text))
        elif "error" in chunk:
            raise _error_event(chunk, provider)
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            out.append(UsageReport(openai_usage(usage)))
        return out


class OpenAIAdapter(StainlessAdapter):
    """Chat completions on the official SDK; see the module docstring."""

    adapter_type = "openai"
    end_marker = "data: [DONE]"
    sdk_module = "openai"
    sync_client = "OpenAI"
    async_client = "AsyncOpenAI"
    key_env = "OPENAI_API_KEY"

    def _arguments(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        p = request.params
        args: dict[str, Any] = {"model": request.model, "messages": openai_messages(request)}
        if p.max_tokens is not None:
            args["max_completion_tokens"] = p.max_tokens
        if p.temperature is not None:
            args["temperature"] = p.temperature
        if p.stop:
            args["stop"] = list(p.stop)
        if stream:
            args["stream"] = True
            args["stream_options"] = {"include_usage": True}
        return args

    def _create(self, client: Any) -> Any:
        return client.chat.completions.with_streaming_response.create

    def _parse(self, data: object) -> tuple[str, Usage, str | None]:
        return parse_completion(data, self.endpoint.provider_id)

    def _stream_parser(self) -> _StreamParser:
        return _StreamParser(self.endpoint.provider_id)


__all__ = ["OpenAIAdapter", "openai_usage", "parse_completion"]
