"""Ollama's own REST API: `/api/chat` (JSON and NDJSON streams) and `/api/tags`.

Connecting checks the server through `/api/tags` and resolves an untagged model name to the
tagged one Ollama lists (`llama3.2` -> `llama3.2:latest`, or the single `llama3.2:*` match),
so a typo fails at connect time with the list of installed models and the `ollama pull`
hint, not at the first prompt. The read timeout is `OLLAMA_HTTP_TIMEOUT` (default 120 s):
local models can take long to load. Token counts come from `prompt_eval_count` and
`eval_count`; a stream must end with a `done: true` object.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rlm_code.core.exceptions import ModelNotFoundError, ProviderError, ResponseFormatError
from rlm_code.models.adapters._lines import loads
from rlm_code.models.adapters.base import as_count, openai_messages
from rlm_code.models.adapters.errors import error_detail
from rlm_code.models.adapters.http_adapter import HTTPAdapter
from rlm_code.models.types import ChatRequest, Completion, StreamState


def chat_payload(request: ChatRequest, stream: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": openai_messages(request),
        "stream": stream,
    }
    p = request.params
    options: dict[str, Any] = {}
    if p.temperature is not None:
        options["temperature"] = p.temperature
    if p.max_tokens is not None:
        options["num_predict"] = p.max_tokens
    if p.stop:
        options["stop"] = list(p.stop)
    if options:
        payload["options"] = options
    return payload


def resolve_model_name(requested: str, available: list[str]) -> str | None:
    """Match a requested name against Ollama's tagged names, or None when nothing fits."""
    if requested in available:
        return requested
    if ":" not in requested:
        if f"{requested}:latest" in available:
            return f"{requested}:latest"
        tagged = [name for name in available if name.split(":", 1)[0] == requested]
        if len(tagged) == 1:
            return tagged[0]
    return None


def model_names(data: Any, provider: str) -> list[str]:
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise ResponseFormatError(
            f"{provider} answered /api/tags without a model list",
            provider=provider,
            hint="Is this really an Ollama server? Check OLLAMA_HOST.",
        )
    names = []
    for item in models:
        name = item.get("name") or item.get("model") if isinstance(item, dict) else None
        if isinstance(name, str):
            names.append(name)
    return names


def _fail_if_error(data: dict[str, Any], provider: str) -> None:
    if "error" in data:
        error = data.get("error")
        detail = error if isinstance(error, str) else json.dumps(error)
        raise ProviderError(f"{provider} failed: {error_detail(detail)}", provider=provider)


def parse_message(data: Any, provider: str, state: StreamState | None = None) -> str:
    """Text of one `/api/chat` object; when `done`, its counts go to `state`."""
    if not isinstance(data, dict):
        raise ResponseFormatError(f"{provider} sent a non-object chat answer", provider=provider)
    _fail_if_error(data, provider)
    message = data.get("message")
    text = message.get("content", "") if isinstance(message, dict) else ""
    if not isinstance(text, str):
        raise ResponseFormatError(f"{provider} sent non-text content", provider=provider)
    if state is not None and data.get("done") is True:
        state.prompt_tokens = as_count(data.get("prompt_eval_count"))
        state.completion_tokens = as_count(data.get("eval_count"))
        reason = data.get("done_reason")
        state.finish_reason = reason if isinstance(reason, str) else None
        state.completed = True
    return text


class OllamaAdapter(HTTPAdapter):
    adapter_type = "ollama"
    chat_path = "/api/chat"
    end_marker = '"done": true'

    def list_models(self) -> list[str]:
        data = self._sync.request_json(
            "GET", "/api/tags", timeout=min(10.0, self.endpoint.timeouts.read)
        )
        return model_names(data, self.endpoint.provider_id)

    def check(self) -> str:
        requested = self.endpoint.model
        available = self.list_models()
        resolved = resolve_model_name(requested, available)
        if resolved is None:
            listing = ", ".join(sorted(available)) if available else "none installed"
            raise ModelNotFoundError(
                f"Ollama at {self.endpoint.base_url} has no model '{requested}' "
                f"(available: {listing})",
                provider=self.endpoint.provider_id,
                hint=f"Run `ollama pull {requested}` or pick one of the available models.",
            )
        if resolved != requested:
            self.endpoint = replace(self.endpoint, model=resolved)
        return resolved

    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return chat_payload(request, stream)

    def parse_completion(self, data: Any) -> Completion:
        state = StreamState()
        text = parse_message(data, self.endpoint.provider_id, state)
        return Completion(text, state.usage(), state.finish_reason)

    def parse_line(self, line: bytes, state: StreamState) -> str | None:
        if not line.strip():
            return None
        provider = self.endpoint.provider_id
        return parse_message(loads(line, provider), provider, state) or None
