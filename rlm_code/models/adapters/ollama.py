"""Ollama's own REST API: `/api/chat` (JSON and NDJSON streams) and `/api/tags`.

Connecting checks the server through `/api/tags` and resolves an untagged model name to the
tagged one Ollama lists (`llama3.2` -> `llama3.2:latest`, or the single `llama3.2:*` match),
so a typo fails at connect time with the list of installed models and the `ollama pull`
hint, not at the first prompt. The read timeout is `OLLAMA_HTTP_TIMEOUT` (default 120 s):
local models can take long to load. Token counts come from `prompt_eval_count` (input) and
`eval_count` (output); Ollama leaves `prompt_eval_count` out when the prompt came from its
cache, and then the input count is unknown (None), never 0. `done_reason` is the finish
reason. A stream is NDJSON and must end with a `done: true` object.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from rlm_code.core.exceptions import ModelNotFoundError, ProviderError, ResponseFormatError
from rlm_code.models.adapters._lines import LineSplitter, loads
from rlm_code.models.adapters.base import add_sampling, as_count, openai_messages
from rlm_code.models.adapters.errors import error_detail, safe_url
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


def chat_payload(request: ChatRequest, stream: bool) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": openai_messages(request),
        "stream": stream,
    }
    options = add_sampling({}, request.params, "num_predict", "stop")
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


def parse_message(data: Any, provider: str) -> list[AdapterEvent]:
    """One `/api/chat` object -> its events: the text, and when `done`, the counts and the end."""
    if not isinstance(data, dict):
        raise ResponseFormatError(f"{provider} sent a non-object chat answer", provider=provider)
    _fail_if_error(data, provider)
    message = data.get("message")
    text = message.get("content", "") if isinstance(message, dict) else ""
    if not isinstance(text, str):
        raise ResponseFormatError(f"{provider} sent non-text content", provider=provider)
    events: list[AdapterEvent] = [TextDelta(text)] if text else []
    if data.get("done") is True:
        usage = Usage(as_count(data.get("prompt_eval_count")), as_count(data.get("eval_count")))
        if usage.known:
            events.append(UsageReport(usage))
        reason = data.get("done_reason")
        raw = reason if isinstance(reason, str) else None
        events.append(StreamEnd(normalize_finish_reason(raw), raw))
    return events


class NDJSONParser:
    """An Ollama stream: one JSON object per line, ending with `done: true`."""

    __slots__ = ("_lines", "_provider")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._lines = LineSplitter(provider)

    def _parse(self, lines: list[bytes]) -> list[AdapterEvent]:
        events: list[AdapterEvent] = []
        provider = self._provider
        for line in lines:
            if line.strip():
                events += parse_message(loads(line, provider), provider)
        return events

    def feed(self, chunk: bytes) -> list[AdapterEvent]:
        return self._parse(self._lines.feed(chunk))

    def end(self) -> list[AdapterEvent]:
        return self._parse(self._lines.flush())


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
                f"Ollama at {safe_url(self.endpoint.base_url)} has no model '{requested}' "
                f"(available: {listing})",
                provider=self.endpoint.provider_id,
                hint=f"Run `ollama pull {requested}` or pick one of the available models.",
            )
        if resolved != requested:
            self.endpoint = replace(self.endpoint, model=resolved)
        return resolved

    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        return chat_payload(request, stream)

    def parse_reply(self, request: ChatRequest, data: Any) -> Response:
        text: list[str] = []
        usage, raw = Usage(), None
        for event in parse_message(data, self.endpoint.provider_id):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, UsageReport):
                usage = event.usage
            elif isinstance(event, StreamEnd):
                raw = event.raw
        return self.reply(request, "".join(text), usage, raw)

    def stream_parser(self) -> NDJSONParser:
        return NDJSONParser(self.endpoint.provider_id)
