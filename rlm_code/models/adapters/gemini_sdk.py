"""Google Gemini through the official `google-genai` SDK (adapter type "gemini", route "sdk").

Mapping to `generate_content`: the system prompt is the config's `system_instruction`; the
turns are `contents` with the roles `user` and `model`; `max_tokens`, `temperature` and `stop`
become `max_output_tokens`, `temperature` and `stop_sequences`. A call with none of these (and
no tools, structured output or reasoning) sends no config at all (the SDK's config conversion
costs about as much as the HTTP exchange with a local server); otherwise automatic function
calling is turned off in it (tools go as declarations, never as Python callables). Images,
tool calls and their thought signatures, tool results, tools, tool_choice, response_format
and reasoning: see `_gemini_wire`, which builds the request and reads the reply's parts.

Usage comes from `usage_metadata`: `prompt_token_count` includes the cached tokens
(`cached_content_token_count`), which are subtracted for `input_tokens` and reported as cache
reads; `candidates_token_count` leaves the thinking tokens out, so output is candidates plus
`thoughts_token_count` (billed as output; reported apart as reasoning too). A stream sends
cumulative counts on every event, so a stream stopped early records the counts received so
far. Gemini streams have no end event: the reply is complete with the event that carries a
`finish_reason`; nothing is read after it but a bounded drain (so a server that keeps the
connection open cannot hold the call), and a stream that ends without one raises.

Redirects are off on both clients (`follow_redirects=False` for httpx2, `allow_redirects=False`
for aiohttp): the SDK would otherwise re-send `x-goog-api-key` to wherever a 3xx points.

Clients, timeouts and retries. The SDK retries on its own unless told otherwise, so both
clients get `HttpRetryOptions(attempts=1)` and our `RetryPolicy` retries, as for every adapter.

- Blocking calls use one `genai.Client` per connection. Its single `timeout` applies to every
  phase of an httpx2 request; an httpx2 request hook puts the shorter connect timeout back, so
  a dead host fails after `timeouts.connect`, not `timeouts.read`. It sends through
  `_sdk.deadline_transport`, which bounds a call with `timeout=` as a whole.
- Async calls use a second client, made on first use, because the SDK sends them through
  aiohttp with its timeout as a *total* limit, which would cut a long stream. That client has
  no SDK timeout; we bound the wait for the answer to start by `connect + read` and every
  further stream event by `read` ourselves (`asyncio.timeout`), which is what `read` means
  everywhere else ("between bytes of an answer"). The SDK keeps one aiohttp session per event
  loop but never closes it when the loop ends; we close the ending loop's session at loop
  shutdown, so `asyncio.run` per call does not leak sockets. A call's `timeout=` bounds the
  whole call there too (`asyncio.timeout` for the time left).

Known difference: for blocking calls the SDK decodes answers leniently, so invalid UTF-8 in a
reply arrives as U+FFFD characters, not as an error (the async path raises
`ResponseFormatError`, as the other adapters do).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

from rlm_code.core.exceptions import (
    ContentFilterError,
    MissingAPIKeyError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._gemini_errors import GeminiErrors, retry_delay
from rlm_code.models.adapters._gemini_wire import (
    ChunkReader,
    finish_reason,
    gemini_usage,
    parse_reply,
    reply_text,
    request_config,
    request_contents,
    usage_counts,
)
from rlm_code.models.adapters._loop_local import LoopLocal
from rlm_code.models.adapters._sdk import (
    CallScope,
    cut_short,
    deadline_transport,
    finish,
    scoped,
)
from rlm_code.models.adapters._transport import DRAIN_SECONDS, call_deadline, default_ssl_context
from rlm_code.models.adapters.base import Adapter, Endpoint, require_sdk
from rlm_code.models.adapters.errors import (
    Deadline,
    unterminated,
)
from rlm_code.models.adapters.retry import RetryPolicy
from rlm_code.models.types import AdapterEvent, ChatRequest, Response, Usage

_END_MARKER = "a finish_reason"


class GeminiAdapter(Adapter):
    """Gemini API on the official SDK; see the module docstring."""

    adapter_type = "gemini"
    route = "sdk"

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
        # Full JSON schemas for tools and structured output (google-genai >= 1.52 has them).
        self._json_schema = "parameters_json_schema" in types.FunctionDeclaration.model_fields
        self._retry = RetryPolicy(endpoint.retry)
        self._errors = GeminiErrors(endpoint, genai_errors, httpx2, aiohttp)
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
                    "transport": deadline_transport(httpx2, httpx2.Limits()),
                    "follow_redirects": False,
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
        """The call's config dict (`_gemini_wire.request_config`); blocking calls carry the
        call's timeout in it (async ones are bounded by `asyncio.timeout` instead)."""
        timeout = request.params.timeout
        timeout_ms = max(1, int(timeout * 1000)) if blocking and timeout is not None else None
        return request_config(request, timeout_ms=timeout_ms, json_schema=self._json_schema)

    def _contents(self, request: ChatRequest) -> str | list[dict[str, Any]]:
        return request_contents(request, self.endpoint.provider_id)

    def _reply(self, request: ChatRequest, response: Any) -> Response:
        provider = self.endpoint.provider_id
        parsed = parse_reply(provider, response)
        if parsed is None:
            feedback = getattr(response, "prompt_feedback", None)
            blocked = getattr(feedback, "block_reason", None)
            if blocked is not None:
                reason = getattr(blocked, "value", blocked)
                raise ContentFilterError(
                    f"{provider} blocked the prompt ({reason})",
                    provider=provider,
                    hint="Rephrase the prompt; Gemini's safety filters refused it.",
                )
            raise ResponseFormatError(
                f"{provider} sent an answer without candidates", provider=provider
            )
        usage = gemini_usage(getattr(response, "usage_metadata", None)) or Usage()
        return self.reply(
            request,
            parsed.text,
            usage,
            finish_reason(response),
            tool_calls=parsed.tool_calls,
            reasoning=parsed.reasoning,
            reasoning_details=parsed.details,
        )

    def count_tokens(self, request: ChatRequest) -> int:
        """`models.count_tokens` on the request's contents. Gemini's developer API counts
        contents only, so a system prompt or tools (which it would leave out) are refused
        rather than counted short."""
        provider = self.endpoint.provider_id
        if request.system or request.tools:
            raise UnsupportedParameterError(
                f"{provider}'s count_tokens counts the conversation only; a system prompt or "
                "tools would be left out of the count, so they are refused here",
                provider=provider,
            )
        contents = self._contents(request)

        def attempt() -> int:
            with self._errors.at(request.model):
                answer = self._client.models.count_tokens(model=request.model, contents=contents)
            tokens = getattr(answer, "total_tokens", None)
            if not isinstance(tokens, int) or isinstance(tokens, bool):
                raise ResponseFormatError(
                    f"{provider} sent a token count without total_tokens", provider=provider
                )
            return tokens

        return self._retry.call(attempt)

    # -- sync ------------------------------------------------------------------------------

    def complete(self, request: ChatRequest) -> Response:
        models = self._client.models
        contents = self._contents(request)
        config = self._config(request, blocking=True)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)

        def attempt() -> Any:
            with at, scoped(CallScope(deadline)):
                return models.generate_content(
                    model=request.model, contents=contents, config=config
                )

        with at:  # the SDK converts the answer after reading it
            return self._reply(request, self._retry.call(attempt))

    def stream(self, request: ChatRequest) -> Iterator[AdapterEvent]:
        models = self._client.models
        contents = self._contents(request)
        config = self._config(request, blocking=True)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        scope = CallScope(deadline)

        # The SDK sends the request when its generator is first advanced, so "opening" the
        # stream means getting its first event; only that is retried.
        def open_stream() -> tuple[Any, Any]:
            scope.close()
            chunks = models.generate_content_stream(
                model=request.model, contents=contents, config=config
            )
            with at, scoped(scope):
                return chunks, next(chunks, None)

        chunks, chunk = self._retry.call(open_stream)
        reader = ChunkReader(self.endpoint.provider_id)
        try:
            with at:
                while chunk is not None:
                    events, last = reader.events(chunk)
                    yield from events
                    if last:
                        for response in scope.responses:  # a bounded drain, then closed
                            finish(response, iter(response.stream))
                        return
                    chunk = next(chunks, None)
        finally:
            chunks.close()
            scope.close()
        provider = self.endpoint.provider_id
        raise cut_short(provider, deadline, unterminated(provider, _END_MARKER))

    def list_models(self) -> list[str]:
        def attempt() -> list[str]:
            with self._errors.at():
                names = [model.name for model in self._client.models.list()]
            return [n.removeprefix("models/") for n in names if isinstance(n, str)]

        return self._retry.call(attempt)

    # -- async -----------------------------------------------------------------------------

    def _aio(self) -> Any:
        if self._async_client is None:
            self._async_client = self._genai.Client(
                api_key=self.endpoint.api_key,
                vertexai=False,
                http_options=self._http_options(
                    None,
                    async_client_args={"allow_redirects": False, "ssl": default_ssl_context()},
                ),
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

    def _limits(self, request: ChatRequest, deadline: Deadline) -> tuple[float, float]:
        """(seconds until the answer starts, seconds between stream events).

        The first wait covers connecting too, which the SDK's aiohttp call does not bound
        apart, so it is `read` plus the connect timeout (capped by `read`, as per-call
        timeouts do for the httpx2 transports); a call timeout caps both by the time left."""
        read = request.params.timeout or self.endpoint.timeouts.read
        first = read + min(read, self.endpoint.timeouts.connect)
        left = deadline.remaining()
        if left is not None:
            first, read = min(first, left), min(read, left)
        return max(0.0, first), max(0.0, read)

    async def acomplete(self, request: ChatRequest) -> Response:
        models = self._aio().models
        await self._loops.get()
        contents = self._contents(request)
        config = self._config(request, blocking=False)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)

        async def attempt() -> Any:
            first_wait, _ = self._limits(request, deadline)
            with at:
                async with asyncio.timeout(first_wait):
                    return await models.generate_content(
                        model=request.model, contents=contents, config=config
                    )

        with at:
            return self._reply(request, await self._retry.acall(attempt))

    async def astream(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        models = self._aio().models
        await self._loops.get()
        contents = self._contents(request)
        config = self._config(request, blocking=False)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)

        async def open_stream() -> tuple[Any, Any]:
            first_wait, _ = self._limits(request, deadline)
            with at:
                chunks = await models.generate_content_stream(
                    model=request.model, contents=contents, config=config
                )
                try:
                    async with asyncio.timeout(first_wait):
                        return chunks, await anext(chunks, None)
                except BaseException:
                    await chunks.aclose()
                    raise

        chunks, chunk = await self._retry.acall(open_stream)
        reader = ChunkReader(self.endpoint.provider_id)
        try:
            with at:
                while chunk is not None:
                    events, last = reader.events(chunk)
                    for event in events:
                        yield event
                    if last:
                        await self._drain(chunks)
                        return
                    _, read = self._limits(request, deadline)
                    async with asyncio.timeout(read):
                        chunk = await anext(chunks, None)
        finally:
            await chunks.aclose()
        raise unterminated(self.endpoint.provider_id, _END_MARKER)

    @staticmethod
    async def _drain(chunks: Any) -> None:
        """A bounded drain after the last chunk: the SDK releases the connection to the pool
        when its stream ends; a server that keeps talking is dropped after `DRAIN_SECONDS`."""
        try:
            async with asyncio.timeout(DRAIN_SECONDS):
                async for _ in chunks:
                    pass
        except Exception:
            pass

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        self._client.close()
        self._loops.close()
        if self._async_client is not None:
            self._async_client.close()  # the idle httpx2 client the SDK builds regardless

    async def aclose(self) -> None:
        await self._loops.aclose()
        self.close()


__all__ = ["GeminiAdapter", "gemini_usage", "reply_text", "retry_delay", "usage_counts"]
