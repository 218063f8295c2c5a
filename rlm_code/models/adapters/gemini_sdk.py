"""Google Gemini through the official `google-genai` SDK (adapter type "gemini").

Mapping to `generate_content`: the system prompt is the config's `system_instruction`; the
turns are `contents` with the roles `user` and `model`; `max_tokens`, `temperature` and `stop`
become `max_output_tokens`, `temperature` and `stop_sequences`. A call with none of these sends
no config at all (the SDK's config conversion costs about as much as the HTTP exchange with a
local server); otherwise automatic function calling is turned off in it (we send no tools).

Usage comes from `usage_metadata`: prompt tokens are `prompt_token_count`, completion tokens
`candidates_token_count` plus `thoughts_token_count` when the model reports thinking tokens
(they are billed as output, and other providers count reasoning tokens as completion tokens).
A stream sends cumulative counts on every event, so a stream stopped early records the counts
received so far. Gemini streams have no end event: the reply is complete when an event carries
a `finish_reason`; a stream that ends without one raises `ProviderError`.

Clients, timeouts and retries. The SDK retries on its own unless told otherwise, so both
clients get `HttpRetryOptions(attempts=1)` and our `RetryPolicy` retries, as for every adapter.

- Blocking calls use one `genai.Client` per connection. Its single `timeout` applies to every
  phase of an httpx2 request; an httpx2 request hook puts the shorter connect timeout back, so
  a dead host fails after `timeouts.connect`, not `timeouts.read`.
- Async calls use a second client, made on first use, because the SDK sends them through
  aiohttp with its timeout as a *total* limit, which would cut a long stream. That client has
  no SDK timeout; we bound the wait for the answer to start by `connect + read` and every
  further stream event by `read` ourselves (`asyncio.timeout`), which is what `read` means
  everywhere else ("between bytes of an answer"). The SDK keeps one aiohttp session per event
  loop but never closes it when the loop ends; we close the ending loop's session at loop
  shutdown, so `asyncio.run` per call does not leak sockets.

Known difference: for blocking calls the SDK decodes answers leniently, so invalid UTF-8 in a
reply arrives as U+FFFD characters, not as an error (the async path raises
`ResponseFormatError`, as the other adapters do).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from rlm_code.core.exceptions import (
    MissingAPIKeyError,
    ModelError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
)
from rlm_code.models.adapters._http import (
    LoopLocal,
    default_ssl_context,
    map_aiohttp_error,
    map_httpx_error,
)
from rlm_code.models.adapters.base import Adapter, Endpoint, as_count, require_sdk
from rlm_code.models.adapters.errors import bad_payload, error_for_status, timed_out, unterminated
from rlm_code.models.adapters.retry import RetryPolicy
from rlm_code.models.types import ChatRequest, Completion, StreamState, Usage

_END_MARKER = "a finish_reason"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def usage_counts(meta: Any) -> tuple[int | None, int | None]:
    """(prompt, completion) from `usage_metadata`; None where Gemini did not say."""
    if meta is None:
        return None, None
    prompt = as_count(getattr(meta, "prompt_token_count", None))
    output = as_count(getattr(meta, "candidates_token_count", None))
    thoughts = as_count(getattr(meta, "thoughts_token_count", None))
    if thoughts:
        output = (output or 0) + thoughts
    return prompt, output


def reply_text(response: Any) -> str | None:
    """The reply's text from the first candidate (thought parts left out); None: no candidate."""
    candidates = getattr(response, "candidates", None)
    if not candidates:
        return None
    content = getattr(candidates[0], "content", None)
    parts = getattr(content, "parts", None) or ()
    return "".join(
        part.text
        for part in parts
        if isinstance(getattr(part, "text", None), str) and not getattr(part, "thought", None)
    )


def finish_reason(response: Any) -> str | None:
    candidates = getattr(response, "candidates", None)
    if not candidates:
        return None
    reason = getattr(candidates[0], "finish_reason", None)
    if reason is None:
        return None
    value = getattr(reason, "value", reason)
    return value if isinstance(value, str) else str(value)


def retry_delay(details: Any) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "1.5s"`), if any."""
    error = details.get("error", details) if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("@type") == _RETRY_INFO:
            delay = item.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(0.0, float(delay[:-1]))
                except ValueError:
                    return None
    return None


class GeminiAdapter(Adapter):
    """Gemini API on the official SDK; see the module docstring."""

    adapter_type = "gemini"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        provider = endpoint.provider_id
        genai = require_sdk("google.genai", provider)
        import aiohttp
        import httpx2
        from google.genai import errors as genai_errors
        from google.genai import types

        if not endpoint.api_key:
            raise MissingAPIKeyError(
                "the Gemini adapter needs an API key (GEMINI_API_KEY or api_key=)",
                provider=provider,
            )
        self._genai = genai
        self._types = types
        self._api_error = genai_errors.APIError
        self._httpx = httpx2
        self._aiohttp = aiohttp
        self._retry = RetryPolicy(endpoint.retry)
        self._catch: tuple[type[BaseException], ...] = (
            genai_errors.APIError,
            httpx2.TransportError,
            aiohttp.ClientError,
            TimeoutError,  # asyncio.timeout, around the async calls
            genai_errors.UnknownApiResponseError,
            # The SDK converts answers with plain code and pydantic: a body of the wrong shape
            # (`{"candidates": false}`, `{"usageMetadata": []}`) surfaces as one of these.
            # ValueError covers json.JSONDecodeError, UnicodeDecodeError and pydantic's errors.
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
        )
        connect = endpoint.timeouts.connect

        def connect_timeout(request: Any) -> None:
            timeout = request.extensions.get("timeout")
            if isinstance(timeout, dict):
                request.extensions["timeout"] = {**timeout, "connect": connect}

        self._client = genai.Client(
            api_key=endpoint.api_key,
            vertexai=False,
            http_options=self._http_options(
                endpoint.timeouts.read,
                client_args={
                    "event_hooks": {"request": [connect_timeout]},
                    "verify": default_ssl_context(),
                },
            ),
        )
        self._async_client: Any = None
        self._loops: LoopLocal[asyncio.AbstractEventLoop] = LoopLocal(
            asyncio.get_running_loop, self._close_loop_session
        )

    def _http_options(self, timeout_s: float | None, **extra: Any) -> Any:
        options: dict[str, Any] = {
            "retry_options": self._types.HttpRetryOptions(attempts=1),
            **extra,
        }
        if self.endpoint.base_url:
            options["base_url"] = self.endpoint.base_url
        if timeout_s is not None:
            options["timeout"] = max(1, int(timeout_s * 1000))  # milliseconds
        return self._types.HttpOptions(**options)

    # -- request and answer ----------------------------------------------------------------

    def _config(self, request: ChatRequest, blocking: bool) -> dict[str, Any] | None:
        """The call's `GenerateContentConfig` as a dict, or None when there is nothing to set:
        the SDK converts every config field by field (~0.25 ms a call), so a plain prompt
        sends none, exactly like a bare SDK call."""
        p = request.params
        config: dict[str, Any] = {}
        if request.system:
            config["system_instruction"] = request.system
        if p.max_tokens is not None:
            config["max_output_tokens"] = p.max_tokens
        if p.temperature is not None:
            config["temperature"] = p.temperature
        if p.stop:
            config["stop_sequences"] = list(p.stop)
        if blocking and p.timeout is not None:
            config["http_options"] = {"timeout": max(1, int(p.timeout * 1000))}
        if not config:
            return None
        # No tools are sent, so automatic function calling has nothing to do; saying so
        # skips its bookkeeping (free here: the config is converted anyway).
        config["automatic_function_calling"] = {"disable": True}
        return config

    @staticmethod
    def _contents(request: ChatRequest) -> str | list[dict[str, Any]]:
        """The turns as `contents`; a lone user turn as plain text, which the SDK turns into
        the same user `Content` faster than it converts the dict form."""
        turns = request.messages
        if len(turns) == 1 and turns[0].role == "user":
            return turns[0].content
        return [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in request.messages
        ]

    def _completion(self, response: Any) -> Completion:
        provider = self.endpoint.provider_id
        text = reply_text(response)
        if text is None:
            feedback = getattr(response, "prompt_feedback", None)
            blocked = getattr(feedback, "block_reason", None)
            if blocked is not None:
                reason = getattr(blocked, "value", blocked)
                raise ProviderError(
                    f"{provider} blocked the prompt ({reason})",
                    provider=provider,
                    hint="Rephrase the prompt; Gemini's safety filters refused it.",
                )
            raise ResponseFormatError(
                f"{provider} sent an answer without candidates", provider=provider
            )
        prompt, output = usage_counts(getattr(response, "usage_metadata", None))
        return Completion(text, Usage(prompt, output), finish_reason(response))

    def _on_chunk(self, chunk: Any, state: StreamState) -> str | None:
        meta = getattr(chunk, "usage_metadata", None)
        if meta is not None:
            prompt, output = usage_counts(meta)
            if prompt is not None:
                state.prompt_tokens = prompt
            if output is not None:
                state.completion_tokens = output
        reason = finish_reason(chunk)
        if reason is not None:
            state.finish_reason = reason
            state.completed = True
        return reply_text(chunk) or None

    # -- errors ----------------------------------------------------------------------------

    def _map(
        self,
        exc: BaseException,
        model: str | None,
        read_timeout: float | None = None,
        *,
        answering: bool = True,
    ) -> ModelError:
        provider = self.endpoint.provider_id
        where = self.endpoint.base_url
        timeouts = self.endpoint.timeouts
        if isinstance(exc, self._api_error):
            return self._status_error(exc, model)
        if isinstance(exc, self._httpx.TransportError):
            return map_httpx_error(
                self._httpx, provider, exc, where, timeouts, read_timeout, answering=answering
            )
        if isinstance(exc, self._aiohttp.ClientError):
            return map_aiohttp_error(
                self._aiohttp, provider, exc, where, timeouts, read_timeout, answering=answering
            )
        if isinstance(exc, TimeoutError):  # our asyncio.timeout
            return timed_out(provider, "answer in time", read_timeout or timeouts.read, False)
        return bad_payload(provider, exc)

    def _status_error(self, exc: Any, model: str | None) -> ModelError:
        provider = self.endpoint.provider_id
        details = getattr(exc, "details", None)
        code = getattr(exc, "code", None)
        status = code if isinstance(code, int) else 0
        body: str | None
        if isinstance(details, dict) and "error" not in details and "message" in details:
            body = str(details["message"])  # a body that was not JSON (an HTML page, ...)
        elif details is not None:
            body = json.dumps(details, default=str)
        else:
            body = getattr(exc, "message", None)
        if status < 400:
            return ProviderError(f"{provider} failed mid-stream: {body}", provider=provider)
        headers: Mapping[str, str] | None = getattr(getattr(exc, "response", None), "headers", None)
        error = error_for_status(provider, status, body, headers, model=model)
        if isinstance(error, RateLimitError) and error.retry_after is None:
            delay = retry_delay(details)
            if delay is not None:
                error = error_for_status(
                    provider, status, body, {"retry-after": f"{delay:g}"}, model=model
                )
        return error

    # -- sync ------------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Completion:
        models = self._client.models
        contents = self._contents(request)
        config = self._config(request, blocking=True)
        catch = self._catch

        def attempt() -> Completion:
            try:
                response = models.generate_content(
                    model=request.model, contents=contents, config=config
                )
            except catch as exc:
                raise self._map(exc, request.model, request.params.timeout) from None
            return self._completion(response)

        return self._retry.call(attempt)

    def stream(self, request: ChatRequest, state: StreamState) -> Iterator[str]:
        models = self._client.models
        contents = self._contents(request)
        config = self._config(request, blocking=True)
        catch = self._catch
        read_timeout = request.params.timeout

        # The SDK sends the request when its generator is first advanced, so "opening" the
        # stream means getting its first event; only that is retried.
        def open_stream() -> tuple[Iterator[Any], Any]:
            chunks = models.generate_content_stream(
                model=request.model, contents=contents, config=config
            )
            try:
                return chunks, next(chunks, None)
            except catch as exc:
                raise self._map(exc, request.model, read_timeout) from None

        chunks, first = self._retry.call(open_stream)
        try:
            chunk = first
            while chunk is not None:
                text = self._on_chunk(chunk, state)
                if text:
                    state.chunks += 1
                    yield text
                chunk = next(chunks, None)
        except catch as exc:
            if not state.completed:
                raise self._map(exc, request.model, read_timeout) from None
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if not state.completed:
            raise unterminated(self.endpoint.provider_id, _END_MARKER)

    def list_models(self) -> list[str]:
        catch = self._catch

        def attempt() -> list[str]:
            try:
                names = [model.name for model in self._client.models.list()]
            except catch as exc:
                raise self._map(exc, None) from None
            return [n.removeprefix("models/") for n in names if isinstance(n, str)]

        return self._retry.call(attempt)

    # -- async -----------------------------------------------------------------------------

    def _aio(self) -> Any:
        if self._async_client is None:
            self._async_client = self._genai.Client(
                api_key=self.endpoint.api_key,
                vertexai=False,
                http_options=self._http_options(None),
            )
        return self._async_client.aio

    async def _close_loop_session(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the aiohttp session the SDK opened for `loop` (it never does so itself)."""
        api_client = getattr(self._async_client, "_api_client", None)
        sessions = getattr(api_client, "_aiohttp_sessions", None)
        if isinstance(sessions, dict):
            session = sessions.pop(loop, None)
            if session is not None:
                await session.close()

    def _limits(self, request: ChatRequest) -> tuple[float, float]:
        """(seconds until the answer starts, seconds between stream events).

        The first wait covers connecting too, which the SDK's aiohttp call does not bound
        apart, so it is `read` plus the connect timeout (capped by `read`, as per-call
        timeouts do for the httpx2 transports)."""
        read = request.params.timeout or self.endpoint.timeouts.read
        return read + min(read, self.endpoint.timeouts.connect), read

    async def acomplete(self, request: ChatRequest) -> Completion:
        models = self._aio().models
        await self._loops.get()
        contents = self._contents(request)
        config = self._config(request, blocking=False)
        first_wait, _ = self._limits(request)
        catch = self._catch

        async def attempt() -> Completion:
            try:
                async with asyncio.timeout(first_wait):
                    response = await models.generate_content(
                        model=request.model, contents=contents, config=config
                    )
            except catch as exc:
                raise self._map(exc, request.model, first_wait) from None
            return self._completion(response)

        return await self._retry.acall(attempt)

    async def astream(self, request: ChatRequest, state: StreamState) -> AsyncIterator[str]:
        models = self._aio().models
        await self._loops.get()
        contents = self._contents(request)
        config = self._config(request, blocking=False)
        first_wait, read = self._limits(request)
        catch = self._catch

        async def open_stream() -> tuple[Any, Any]:
            chunks = await models.generate_content_stream(
                model=request.model, contents=contents, config=config
            )
            try:
                async with asyncio.timeout(first_wait):
                    return chunks, await anext(chunks, None)
            except catch as exc:
                await chunks.aclose()
                raise self._map(exc, request.model, first_wait) from None

        chunks, first = await self._retry.acall(open_stream)
        try:
            chunk = first
            while chunk is not None:
                text = self._on_chunk(chunk, state)
                if text:
                    state.chunks += 1
                    yield text
                async with asyncio.timeout(read):
                    chunk = await anext(chunks, None)
        except catch as exc:
            if not state.completed:
                raise self._map(exc, request.model, read) from None
        finally:
            await chunks.aclose()
        if not state.completed:
            raise unterminated(self.endpoint.provider_id, _END_MARKER)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()
        self._loops.close()
        if self._async_client is not None:
            self._async_client.close()  # the idle httpx2 client the SDK builds regardless

    async def aclose(self) -> None:
        await self._loops.aclose()
        self.close()


__all__ = ["GeminiAdapter"]
