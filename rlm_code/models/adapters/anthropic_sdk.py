"""Anthropic through the official `anthropic` SDK (adapter type "anthropic").

One `Anthropic` client per connection and one `AsyncAnthropic` per connection and event loop
(an async client's pool belongs to its loop), both with `max_retries=0`: our `RetryPolicy`
retries, the same way for every adapter, and never after a stream has started.

Mapping to the Messages API:

- the system prompt goes in the real `system` field, never as a message;
- `max_tokens` is required by the API: when the caller gives none we send
  `DEFAULT_MAX_TOKENS` (4096), enough for a long answer from every current model and accepted
  by all of them (older models cap output at 4096 or 8192);
- `stop` becomes `stop_sequences`; `temperature` is sent as is, in the request body (the 2.x
  SDK dropped it from `create`'s typed arguments, the API still accepts it).

Usage: prompt tokens are `input_tokens` plus the cache write and cache read counts when the
provider reports them (Anthropic's `input_tokens` leaves cached tokens out; OpenAI's
`prompt_tokens` includes them, and the totals should mean the same thing for every provider);
completion tokens are `output_tokens`. Streams are read from `messages.create(stream=True)`
events: `message_start` gives the input tokens at once (so a stream stopped early still records
them), `message_delta` the final output count, and `message_stop` marks the reply complete; a
stream that ends without `message_stop` raises `ProviderError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

from rlm_code.core.exceptions import ResponseFormatError
from rlm_code.models.adapters._sdk import StainlessAdapter, sdk_timeout
from rlm_code.models.adapters.base import as_count
from rlm_code.models.adapters.errors import unterminated
from rlm_code.models.types import ChatRequest, Completion, StreamState, Usage

DEFAULT_MAX_TOKENS = 4096
_STOP_MARKER = "message_stop"


def prompt_count(usage: Any) -> int | None:
    """Input tokens including cache writes and reads; None when the input count is unknown."""
    total = as_count(getattr(usage, "input_tokens", None))
    if total is None:
        return None
    for name in ("cache_creation_input_tokens", "cache_read_input_tokens"):
        extra = as_count(getattr(usage, name, None))
        if extra:
            total += extra
    return total


def parse_message(message: Any, provider: str) -> Completion:
    """A `Message` (built by the SDK without validation) -> Completion."""
    content = getattr(message, "content", None)
    if not isinstance(content, list):
        raise ResponseFormatError(f"{provider} sent a message without content", provider=provider)
    text = "".join(
        block.text
        for block in content
        if getattr(block, "type", None) == "text" and isinstance(getattr(block, "text", None), str)
    )
    usage = getattr(message, "usage", None)
    counts = (
        Usage(prompt_count(usage), as_count(getattr(usage, "output_tokens", None)))
        if usage is not None
        else Usage()
    )
    reason = getattr(message, "stop_reason", None)
    return Completion(text, counts, reason if isinstance(reason, str) else None)


def on_event(event: Any, state: StreamState) -> str | None:
    """One stream event -> the text it carries (or None); usage and the end go to `state`."""
    kind = getattr(event, "type", None)
    if kind == "content_block_delta":
        delta = event.delta
        if getattr(delta, "type", None) == "text_delta":
            text = delta.text
            return text if isinstance(text, str) and text else None
        return None  # thinking, signatures, tool input: not part of the reply text
    if kind == "message_start":
        usage = getattr(event.message, "usage", None)
        if usage is not None:
            state.prompt_tokens = prompt_count(usage)
        return None
    if kind == "message_delta":
        usage = getattr(event, "usage", None)
        if usage is not None:
            output = as_count(getattr(usage, "output_tokens", None))
            if output is not None:
                state.completion_tokens = output
            prompt = prompt_count(usage)  # newer API versions repeat the input counts here
            if prompt is not None:
                state.prompt_tokens = prompt
        reason = getattr(getattr(event, "delta", None), "stop_reason", None)
        if isinstance(reason, str):
            state.finish_reason = reason
        return None
    if kind == "message_stop":
        state.completed = True
    return None


class AnthropicAdapter(StainlessAdapter):
    """Messages API on the official SDK; see the module docstring."""

    adapter_type = "anthropic"
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
        if p.timeout is not None:
            args["timeout"] = sdk_timeout(self._httpx, self.endpoint.timeouts, p.timeout)
        if stream:
            args["stream"] = True
        return args

    # -- sync ------------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Completion:
        args = self._arguments(request, False)
        create = self._client.messages.create
        errors = self._errors
        provider = self.endpoint.provider_id

        def attempt() -> Completion:
            try:
                message = create(**args)
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None
            return parse_message(message, provider)

        return self._retry.call(attempt)

    def stream(self, request: ChatRequest, state: StreamState) -> Iterator[str]:
        args = self._arguments(request, True)
        create = self._client.messages.create
        errors = self._errors

        def open_stream() -> Any:
            try:
                return create(**args)
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None

        events = self._retry.call(open_stream)
        try:
            for event in events:
                text = on_event(event, state)
                if text is not None:
                    state.chunks += 1
                    yield text
        except errors.catch as exc:
            if not state.completed:
                raise errors.map(exc, request.model, request.params.timeout) from None
        finally:
            events.close()
        if not state.completed:
            raise unterminated(self.endpoint.provider_id, _STOP_MARKER)

    # -- async -----------------------------------------------------------------------------

    async def acomplete(self, request: ChatRequest) -> Completion:
        args = self._arguments(request, False)
        client = await self._async_clients.get()
        create = client.messages.create
        errors = self._errors
        provider = self.endpoint.provider_id

        async def attempt() -> Completion:
            try:
                message = await create(**args)
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None
            return parse_message(message, provider)

        return await self._retry.acall(attempt)

    async def astream(self, request: ChatRequest, state: StreamState) -> AsyncIterator[str]:
        args = self._arguments(request, True)
        client = await self._async_clients.get()
        create = client.messages.create
        errors = self._errors

        async def open_stream() -> Any:
            try:
                return await create(**args)
            except errors.catch as exc:
                raise errors.map(exc, request.model, request.params.timeout) from None

        events = await self._retry.acall(open_stream)
        try:
            async for event in events:
                text = on_event(event, state)
                if text is not None:
                    state.chunks += 1
                    yield text
        except errors.catch as exc:
            if not state.completed:
                raise errors.map(exc, request.model, request.params.timeout) from None
        finally:
            await events.close()
        if not state.completed:
            raise unterminated(self.endpoint.provider_id, _STOP_MARKER)

    # -- lifecycle -------------------------------------------------------------------------


__all__ = ["DEFAULT_MAX_TOKENS", "AnthropicAdapter"]
