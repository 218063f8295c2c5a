"""A streamed reply as an object: `ResponseStream` and its async twin.

Iterating yields the typed events (`TextDelta`, `ReasoningDelta`, `ToolCallDelta`,
`ToolCallDone`, `UsageReport`) as they arrive and, last, `Finished(response)`. After that,
`stream.response` is the whole `Response`; at any moment
before, `stream.response` is what has arrived so far (with `complete=False`).

The stream owns its adapter generator: it is closed — and its connection released — when the
stream is read to the end, on `close()`/`aclose()`, when the `with` block is left, or when a
typed error ends it. Exactly once, at that moment, `on_done(response, error)` runs: the
connector records usage there, so a stream left early still counts what it received.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, Generic, TypeVar

from rlm_code.core.exceptions import ModelError
from rlm_code.models.types import (
    AdapterEvent,
    Finished,
    FinishReason,
    ReasoningDelta,
    ReplayDetail,
    Response,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolCallDone,
    Usage,
    UsageReport,
    final_finish_reason,
)

OnDone = Callable[[Response, ModelError | None], None]
E = TypeVar("E", Iterator[AdapterEvent], AsyncIterator[AdapterEvent])


class _Accumulator:
    """Builds a `Response` from adapter events; usable at any moment."""

    __slots__ = ("_usage", "details", "end", "model", "parts", "provider", "reasoning", "tools")

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.parts: list[str] = []
        self.reasoning: list[str] | None = None
        self.tools: list[ToolCall] = []
        self.details: list[dict[str, Any]] = []
        self._usage = Usage()
        self.end: StreamEnd | None = None

    def add(self, event: AdapterEvent) -> StreamEvent | None:
        """Take one adapter event; return what the caller sees (None for adapter-internal
        events: the end marker and replay details)."""
        kind = type(event)
        if kind is TextDelta:
            self.parts.append(event.text)  # type: ignore[union-attr]
        elif kind is UsageReport:
            self._usage = self._usage.merged(event.usage)  # type: ignore[union-attr]
        elif kind is ReasoningDelta:
            if self.reasoning is None:
                self.reasoning = []
            self.reasoning.append(event.text)  # type: ignore[union-attr]
        elif kind is ToolCallDone:
            self.tools.append(event.tool_call)  # type: ignore[union-attr]
        elif kind is StreamEnd:
            self.end = event  # type: ignore[assignment]
            return None
        elif kind is ReplayDetail:
            self.details.append(event.detail)  # type: ignore[union-attr]
            return None
        return event  # type: ignore[return-value]

    def response(self) -> Response:
        end = self.end
        finish: FinishReason | None = None
        if end is not None:
            finish = final_finish_reason(end.finish_reason, bool(self.tools))
        return Response(
            text="".join(self.parts),
            usage=self._usage,
            finish_reason=finish,
            provider=self.provider,
            model=self.model,
            raw_finish_reason=end.raw if end else None,
            reasoning=None if self.reasoning is None else "".join(self.reasoning),
            complete=end is not None,
            tool_calls=list(self.tools),
            reasoning_details=list(self.details),
        )


class _StreamBase(Generic[E]):
    """What both streams share: the adapter's events (`E`), the reply so far and `on_done`."""

    def __init__(self, events: E, provider: str, model: str, on_done: OnDone | None = None) -> None:
        self._events: E = events
        self._acc = _Accumulator(provider, model)
        self._on_done = on_done
        self._final: Response | None = None
        self._finished_sent = False

    @property
    def response(self) -> Response:
        """The whole reply once the stream has ended; what arrived so far before that."""
        return self._final if self._final is not None else self._acc.response()

    def _finished_once(self) -> Finished | None:
        """After the end: `Finished` once for a complete reply, then None (stop iterating)."""
        if self._finished_sent or self._final is None or not self._final.complete:
            return None
        self._finished_sent = True
        return Finished(self._final)

    def _settle(self, error: ModelError | None) -> None:
        if self._final is not None:
            return
        self._final = self._acc.response()
        if self._on_done is not None:
            self._on_done(self._final, error)


class ResponseStream(_StreamBase[Iterator[AdapterEvent]]):
    """A streamed reply: iterate for events; `.response` after the last one."""

    def __iter__(self) -> ResponseStream:
        return self

    def __next__(self) -> StreamEvent:
        if self._final is not None:
            if (finished := self._finished_once()) is None:
                raise StopIteration
            return finished
        add = self._acc.add
        try:
            for event in self._events:
                seen = add(event)
                if seen is not None:
                    return seen
        except ModelError as exc:
            self._close_events()
            self._settle(exc)
            raise
        except BaseException:
            self._close_events()
            self._settle(None)
            raise
        self._close_events()
        self._settle(None)
        self._finished_sent = True
        return Finished(self.response)

    def text(self) -> Iterator[str]:
        """Only the reply's text pieces, as they arrive (what `stream_response` yields).

        It reads the adapter's events itself rather than through `__next__`: this loop runs
        for every chunk of every streamed call, and a text piece then costs one append."""
        acc, parts = self._acc, self._acc.parts
        error: ModelError | None = None
        try:
            for event in self._events:
                if type(event) is TextDelta:
                    parts.append(event.text)
                    yield event.text
                else:
                    acc.add(event)
        except ModelError as exc:
            error = exc
            raise
        finally:
            self._close_events()
            self._settle(error)

    def _close_events(self) -> None:
        close = getattr(self._events, "close", None)
        if close is not None:
            close()

    def close(self) -> None:
        """Stop reading, release the connection and record what was received. Idempotent."""
        if self._final is None:
            self._close_events()
            self._settle(None)

    def __enter__(self) -> ResponseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_final", True) is None:
            self.close()


class AsyncResponseStream(_StreamBase[AsyncIterator[AdapterEvent]]):
    """Async twin of `ResponseStream` (`async for`, `async with`, `await aclose()`)."""

    def __aiter__(self) -> AsyncResponseStream:
        return self

    async def __anext__(self) -> StreamEvent:
        if self._final is not None:
            if (finished := self._finished_once()) is None:
                raise StopAsyncIteration
            return finished
        add = self._acc.add
        try:
            async for event in self._events:
                seen = add(event)
                if seen is not None:
                    return seen
        except ModelError as exc:
            await self._close_events()
            self._settle(exc)
            raise
        except BaseException:
            await self._close_events()
            self._settle(None)
            raise
        await self._close_events()
        self._settle(None)
        self._finished_sent = True
        return Finished(self.response)

    async def text(self) -> AsyncIterator[str]:
        """Only the reply's text pieces (what `astream_response` yields); see
        `ResponseStream.text`."""
        acc, parts = self._acc, self._acc.parts
        error: ModelError | None = None
        try:
            async for event in self._events:
                if type(event) is TextDelta:
                    parts.append(event.text)
                    yield event.text
                else:
                    acc.add(event)
        except ModelError as exc:
            error = exc
            raise
        finally:
            await self._close_events()
            self._settle(error)

    async def _close_events(self) -> None:
        aclose: Any = getattr(self._events, "aclose", None)
        if aclose is not None:
            await aclose()

    async def aclose(self) -> None:
        """Stop reading, release the connection and record what was received. Idempotent."""
        if self._final is None:
            await self._close_events()
            self._settle(None)

    async def __aenter__(self) -> AsyncResponseStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
