"""The two Stainless-generated SDKs (openai, anthropic): one error mapper, one adapter base.

Both SDKs come from the same generator and share an exception tree (`APIStatusError` with
`.status_code`/`.response`, `APIConnectionError` with the httpx2 error as `__cause__`,
`APITimeoutError`) and a client shape (`with_streaming_response`, `DefaultHttpxClient`), so
the set-up, the call loop and the error mapping live here once; `openai_sdk` and
`anthropic_sdk` name only the chat call, its arguments and their parsers.
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, ClassVar, Protocol

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import (
    MissingAPIKeyError,
    ModelError,
    ResponseFormatError,
)
from rlm_code.models.adapters._lines import SSEEvent, aiter_sse, iter_sse, loads
from rlm_code.models.adapters._loop_local import LoopLocal
from rlm_code.models.adapters._sdk import (
    CallScope,
    ErrorMapper,
    abounded,
    afinish,
    aread_capped,
    cut_short,
    deadline_transport,
    finish,
    read_capped,
    scoped,
    sdk_timeout,
    within,
)
from rlm_code.models.adapters._transport import call_deadline, default_ssl_context
from rlm_code.models.adapters.base import Adapter, Endpoint, require_sdk
from rlm_code.models.adapters.errors import (
    Deadline,
    bad_payload,
    error_for_status,
    map_httpx_error,
    refused,
    stream_error,
    timed_out,
    unterminated,
)
from rlm_code.models.adapters.retry import RetryPolicy
from rlm_code.models.types import AdapterEvent, ChatRequest, Response, Usage

# httpcore's message when a kept-alive connection was closed before any answer: safe to retry,
# unlike a body cut in the middle ("peer closed connection without sending complete ...").
_NO_RESPONSE = "without sending a response"


def status_body(exc: Any) -> str | None:
    """The raw body of an SDK status error (already read by the SDK), else its parsed body."""
    response = getattr(exc, "response", None)
    if response is not None:
        try:
            text = response.text
        except Exception:
            text = None
        if isinstance(text, str) and text:
            return text
    body = getattr(exc, "body", None)
    if isinstance(body, dict | list):
        return json.dumps(body)
    if isinstance(body, str):
        return body
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) else None


def response_headers(exc: Any) -> Any:
    response = getattr(exc, "response", None)
    return getattr(response, "headers", None)


class StainlessErrors(ErrorMapper):
    """The OpenAI and Anthropic SDKs' exceptions (one generator made both, with one tree:
    `APIStatusError` with `.status_code`/`.response`, `APIConnectionError` with the httpx2
    error as `__cause__`, `APITimeoutError`), plus the raw httpx2/JSON/UTF-8 errors that
    escape them while a stream is read."""

    def __init__(
        self, sdk: Any, httpx: Any, provider: str, where: str, timeouts: TimeoutSettings
    ) -> None:
        self.sdk = sdk
        self.httpx = httpx
        self.provider = provider
        self.where = where
        self.timeouts = timeouts
        # Anything else (a programming error) propagates unchanged.
        self.catch = (
            sdk.APIError,
            httpx.TransportError,
            json.JSONDecodeError,
            UnicodeDecodeError,
            TimeoutError,
        )

    def map(self, exc: BaseException, model: str | None, seconds: float | None) -> ModelError:
        sdk = self.sdk
        provider = self.provider
        if isinstance(exc, sdk.APIStatusError):
            status = int(exc.status_code)
            if status < 300:  # an `error` event inside a 200 stream
                return stream_error(provider, status_body(exc))
            return error_for_status(
                provider, status, status_body(exc), response_headers(exc), model=model
            )
        if isinstance(exc, sdk.APIConnectionError):  # APITimeoutError included
            cause = exc.__cause__
            if isinstance(cause, self.httpx.TransportError):
                return self._transport(cause, seconds)
            if isinstance(exc, sdk.APITimeoutError):
                return self._transport(self.httpx.ReadTimeout("timed out"), seconds)
            return refused(provider, self.where, exc)
        if isinstance(exc, sdk.APIResponseValidationError):
            return ResponseFormatError(
                f"{provider} sent an answer that does not match its API schema",
                provider=provider,
            )
        if isinstance(exc, sdk.APIError):  # e.g. an `error` object inside a stream
            detail = status_body(exc) or getattr(exc, "message", "") or type(exc).__name__
            return stream_error(provider, detail)
        if isinstance(exc, self.httpx.TransportError):
            return self._transport(exc, seconds)
        if isinstance(exc, TimeoutError):  # asyncio.timeout_at around an async call
            return timed_out(provider, "answer in time", seconds or self.timeouts.read, False)
        return bad_payload(provider, exc)

    def _transport(self, exc: BaseException, seconds: float | None) -> ModelError:
        answering = not (
            isinstance(exc, self.httpx.RemoteProtocolError) and _NO_RESPONSE in str(exc)
        )
        return map_httpx_error(
            self.httpx, self.provider, exc, self.where, self.timeouts, seconds, answering=answering
        )


async def _close_client(client: Any) -> None:
    await client.close()


class StreamParser(Protocol):
    """Server-sent events -> our events; `done` once the end marker was seen."""

    done: bool

    def event(self, sse: SSEEvent) -> list[AdapterEvent]: ...


class StainlessAdapter(Adapter):
    """Client set-up and call loop shared by the two Stainless-generated SDKs.

    One sync client per connection and one async client per event loop (`LoopLocal`), both
    with the SDK's retries off (our `RetryPolicy` retries the same way for every adapter),
    redirects off, our connect and read timeouts, and the shared TLS context that makes a
    client per loop cheap. The sync client sends through `DeadlineTransport`. Calls go
    through the SDK's `with_streaming_response`, which still builds, authenticates and sends
    the request and maps error statuses, but the body is read here: so the deadline is
    checked between chunks, the size is capped, and a stream stops reading at its end marker
    (the connection is closed, not read to its end). Subclasses name the SDK module, its
    client classes, the chat call, its arguments and the two parsers.
    """

    route = "sdk"
    end_marker: ClassVar[str]
    sdk_module: ClassVar[str]
    sync_client: ClassVar[str]
    async_client: ClassVar[str]
    key_env: ClassVar[str]

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        sdk = require_sdk(self.sdk_module, endpoint.provider_id)
        import httpx2

        if not endpoint.api_key:
            raise MissingAPIKeyError(
                f"the {self.sync_client} adapter needs an API key ({self.key_env} or api_key=)",
                provider=endpoint.provider_id,
            )
        self._sdk = sdk
        self._httpx = httpx2
        self._retry = RetryPolicy(endpoint.retry)
        self._errors = StainlessErrors(
            sdk, httpx2, endpoint.provider_id, endpoint.base_url, endpoint.timeouts
        )
        self._client_options: dict[str, Any] = {
            "api_key": endpoint.api_key,
            "base_url": endpoint.base_url,
            "max_retries": 0,
            "timeout": sdk_timeout(httpx2, endpoint.timeouts),
        }
        self._hook: Callable[[Any], None] | None = None  # `watch_headers`
        self._client = getattr(sdk, self.sync_client)(
            **self._client_options,
            http_client=sdk.DefaultHttpxClient(
                transport=deadline_transport(httpx2, sdk.DEFAULT_CONNECTION_LIMITS),
                follow_redirects=False,
                event_hooks={"response": [self._on_response]},
            ),
        )
        self._async_clients: LoopLocal[Any] = LoopLocal(
            self._new_async_client, _close_client, lambda c: bool(c.is_closed())
        )

    def _new_async_client(self) -> Any:
        # The shared TLS context makes a client per event loop cheap (~0.3 ms, not ~18 ms).
        http_client = self._sdk.DefaultAsyncHttpxClient(
            verify=default_ssl_context(),
            follow_redirects=False,
            event_hooks={"response": [self._aon_response]},
        )
        return getattr(self._sdk, self.async_client)(
            **self._client_options, http_client=http_client
        )

    def watch_headers(self, hook: Callable[[Any], None]) -> None:
        """Show every raw answer's headers to `hook` (routes learn rate limits there)."""
        self._hook = hook

    def _on_response(self, response: Any) -> None:
        if self._hook is not None:
            self._hook(response.headers)

    async def _aon_response(self, response: Any) -> None:
        if self._hook is not None:
            self._hook(response.headers)

    # -- what a subclass names ----------------------------------------------------------

    @abstractmethod
    def _create(self, client: Any) -> Any:
        """The SDK's `with_streaming_response.create` for the chat endpoint of `client`."""

    @abstractmethod
    def _arguments(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The SDK call's arguments."""

    @abstractmethod
    def _parse(self, data: object) -> tuple[str, Usage, str | None]:
        """A whole answer (parsed JSON) -> (text, usage, raw finish reason)."""

    @abstractmethod
    def _stream_parser(self) -> StreamParser:
        """A fresh parser for one stream's server-sent events."""

    # -- the call loop -------------------------------------------------------------------

    def _call_timeout(self, deadline: Deadline) -> dict[str, Any]:
        """The per-call SDK `timeout` argument: reads bounded by the time left, if any."""
        left = deadline.remaining()
        if left is None:
            return {}
        if left <= 0:
            raise deadline.error(self.endpoint.provider_id)
        return {"timeout": sdk_timeout(self._httpx, self.endpoint.timeouts, left)}

    def _reply(self, request: ChatRequest, body: bytes) -> Response:
        text, usage, reason = self._parse(loads(body, self.endpoint.provider_id))
        return self.reply(request, text, usage, reason)

    def complete(self, request: ChatRequest) -> Response:
        args = self._arguments(request, False)
        opener = self._create(self._client)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        provider = self.endpoint.provider_id

        def attempt() -> bytes:
            with (
                at,
                scoped(CallScope(deadline)),
                opener(**args, **self._call_timeout(deadline)) as response,
            ):
                return read_capped(response.http_response.iter_bytes(), provider, deadline)

        return self._reply(request, self._retry.call(attempt))

    def stream(self, request: ChatRequest) -> Iterator[AdapterEvent]:
        args = self._arguments(request, True)
        opener = self._create(self._client)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        provider = self.endpoint.provider_id

        def open_stream() -> Any:
            with at, scoped(CallScope(deadline)):
                return opener(**args, **self._call_timeout(deadline)).__enter__().http_response

        response = self._retry.call(open_stream)
        parser = self._stream_parser()
        chunks = response.iter_bytes()
        try:
            with at:
                for event in iter_sse(chunks, provider):
                    yield from parser.event(event)
                    if parser.done:
                        finish(response, chunks)  # no more than a bounded drain after it
                        return
        finally:
            response.close()
        raise cut_short(provider, deadline, unterminated(provider, self.end_marker))

    async def acomplete(self, request: ChatRequest) -> Response:
        args = self._arguments(request, False)
        opener = self._create(await self._async_clients.get())
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        provider = self.endpoint.provider_id

        async def attempt() -> bytes:
            with at:
                async with (
                    within(deadline),
                    opener(**args, **self._call_timeout(deadline)) as response,
                ):
                    return await aread_capped(response.http_response.aiter_bytes(), provider)

        return self._reply(request, await self._retry.acall(attempt))

    async def astream(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        args = self._arguments(request, True)
        opener = self._create(await self._async_clients.get())
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        provider = self.endpoint.provider_id

        async def open_stream() -> Any:
            with at:
                async with within(deadline):
                    manager = opener(**args, **self._call_timeout(deadline))
                    return (await manager.__aenter__()).http_response

        response = await self._retry.acall(open_stream)
        parser = self._stream_parser()
        chunks = abounded(response.aiter_bytes(), deadline)
        try:
            with at:
                async for event in aiter_sse(chunks, provider):
                    for item in parser.event(event):
                        yield item
                    if parser.done:
                        await afinish(response, chunks)  # a bounded drain after it
                        return
        finally:
            await response.aclose()
        raise unterminated(provider, self.end_marker)

    # -- lifecycle -----------------------------------------------------------------------

    def list_models(self) -> list[str]:
        """Model ids from the SDK's `models.list()` (both SDKs page through it for us)."""

        def attempt() -> list[str]:
            with self._errors.at():
                return [model.id for model in self._client.models.list()]

        return self._retry.call(attempt)

    def close(self) -> None:
        self._client.close()
        self._async_clients.close()

    async def aclose(self) -> None:
        await self._async_clients.aclose()
        self.close()
