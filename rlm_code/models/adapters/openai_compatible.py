"""OpenAI-compatible chat completions over raw HTTP: every cloud host and local server that
speaks `/v1/chat/completions` (vLLM, LM Studio, SGLang, TGI, MLX, llama.cpp, OpenRouter,
Groq, DeepSeek, ...).

No SDK: `httpx2` for blocking calls and `aiohttp` for async ones, so this path stays within a
few percent of a bare HTTP client. Streams ask for usage (`stream_options.include_usage`)
and must end with `data: [DONE]`; a stream that stops without it raises, because the reply
may be incomplete. The key is optional: without one no `Authorization` header is sent
(OpenCode's keyless mode, local servers).
"""

from __future__ import annotations

import json
from typing import Any

from rlm_code.core.exceptions import (
    ModelError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ResponseFormatError,
)
from rlm_code.models.adapters._lines import loads
from rlm_code.models.adapters.base import as_count, openai_messages
from rlm_code.models.adapters.errors import error_detail
from rlm_code.models.adapters.http_adapter import HTTPAdapter
from rlm_code.models.types import ChatRequest, Completion, StreamState, Usage

_DONE = b"[DONE]"


def chat_payload(request: ChatRequest, stream: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": openai_messages(request),
        "stream": stream,
    }
    if stream:
        payload["stream_options"] = {"include_usage": True}
    p = request.params
    if p.temperature is not None:
        payload["temperature"] = p.temperature
    if p.max_tokens is not None:
        payload["max_tokens"] = p.max_tokens
    if p.stop:
        payload["stop"] = list(p.stop)
    return payload


def _shape_error(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(
        f"{provider} sent a chat completion without {what}",
        provider=provider,
        hint="The server may not be OpenAI-compatible; check the base URL.",
    )


def parse_completion(data: Any, provider: str) -> Completion:
    """A `chat.completion` object -> Completion (text, usage, finish reason)."""
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
    usage = data.get("usage")
    if isinstance(usage, dict):
        counts = Usage(
            as_count(usage.get("prompt_tokens")), as_count(usage.get("completion_tokens"))
        )
    else:
        counts = Usage()
    reason = choices[0].get("finish_reason")
    return Completion(text, counts, reason if isinstance(reason, str) else None)


def parse_stream_event(line: bytes, state: StreamState, provider: str) -> str | None:
    """One SSE line -> the text it carries (or None); usage and the end go to `state`."""
    if not line.startswith(b"data:"):
        return None
    payload = line[5:].strip()
    if payload == _DONE:
        state.completed = True
        return None
    if not payload:
        return None
    event = loads(payload, provider)
    if not isinstance(event, dict):
        raise _shape_error(provider, "a JSON object in the stream")
    usage = event.get("usage")
    if isinstance(usage, dict):
        state.prompt_tokens = as_count(usage.get("prompt_tokens"))
        state.completion_tokens = as_count(usage.get("completion_tokens"))
    choices = event.get("choices")
    if not choices:
        if "error" in event:
            raise ProviderError(
                f"{provider} failed mid-stream: {error_detail(json.dumps(event))}",
                provider=provider,
            )
        return None
    choice = choices[0] if isinstance(choices, list) else None
    if not isinstance(choice, dict):
        raise _shape_error(provider, "choices in the stream")
    reason = choice.get("finish_reason")
    if isinstance(reason, str):
        state.finish_reason = reason
    delta = choice.get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    if text is None:
        return None
    if not isinstance(text, str):
        raise _shape_error(provider, "text in the stream")
    return text or None


class OpenAICompatibleAdapter(HTTPAdapter):
    adapter_type = "openai_compatible"
    chat_path = "/chat/completions"
    end_marker = "data: [DONE]"

    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return chat_payload(request, stream)

    def parse_completion(self, data: Any) -> Completion:
        return parse_completion(data, self.endpoint.provider_id)

    def parse_line(self, line: bytes, state: StreamState) -> str | None:
        return parse_stream_event(line, state, self.endpoint.provider_id)

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
