"""`HTTPAdapter`: the shared set-up and call loop of the raw-HTTP adapters (ollama,
openai_compatible).

A subclass names only what differs: the chat path, the request body, how a whole answer
becomes a `Response`, and a `StreamParser` that turns body bytes into typed events (its own
line or SSE splitting included). Everything else is here, once for blocking and async calls:
the transports, retries, the call deadline, the size caps, and the end of a stream. When the
parser reports the end marker (`StreamEnd`) the body is *finished* (a bounded drain, so the
connection is reused when the server ends the body at once, and dropped when it keeps
talking) and the stream returns; a body that ends without the marker raises `unterminated`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from rlm_code.models.adapters._transport import SyncHTTP
from rlm_code.models.adapters.base import Adapter, Endpoint
from rlm_code.models.adapters.errors import unterminated
from rlm_code.models.adapters.retry import RetryPolicy
from rlm_code.models.types import AdapterEvent, ChatRequest, Response, StreamEnd

if TYPE_CHECKING:
    from rlm_code.models.adapters._async_transport import AsyncHTTP


class StreamParser(Protocol):
    """Body bytes -> typed events, for one stream. `feed` may be called with any chunking."""

    def feed(self, chunk: bytes) -> list[AdapterEvent]:
        """The events completed by `chunk` (a `StreamEnd` when the end marker arrived)."""

    def end(self) -> list[AdapterEvent]:
        """The events of what was left unterminated when the body ended."""


class HTTPAdapter(Adapter):
    """The raw-HTTP adapters: one set-up, one call loop.

    A `SyncHTTP` pool is made at connect time; the `AsyncHTTP` one (and with it aiohttp) only
    when the first async call comes. The key, when there is one, is a bearer token.
    """

    chat_path: ClassVar[str]
    end_marker: ClassVar[str]

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        self._headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
        self._retry = RetryPolicy(endpoint.retry)
        self._sync = SyncHTTP(
            endpoint.provider_id, endpoint.base_url, self._headers, endpoint.timeouts, self._retry
        )
        self._async: AsyncHTTP | None = None
        self._hook: Callable[[Any], None] | None = None

    def watch_headers(self, hook: Callable[[Any], None]) -> None:
        """Show every answer's headers to `hook` (both transports): routes learn rate limits."""
        self._sync.on_headers = hook
        self._hook = hook
        if self._async is not None:
            self._async.on_headers = hook

    @property
    def _aio(self) -> AsyncHTTP:
        if self._async is None:
            # The async HTTP stack (asyncio, aiohttp) loads with the first async call.
            from rlm_code.models.adapters._async_transport import AsyncHTTP

            e = self.endpoint
            self._async = AsyncHTTP(
                e.provider_id, e.base_url, self._headers, e.timeouts, self._retry
            )
            self._async.on_headers = self._hook
        return self._async

    @abstractmethod
    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The request body in the provider's format."""

    @abstractmethod
    def parse_reply(self, request: ChatRequest, data: Any) -> Response:
        """A whole answer (parsed JSON) -> `Response` (through `self.reply`)."""

    @abstractmethod
    def stream_parser(self) -> StreamParser:
        """A fresh parser for one streamed answer."""

    def complete(self, request: ChatRequest) -> Response:
        data = self._sync.request_json(
            "POST",
            self.chat_path,
            self.payload(request, False),
            timeout=request.params.timeout,
            model=request.model,
        )
        return self.parse_reply(request, data)

    async def acomplete(self, request: ChatRequest) -> Response:
        data = await self._aio.request_json(
            "POST",
            self.chat_path,
            self.payload(request, False),
            timeout=request.params.timeout,
            model=request.model,
        )
        return self.parse_reply(request, data)

    def stream(self, request: ChatRequest) -> Iterator[AdapterEvent]:
        body = self._sync.open_stream(
            self.chat_path,
            self.payload(request, True),
            timeout=request.params.timeout,
            model=request.model,
        )
        parser = self.stream_parser()
        try:
            for chunk in body.chunks():
                for event in parser.feed(chunk):
                    if type(event) is StreamEnd:
                        body.finish()  # before handing the end over: the caller may stop here
                        yield event
                        return
                    yield event
            for event in parser.end():
                if type(event) is StreamEnd:
                    yield event
                    return
                yield event
        finally:
            body.close()
        raise unterminated(self.endpoint.provider_id, self.end_marker)

    async def astream(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        body = await self._aio.open_stream(
            self.chat_path,
            self.payload(request, True),
            timeout=request.params.timeout,
            model=request.model,
        )
        parser = self.stream_parser()
        try:
            async for chunk in body.chunks():
                for event in parser.feed(chunk):
                    if type(event) is StreamEnd:
                        await body.finish()
                        yield event
                        return
                    yield event
            for event in parser.end():
                if type(event) is StreamEnd:
                    yield event
                    return
                yield event
        finally:
            body.close()
        raise unterminated(self.endpoint.provider_id, self.end_marker)

    def close(self) -> None:
        self._sync.close()
        if self._async is not None:
            self._async.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        self.close()
