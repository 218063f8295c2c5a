"""OpenAI-compatible chat completions over raw HTTP: every cloud host and local server that
speaks `/v1/chat/completions` (vLLM, LM Studio, SGLang, TGI, MLX, llama.cpp, OpenRouter,
Groq, DeepSeek, ...).

No SDK: `httpx2` for blocking calls and `aiohttp` for async ones, so this path stays within a
few percent of a bare HTTP client. Streams ask for usage (`stream_options.include_usage`)
and must end with `data: [DONE]`; a stream that stops without it raises, because the reply
may be incomplete. Streams are parsed by the SSE rules (`_lines.SSEDecoder`).

Usage buckets: `prompt_tokens` includes cached prompt tokens, reported as
`prompt_tokens_details.cached_tokens` (OpenAI and most hosts) or `prompt_cache_hit_tokens`
(DeepSeek); they are moved to `cache_read_tokens` and subtracted from the input count.
`completion_tokens_details.reasoning_tokens` is the reasoning part of the output.

The key is optional: without one no `Authorization` header is sent
(OpenCode's keyless mode, local servers).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from rlm_code.core.exceptions import (
    ModelError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ResponseFormatError,
)
from rlm_code.models.adapters._lines import SSEDecoder, SSEEvent, loads
from rlm_code.models.adapters.base import add_sampling, as_count, openai_messages
from rlm_code.models.adapters.errors import error_detail
from rlm_code.models.adapters.http_adapter import HTTPAdapter
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    Response,
    StreamEnd,
    TextDelta,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

_DONE = b"[DONE]"


def chat_payload(request: ChatRequest, stream: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": openai_messages(request),
        "stream": stream,
    }
    if stream:
        payload["stream_options"] = {"include_usage": True}
    return add_sampling(payload, request.params, "max_tokens", "stop")


def _shape_error(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(
        f"{provider} sent a chat completion without {what}",
        provider=provider,
        hint="The server may not be OpenAI-compatible; check the base URL.",
    )


def usage_counts(usage: Any) -> Usage:
    """A chat-completions `usage` object (a dict) -> normalised `Usage` (see the docstring)."""
    if not isinstance(usage, dict):
        return Usage()
    prompt = as_count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = as_count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached is None:
        cached = as_count(usage.get("prompt_cache_hit_tokens"))
    if prompt is not None and cached is not None:
        cached = min(cached, prompt)
        prompt -= cached
    out = usage.get("completion_tokens_details")
    reasoning = as_count(out.get("reasoning_tokens")) if isinstance(out, dict) else None
    return Usage(prompt, as_count(usage.get("completion_tokens")), cached, None, reasoning)


class Parsed(NamedTuple):
    """A whole chat completion: its text, usage and the provider's finish reason."""

    text: str
    usage: Usage
    finish_reason: str | None


def parse_completion(data: Any, provider: str) -> Parsed:
    """A `chat.completion` object -> text, usage, finish reason."""
    if not isinstance(data, dict):
        raise _shape_error(provider, "a JSON object")
    if "error" in data and "choices" not in data:
        raise ProviderError(
            f"{provider} returned an error: {error_detail(json.dumps(data))}", provider=provider
        )
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _shape_error(provider, "choices")
    message = choices[0].get("message")
    text = message.get("content") if isinstance(message, dict) else None
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise _shape_error(provider, "text content")
    reason = choices[0].get("finish_reason")
    return Parsed(
        text, usage_counts(data.get("usage")), reason if isinstance(reason, str) else None
    )


class ChatEvents:
    """Chat-completion server-sent events -> our events, one `event(sse)` at a time: what the
    `openai` SDK adapter's loop (which splits the SSE itself) feeds. `done` once
    `data: [DONE]` arrived."""

    __slots__ = ("_provider", "done", "finish_reason")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self.finish_reason: str | None = None
        self.done = False

    def event(self, sse: SSEEvent) -> list[AdapterEvent]:
        provider = self._provider
        if sse.event == "error":
            raise ProviderError(
                f"{provider} failed mid-stream: {error_detail(sse.data)}", provider=provider
            )
        payload = sse.data
        if len(payload) < 16:  # only short payloads can be the end marker or blank
            payload = payload.strip()
            if payload == _DONE:
                self.done = True
                raw = self.finish_reason
                return [StreamEnd(normalize_finish_reason(raw), raw)]
            if not payload:
                return []
        event = loads(payload, provider)
        if not isinstance(event, dict):
            raise _shape_error(provider, "a JSON object in the stream")
        events: list[AdapterEvent] = []
        choices = event.get("choices")
        if choices:
            choice = choices[0] if isinstance(choices, list) else None
            if not isinstance(choice, dict):
                raise _shape_error(provider, "choices in the stream")
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self.finish_reason = reason
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else None
            if text.__class__ is not str and text is not None:
                raise _shape_error(provider, "text in the stream")
            if text:
                events.append(TextDelta(text))
        elif "error" in event:
            raise ProviderError(
                f"{provider} failed mid-stream: {error_detail(json.dumps(event))}",
                provider=provider,
            )
        usage = event.get("usage")
        if usage and isinstance(usage, dict):
            counts = usage_counts(usage)
            if counts.known:
                events.append(UsageReport(counts))
        return events


class ChatStreamParser(ChatEvents):
    """A chat-completions SSE stream as raw body bytes (`feed(chunk)`) -> events."""

    __slots__ = ("_sse",)

    def __init__(self, provider: str) -> None:
        super().__init__(provider)
        self._sse = SSEDecoder(provider)

    def feed(self, chunk: bytes) -> list[AdapterEvent]:
        events: list[AdapterEvent] = []
        for sse in self._sse.feed(chunk):
            events += self.event(sse)
            if self.done:
                break
        return events

    def end(self) -> list[AdapterEvent]:
        return []


class OpenAICompatibleAdapter(HTTPAdapter):
    adapter_type = "openai_compatible"
    chat_path = "/chat/completions"
    end_marker = "data: [DONE]"

    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return chat_payload(request, stream)

    def parse_reply(self, request: ChatRequest, data: Any) -> Response:
        text, usage, reason = parse_completion(data, self.endpoint.provider_id)
        return self.reply(request, text, usage, reason)

    def stream_parser(self) -> ChatStreamParser:
        return ChatStreamParser(self.endpoint.provider_id)

    def check(self) -> str:
        """Local servers are asked for `/models` once, briefly, so a stopped server fails at
        connect time; cloud hosts are not contacted (their first call reports problems)."""
        if self.endpoint.spec.is_local:
            probe = min(3.0, self.endpoint.timeouts.connect, self.endpoint.timeouts.read)
            try:
                self._sync.request_json("GET", "/models", timeout=probe, retry=False)
            except (ProviderConnectionError, ModelTimeoutError):
                raise
            except ModelError:
                pass  # it answered: some servers have no /models or want a key there
        return self.endpoint.model

    def list_models(self) -> list[str]:
        data = self._sync.request_json("GET", "/models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise _shape_error(self.endpoint.provider_id, "a model list")
        return [
            item["id"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]
