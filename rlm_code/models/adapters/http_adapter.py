"""`HTTPAdapter`: the shared set-up and call loop of the raw-HTTP adapters."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

from rlm_code.models.adapters._lines import adrain, drain
from rlm_code.models.adapters._transport import AsyncHTTP, SyncHTTP
from rlm_code.models.adapters.base import Adapter, Endpoint
from rlm_code.models.adapters.errors import unterminated
from rlm_code.models.adapters.retry import RetryPolicy
from rlm_code.models.types import ChatRequest, Completion, StreamState


class HTTPAdapter(Adapter):
    """The raw-HTTP adapters (ollama, openai_compatible): one set-up, one call loop.

    A `SyncHTTP` pool is made at connect time; the `AsyncHTTP` one (and with it aiohttp) only
    when the first async call comes. The key, when there is one, is a bearer token. The two
    subclasses differ only in what they name here: the chat path, the request body, how a
    whole answer and one stream line are parsed, and the stream's end marker. A stream is
    read to EOF after its end marker so its connection goes back to the pool.
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

    @property
    def _aio(self) -> AsyncHTTP:
        if self._async is None:
            e = self.endpoint
            self._async = AsyncHTTP(
                e.provider_id, e.base_url, self._headers, e.timeouts, self._retry
            )
        return self._async

    @abstractmethod
    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        """The request body in the provider's format."""

    @abstractmethod
    def parse_completion(self, data: Any) -> Completion:
        """A whole answer (parsed JSON) -> Completion."""

    @abstractmethod
    def parse_line(self, line: bytes, state: StreamState) -> str | None:
        """One stream line -> its text (or None); usage and the end marker go to `state`."""

    def complete(self, request: ChatRequest) -> Completion:
        data = self._sync.request_json(
            "POST",
            self.chat_path,
            self.payload(request, False),
            timeout=request.params.timeout,
            model=request.model,
        )
        return self.parse_completion(data)

    def stream(self, request: ChatRequest, state: StreamState) -> Iterator[str]:
        lines = self._sync.stream_lines(
            self.chat_path,
            self.payload(request, True),
            timeout=request.params.timeout,
            model=request.model,
        )
        parse_line = self.parse_line
        try:
            for line in lines:
                text = parse_line(line, state)
                if state.completed:
                    drain(lines)
                if text:
                    state.chunks += 1
                    yield text
        finally:
            lines.close()
        if not state.completed:
            raise unterminated(self.endpoint.provider_id, self.end_marker)

    async def acomplete(self, request: ChatRequest) -> Completion:
        data = await self._aio.request_json(
            "POST",
            self.chat_path,
            self.payload(request, False),
            timeout=request.params.timeout,
            model=request.model,
        )
        return self.parse_completion(data)

    async def astream(self, request: ChatRequest, state: StreamState) -> AsyncIterator[str]:
        lines = self._aio.stream_lines(
            self.chat_path,
            self.payload(request, True),
            timeout=request.params.timeout,
            model=request.model,
        )
        parse_line = self.parse_line
        try:
            async for line in lines:
                text = parse_line(line, state)
                if state.completed:
                    await adrain(lines)
                if text:
                    state.chunks += 1
                    yield text
        finally:
            await lines.aclose()
        if not state.completed:
            raise unterminated(self.endpoint.provider_id, self.end_marker)

    def close(self) -> None:
        self._sync.close()
        if self._async is not None:
            self._async.close()

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.aclose()
        self.close()
