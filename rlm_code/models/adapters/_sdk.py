"""Pieces shared by the SDK adapters (openai, anthropic, gemini) and the CLI route.

The SDKs retry, time out, follow redirects and raise in their own ways; these pieces make
them behave like the raw-HTTP adapters:

- `ErrorMapper.at(model, deadline)`: the one error boundary of a route, an `errors.Boundary`
  put around every I/O site. A mapper (`StainlessErrors` for the two Stainless SDKs, the
  Gemini and CLI ones in their modules) says which exceptions it owns and how each becomes a
  typed `ModelError`. The typed error keeps the status code and the SDK exception's type
  name (`original="openai.APIStatusError"`), never the exception itself: it is raised with
  `__cause__` and `__context__` both empty, because an SDK exception holds the server's
  error body, which may echo the API key (issue 10 item 11).
- The call's `timeout=` bounds the *whole* call (issue 10 item 14), while the SDKs' own
  timeouts are per read (a server trickling a byte every 0.25 s never trips them). The
  blocking SDK clients send through `deadline_transport`: each request gets connect and read
  timeouts of at most the time left, and the transports' shared watchdog shuts the socket
  down at the deadline, waking a read blocked inside the SDK. Async calls run under
  `asyncio.timeout` for the time left (`within`, `abounded`). The transport also remembers
  the responses a call opened (`CallScope`), so a stream can be closed right after its end
  marker even when the SDK hides the response (Gemini).
- `finish`/`afinish`: after a stream's end marker, a bounded drain (issue 10 item 3).
- No redirects: every SDK client is built with redirects off, so no request carrying the key
  ever goes to another address than the configured base URL (issue 10 item 5); a 3xx is a
  typed error naming where the server pointed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import ModelError
from rlm_code.models.adapters._lines import MAX_REPLY_BYTES, too_large
from rlm_code.models.adapters._transport import (
    DRAIN_BYTES,
    DRAIN_SECONDS,
    default_ssl_context,
    interrupt,
)
from rlm_code.models.adapters._watchdog import WATCHDOG
from rlm_code.models.adapters.errors import Boundary, Deadline

T = TypeVar("T")


def sdk_timeout(httpx: Any, timeouts: TimeoutSettings, seconds: float | None = None) -> Any:
    """httpx2 timeout: `read` for every phase but connect (per call: `seconds` as read)."""
    if seconds is None:
        return httpx.Timeout(timeouts.read, connect=timeouts.connect)
    return httpx.Timeout(seconds, connect=min(seconds, timeouts.connect))


class ErrorMapper:
    """A route's exception mapping: `catch` says what it owns, `map` builds the typed error.

    `at(...)` gives the route's one error boundary (`errors.Boundary`) for an I/O site of one
    call: our `ModelError`s pass through, an owned exception leaves as its typed error with
    `original` set and nothing chained. A call whose deadline has passed fails as that
    call's timeout, whatever the interrupted read raised."""

    provider: str
    catch: tuple[type[BaseException], ...] = ()

    def map(self, exc: BaseException, model: str | None, seconds: float | None) -> ModelError:
        raise NotImplementedError

    def at(self, model: str | None = None, deadline: Deadline | None = None) -> Boundary:
        seconds = deadline.seconds if deadline is not None else None

        def mapper(exc: BaseException) -> ModelError:
            if deadline is not None and deadline.at is not None and deadline.passed:
                return deadline.error(self.provider)
            return self.map(exc, model, seconds)

        return Boundary(self.catch, mapper)


# -- the whole-call deadline ----------------------------------------------------------------


def finish(response: Any, chunks: Iterator[bytes]) -> None:
    """Bounded drain after an end marker: the rest of the body is read for at most
    `DRAIN_SECONDS` and `DRAIN_BYTES`, so a well-behaved server's connection goes back to the
    pool and one that keeps talking is dropped."""
    watch = WATCHDOG.arm(time.monotonic() + DRAIN_SECONDS, interrupt(response))
    read = 0
    try:
        with contextlib.suppress(Exception):
            for chunk in chunks:
                read += len(chunk)
                if read > DRAIN_BYTES:
                    break
    finally:
        WATCHDOG.cancel(watch)
        response.close()


async def afinish(response: Any, chunks: AsyncIterator[bytes]) -> None:
    """Async twin of `finish`."""
    read = 0
    try:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_SECONDS):
                async for chunk in chunks:
                    read += len(chunk)
                    if read > DRAIN_BYTES:
                        break
    finally:
        await response.aclose()


class CallScope:
    """One blocking SDK call: its deadline and the responses its requests opened."""

    __slots__ = ("deadline", "responses")

    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline
        self.responses: list[Any] = []

    def close(self) -> None:
        """Close every response the call opened (stops reading after an end marker)."""
        for response in self.responses:
            with contextlib.suppress(Exception):  # a broken connection must not mask the reply
                response.close()
        self.responses.clear()


_SCOPE: ContextVar[CallScope | None] = ContextVar("rlm_code_sdk_call", default=None)


class scoped:
    """Makes `scope` the current call's scope for the requests sent inside the block.

    Only the sending of a request reads it (the transport wraps the response then), so a
    generator sets it around one step, never across a `yield`."""

    __slots__ = ("_scope", "_token")

    def __init__(self, scope: CallScope) -> None:
        self._scope = scope

    def __enter__(self) -> CallScope:
        self._token = _SCOPE.set(self._scope)
        return self._scope

    def __exit__(self, *exc: object) -> None:
        _SCOPE.reset(self._token)


def deadline_transport(httpx: Any, limits: Any) -> Any:
    """An httpx2 transport for the blocking SDK clients; see the module docstring."""

    class DeadlineStream(httpx.SyncByteStream):  # type: ignore[misc]
        """A body read under its call's deadline: the watchdog interrupts a blocked read at
        the deadline; closing the body disarms it."""

        def __init__(self, inner: Any, watch: list[Any]) -> None:
            self._inner = inner
            self._watch = watch

        def __iter__(self) -> Iterator[bytes]:
            return iter(self._inner)

        def close(self) -> None:
            WATCHDOG.cancel(self._watch)
            self._inner.close()

    class DeadlineTransport(httpx.BaseTransport):  # type: ignore[misc]
        def __init__(self) -> None:
            self._inner = httpx.HTTPTransport(verify=default_ssl_context(), limits=limits)

        def handle_request(self, request: Any) -> Any:
            scope = _SCOPE.get()
            if scope is None:
                return self._inner.handle_request(request)
            deadline = scope.deadline
            left = deadline.remaining()
            if left is not None:
                if left <= 0:
                    deadline.fired = True
                    raise httpx.ReadTimeout("the call's timeout passed", request=request)
                timeout = request.extensions.get("timeout")
                if isinstance(timeout, dict):
                    request.extensions["timeout"] = {
                        k: left if v is None else min(v, left) for k, v in timeout.items()
                    }
            response = self._inner.handle_request(request)
            if deadline.at is not None:
                watch = WATCHDOG.arm(deadline.at, interrupt(response, deadline))
                response.stream = DeadlineStream(response.stream, watch)
            scope.responses.append(response)
            return response

        def close(self) -> None:
            self._inner.close()

    return DeadlineTransport()


# -- bounded reading --------------------------------------------------------------------------


def cut_short(provider: str, deadline: Deadline, error: ModelError) -> ModelError:
    """`error` for a body that ended early, unless the deadline ended it: the watchdog's
    socket shutdown reads as a plain end of body, which is the call's timeout."""
    return deadline.error(provider) if deadline.at is not None and deadline.passed else error


def read_capped(chunks: Iterable[bytes], provider: str, deadline: Deadline) -> bytes:
    """A whole answer body, refused past `MAX_REPLY_BYTES` (counted after decompression)."""
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise too_large(provider, "a reply", MAX_REPLY_BYTES)
        parts.append(chunk)
    if deadline.at is not None and deadline.passed:
        raise deadline.error(provider)
    return b"".join(parts)


async def aread_capped(chunks: AsyncIterator[bytes], provider: str) -> bytes:
    """Async twin of `read_capped`."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > MAX_REPLY_BYTES:
            raise too_large(provider, "a reply", MAX_REPLY_BYTES)
        parts.append(chunk)
    return b"".join(parts)


def within(deadline: Deadline) -> asyncio.Timeout:
    """`asyncio.timeout` for the time `deadline` has left (no limit without one)."""
    left = deadline.remaining()
    return asyncio.timeout(None if left is None else max(0.0, left))


async def abounded(items: AsyncIterator[T], deadline: Deadline) -> AsyncIterator[T]:
    """`items`, each awaited within the time `deadline` has left (TimeoutError after it)."""
    if deadline.at is None:
        async for item in items:
            yield item
        return
    iterator = aiter(items)
    while True:
        async with within(deadline):
            try:
                item = await anext(iterator)
            except StopAsyncIteration:
                return
        yield item
