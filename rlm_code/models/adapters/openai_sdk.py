"""OpenAI through the official `openai` SDK (adapter type "openai").

One `OpenAI` client per connection, and one `AsyncOpenAI` per connection and event loop (the
async client's connection pool belongs to the loop that opened it; reusing it under a later
`asyncio.run` fails with "Event loop is closed"). Both are built with `max_retries=0`: our
`RetryPolicy` retries, the same way for every adapter, and never after a stream has started.

Requests use OpenAI's current parameter names: `max_completion_tokens` (not the deprecated
`max_tokens`, which reasoning models reject), `stop`, `temperature`, the system prompt as the
first message. Whole replies are parsed by the SDK (`ChatCompletion`).

Streams are requested with `stream_options.include_usage` and read through the SDK's
`with_streaming_response` (the SDK still builds, authenticates and sends the request and maps
error statuses), but their SSE lines are parsed here, by the same code as the
OpenAI-compatible adapter. Two reasons: the SDK's `Stream` ends quietly when a stream stops
without `data: [DONE]`, so a cut stream would pass for a complete one (the raw adapter raises
on the same bytes); and building one pydantic object per chunk costs more than the JSON decode
we need, on the path that is benchmarked against the bare SDK.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from rlm_code.core.exceptions import ResponseFormatError
from rlm_code.models.adapters._http import (
    adrain,
    aiter_lines,
    drain,
    iter_lines,
)
from rlm_code.models.adapters._sdk import StainlessAdapter, sdk_timeout
from rlm_code.models.adapters.base import (
    as_count,
    openai_messages,
)
from rlm_code.models.adapters.errors import unterminated
from rlm_code.models.adapters.openai_compatible import parse_stream_event
from rlm_code.models.types import ChatRequest, Completion, StreamState, Usage

_DONE_MARKER = "data: [DONE]"


def parse_chat_completion(response: Any, provider: str) -> Completion:
    """A `ChatCompletion` (built by the SDK without validation) -> Completion."""
    choices = getattr(response, "choices", None)
    if not isinstance(choices, list) or not choices:
        raise ResponseFormatError(
            f"{provider} sent a chat completion without choices", provider=provider
        )
    choice = choices[0]
    message = getattr(choice, "message", None)
    text = getattr(message, "content", None)
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise ResponseFormatError(f"{provider} sent non-text content", provider=provider)
    usage = getattr(response, "usage", None)
    counts = (
        Usage(
            as_count(getattr(usage, "prompt_tokens", None)),
            as_count(getattr(usage, "completion_tokens", None)),
        )
        if usage is not None
        else Usage()
    )
    reason = getattr(choice, "finish_reason", None)
    return Completion(text, counts, reason if isinstance(reason, str) else None)


class OpenAIAdapter(StainlessAdapter):
    """Chat completions on the official SDK; see the module docstring."""

    adapter_type = "openai"
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
        if p.timeout is not None:
            args["timeout"] = sdk_timeout(self._httpx, self.endpoint.timeouts, p.timeout)
        if stream:
            args["stream"] = True
            args["stream_options"] = {"include_usage": True}
        return args

    # -- sync ------------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Completion:
        args = self._arguments(request, False)
        create = self._client.chat.completions.create
        errors = self._errors
        provider = self.endpoint.provider_id

        def attempt() -> Completion:
            try:
                response = create(**args)
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None
            return parse_chat_completion(response, provider)

        return self._retry.call(attempt)

    def stream(self, request: ChatRequest, state: StreamState) -> Iterator[str]:
        args = self._arguments(request, True)
        opener = self._client.chat.completions.with_streaming_response.create
        errors = self._errors
        provider = self.endpoint.provider_id

        def open_stream() -> tuple[Any, Any]:
            manager = opener(**args)
            try:
                return manager, manager.__enter__()
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None

        manager, response = self._retry.call(open_stream)
        lines = iter_lines(response.http_response.iter_bytes())
        try:
            for line in lines:
                text = parse_stream_event(line, state, provider)
                if state.completed:
                    drain(lines)  # to EOF, so the connection goes back to the pool
                if text is not None:
                    state.chunks += 1
                    yield text
        except errors.catch as exc:
            if not state.completed:
                raise errors.map(exc, request.model, request.params.timeout) from None
        finally:
            manager.__exit__(None, None, None)
        if not state.completed:
            raise unterminated(provider, _DONE_MARKER)

    # -- async -----------------------------------------------------------------------------

    async def acomplete(self, request: ChatRequest) -> Completion:
        args = self._arguments(request, False)
        client = await self._async_clients.get()
        create = client.chat.completions.create
        errors = self._errors
        provider = self.endpoint.provider_id

        async def attempt() -> Completion:
            try:
                response = await create(**args)
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None
            return parse_chat_completion(response, provider)

        return await self._retry.acall(attempt)

    async def astream(self, request: ChatRequest, state: StreamState) -> AsyncIterator[str]:
        args = self._arguments(request, True)
        client = await self._async_clients.get()
        opener = client.chat.completions.with_streaming_response.create
        errors = self._errors
        provider = self.endpoint.provider_id

        async def open_stream() -> tuple[Any, Any]:
            manager = opener(**args)
            try:
                return manager, await manager.__aenter__()
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None

        manager, response = await self._retry.acall(open_stream)
        lines = aiter_lines(response.http_response.aiter_bytes())
        try:
            async for line in lines:
                text = parse_stream_event(line, state, provider)
                if state.completed:
                    await adrain(lines)
                if text is not None:
                    state.chunks += 1
                    yield text
        except errors.catch as exc:
            if not state.completed:
                raise errors.map(exc, request.model, request.params.timeout) from None
        finally:
            await manager.__aexit__(None, None, None)
        if not state.completed:
            raise unterminated(provider, _DONE_MARKER)

    # -- lifecycle -------------------------------------------------------------------------


__all__ = ["OpenAIAdapter", "parse_chat_completion"]
