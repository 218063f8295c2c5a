"""Ollama's own REST API: `/api/chat` (JSON and NDJSON streams) and `/api/tags`.

Connecting checks the server through `/api/tags` and resolves an untagged model name to the
tagged one Ollama lists (`llama3.2` -> `llama3.2:latest`, or the single `llama3.2:*` match),
so a typo fails at connect time with the list of installed models and the `ollama pull`
hint, not at the first prompt. The read timeout is `OLLAMA_HTTP_TIMEOUT` (default 120 s):
local models can take long to load. Token counts come from `prompt_eval_count` (input) and
`eval_count` (output); Ollama leaves `prompt_eval_count` out when the prompt came from its
cache, and then the input count is unknown (None), never 0. `done_reason` is the finish
reason. A stream is NDJSON and must end with a `done: true` object.

Tool calls, reasoning (`think` / `thinking`), structured output (`format`) and images are
mapped in `_ollama_wire`, which also says what is refused before any I/O and why. A long
prompt gets `options.num_ctx` (Ollama would otherwise cut it to its default context without
a word), sized from the model's profile (`/api/show`, probed once per connection); one that
cannot fit the model at all raises `ContextLengthExceededError` before the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from rlm_code.core.exceptions import ModelError, ModelNotFoundError, ResponseFormatError
from rlm_code.models.adapters._lines import LineSplitter, loads
from rlm_code.models.adapters._ollama_wire import (
    OLLAMA_DEFAULT_CONTEXT,
    REPLY_RESERVE,
    ChatReader,
    chat_payload,
    context_size,
    parse_message,
)
from rlm_code.models.adapters._profile_probe import ollama_profile
from rlm_code.models.adapters.errors import safe_url
from rlm_code.models.adapters.http_adapter import HTTPAdapter
from rlm_code.models.profiles import check_fits, check_parameters, estimate_tokens
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    ReasoningDelta,
    Response,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDone,
    Usage,
    UsageReport,
)

__all__ = ["NDJSONParser", "OllamaAdapter", "chat_payload", "parse_message"]


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


class NDJSONParser:
    """An Ollama stream: one JSON object per line, ending with `done: true`."""

    __slots__ = ("_lines", "_provider", "_reader")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._lines = LineSplitter(provider)
        self._reader = ChatReader(provider)

    def _parse(self, lines: list[bytes]) -> list[AdapterEvent]:
        events: list[AdapterEvent] = []
        provider, read = self._provider, self._reader.events
        for line in lines:
            if line.strip():
                events += read(loads(line, provider))
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

    def probe_profile(self) -> dict[str, Any]:
        """`/api/show`: the model's trained context length and its capabilities."""
        timeout = self.endpoint.timeouts.connect
        data = self._sync.request_json(
            "POST", "/api/show", {"model": self.endpoint.model}, timeout=timeout, retry=False
        )
        return ollama_profile(data)

    def _needs_profile(self, request: ChatRequest) -> bool:
        """Whether the prompt could come near Ollama's default context (then `num_ctx` is
        sized from the model's profile)."""
        if self._profile is not None:
            return False
        reply = request.params.max_tokens or REPLY_RESERVE
        return estimate_tokens(request)[1] + reply > OLLAMA_DEFAULT_CONTEXT

    async def _aprobe(self, request: ChatRequest) -> None:
        """The `/api/show` probe on the async client, before an async call needs it."""
        if not self._needs_profile(request):
            return
        timeout = self.endpoint.timeouts.connect
        try:
            data = await self._aio.request_json(
                "POST", "/api/show", {"model": self.endpoint.model}, timeout=timeout, retry=False
            )
        except ModelError:
            data = None  # a failed probe falls back to the table, silently
        self.settle_profile(ollama_profile(data))

    async def acomplete(self, request: ChatRequest) -> Response:
        await self._aprobe(request)
        return await super().acomplete(request)

    def astream(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        if self._needs_profile(request):
            return self._astream_probed(request)
        return super().astream(request)

    async def _astream_probed(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        await self._aprobe(request)
        events = super().astream(request)
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()  # type: ignore[attr-defined]

    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The body, with `num_ctx` sized to a prompt that might not fit Ollama's default
        context. Only such a prompt needs the model's profile (the `/api/show` probe, once
        per connection); it is refused before the request when it cannot fit the model."""
        provider = self.endpoint.provider_id
        check_parameters(request, self.call_profile(), provider)
        num_ctx = None
        high = estimate_tokens(request)[1]
        if high + (request.params.max_tokens or REPLY_RESERVE) > OLLAMA_DEFAULT_CONTEXT:
            profile = self.profile()
            high = check_fits(request, profile, provider)[1]
            num_ctx = context_size(high, request.params.max_tokens, profile.context_window)
        return chat_payload(request, stream, provider, num_ctx)

    def parse_reply(self, request: ChatRequest, data: Any) -> Response:
        """A whole reply, read by the same `ChatReader` as a stream's lines (so the two agree)."""
        text: list[str] = []
        reasoning: list[str] | None = None
        calls: list[ToolCall] = []
        usage, raw = Usage(), None
        for event in parse_message(data, self.endpoint.provider_id):
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, ReasoningDelta):
                reasoning = [*(reasoning or ()), event.text]
            elif isinstance(event, ToolCallDone):
                calls.append(event.tool_call)
            elif isinstance(event, UsageReport):
                usage = event.usage
            elif isinstance(event, StreamEnd):
                raw = event.raw
        thought = None if reasoning is None else "".join(reasoning)
        return self.reply(request, "".join(text), usage, raw, tool_calls=calls, reasoning=thought)

    def stream_parser(self) -> NDJSONParser:
        return NDJSONParser(self.endpoint.provider_id)
