"""Shared HTTP pieces for the raw-HTTP adapters (ollama, openai_compatible).

- `SyncHTTP`: one `httpx2.Client` per connection (keep-alive pool), reused by every call.
- `AsyncHTTP`: one `aiohttp.ClientSession` per connection *and event loop* (an aiohttp
  session cannot cross loops), closed when that loop shuts down under `asyncio.run`, or by
  `aclose()` / `close()`.
- Line splitting on bytes (`iter_lines`, `aiter_lines`): a multi-byte character split across
  network chunks is reassembled, and invalid UTF-8 surfaces as a typed error at `json.loads`
  instead of being silently replaced.
- Every transport failure is mapped here, once, to a typed error: refused/reset connections
  -> `ProviderConnectionError` (retryable), connect timeouts -> `ModelTimeoutError`
  (retryable), read timeouts -> `ModelTimeoutError`, a connection cut mid-answer ->
  `ProviderError`, HTTP error statuses -> `errors.error_for_status`.

httpx2 and aiohttp are imported when a transport is built, never at module import.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping
from typing import Any

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import (
    ModelError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    ResponseFormatError,
)
from rlm_code.models.adapters.errors import error_for_status
from rlm_code.models.adapters.retry import RetryPolicy

log = logging.getLogger("rlm_code.http")

JSON_CONTENT = {"Content-Type": "application/json", "Accept": "application/json"}


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (without `\\n` / `\\r\\n`), across chunk borders."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending


async def aiter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Async twin of `iter_lines`."""
    pending = b""
    async for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending


def loads(payload: bytes | str, provider: str) -> Any:
    """`json.loads` whose failures (bad JSON, invalid UTF-8) are `ResponseFormatError`."""
    try:
        return json.loads(payload)
    except ValueError:
        snippet = payload[:80].decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        raise ResponseFormatError(
            f"{provider} sent an answer that is not valid JSON or UTF-8"
            + (f" (starts {snippet!r})" if snippet else ""),
            provider=provider,
            hint="The server may not speak this API; check the base URL and provider.",
        ) from None


def _cut_off(provider: str, exc: BaseException) -> ProviderError:
    return ProviderError(
        f"{provider} closed the connection before the answer was complete ({type(exc).__name__})",
        provider=provider,
        hint="Try again; if it keeps happening, check the server's logs.",
    )


def _timed_out(provider: str, phase: str, seconds: float | None, retryable: bool) -> ModelError:
    limit = f" after {seconds:g} s" if seconds else ""
    return ModelTimeoutError(
        f"{provider} did not {phase}{limit}", provider=provider, retryable=retryable
    )


def _refused(provider: str, url: str, exc: BaseException) -> ProviderConnectionError:
    return ProviderConnectionError(
        f"cannot connect to {provider} at {url} ({type(exc).__name__})", provider=provider
    )


class SyncHTTP:
    """Blocking JSON-over-HTTP client for one connection."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeouts: TimeoutSettings,
        retry: RetryPolicy,
    ) -> None:
        import httpx2

        self._httpx = httpx2
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        merged = {**JSON_CONTENT, **headers}
        self._client = httpx2.Client(
            headers=merged,
            timeout=httpx2.Timeout(timeouts.read, connect=timeouts.connect),
            limits=httpx2.Limits(max_connections=100, max_keepalive_connections=32),
            follow_redirects=False,
        )
        self._errors: tuple[type[BaseException], ...] = (httpx2.TransportError,)

    def __repr__(self) -> str:
        return f"SyncHTTP({self.provider!r}, {self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def _timeout(self, seconds: float | None) -> Any:
        if seconds is None:
            return self._httpx.USE_CLIENT_DEFAULT
        return self._httpx.Timeout(seconds, connect=min(seconds, self.timeouts.connect))

    def _map(self, exc: BaseException, url: str, read_timeout: float | None) -> ModelError:
        h = self._httpx
        if isinstance(exc, h.ConnectTimeout | h.PoolTimeout):
            return _timed_out(self.provider, "accept the connection", self.timeouts.connect, True)
        if isinstance(exc, h.TimeoutException):
            seconds = read_timeout or self.timeouts.read
            return _timed_out(self.provider, "answer in time", seconds, False)
        if isinstance(exc, h.ConnectError):
            return _refused(self.provider, url, exc)
        if isinstance(exc, h.RemoteProtocolError | h.ReadError):
            return _cut_off(self.provider, exc)
        return _refused(self.provider, url, exc)

    def request_json(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        model: str | None = None,
        retry: bool = True,
    ) -> Any:
        """One JSON call with retries; returns the parsed JSON body."""
        url = self.base_url + path
        body = None if payload is None else json.dumps(payload).encode()
        client = self._client
        provider = self.provider
        call_timeout = self._timeout(timeout)

        def attempt() -> Any:
            try:
                response = client.request(method, url, content=body, timeout=call_timeout)
                content = response.content
            except self._errors as exc:
                raise self._map(exc, url, timeout) from None
            status = response.status_code
            if status >= 400:
                raise error_for_status(provider, status, content, response.headers, model=model)
            if not content:
                raise ResponseFormatError(
                    f"{provider} sent an empty answer (HTTP {status})", provider=provider
                )
            return loads(content, provider)

        return self.retry.call(attempt) if retry else attempt()

    def stream_lines(
        self,
        path: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | None = None,
        model: str | None = None,
    ) -> Generator[bytes, None, None]:
        """POST and yield the answer's lines; retried only until the answer starts."""
        url = self.base_url + path
        body = json.dumps(payload).encode()
        client = self._client
        provider = self.provider
        call_timeout = self._timeout(timeout)

        def open_stream() -> Any:
            request = client.build_request("POST", url, content=body, timeout=call_timeout)
            try:
                response = client.send(request, stream=True)
            except self._errors as exc:
                raise self._map(exc, url, timeout) from None
            if response.status_code >= 400:
                try:
                    content = response.read()
                except self._errors:
                    content = b""
                finally:
                    response.close()
                raise error_for_status(
                    provider, response.status_code, content, response.headers, model=model
                )
            return response

        response = self.retry.call(open_stream)
        try:
            yield from iter_lines(response.iter_raw())
        except self._errors as exc:
            raise self._map(exc, url, timeout) from None
        finally:
            response.close()


class _LoopSessions:
    """One aiohttp session per event loop, closed when its loop shuts down.

    The session is tied to the loop it was created in. To close it while that loop is still
    alive we park an async generator at a `yield`: `asyncio.run` (and any loop that calls
    `shutdown_asyncgens`) closes every such generator before closing the loop, and the
    generator's `finally` closes the session there.
    """

    def __init__(self, make: Any) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}

    async def get(self) -> Any:
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is not None and not found[0].closed:
            return found[0]
        session = self._make()
        guard = self._guard(loop, session)
        with self._lock:
            for old in [lp for lp in self._by_loop if lp.is_closed()]:
                del self._by_loop[old]
            self._by_loop[loop] = (session, guard)
        await guard.__anext__()
        return session

    async def _guard(self, loop: asyncio.AbstractEventLoop, session: Any) -> AsyncIterator[None]:
        try:
            yield
        finally:
            with self._lock:
                if self._by_loop.get(loop, (None,))[0] is session:
                    del self._by_loop[loop]
            await session.close()

    async def aclose(self) -> None:
        """Close the session of the running loop."""
        found = self._by_loop.get(asyncio.get_running_loop())
        if found is not None:
            await found[1].aclose()

    def close(self) -> None:
        """Close every session from synchronous code, whichever loop owns it."""
        with self._lock:
            items = list(self._by_loop.items())
            self._by_loop.clear()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, (_session, guard) in items:
            if loop.is_closed():
                continue
            if loop is current:
                loop.create_task(guard.aclose())
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(guard.aclose(), loop)
                try:
                    future.result(timeout=2)
                except Exception:  # the other thread's loop is busy or stopping
                    log.debug("could not close an aiohttp session of another loop in time")
            else:
                loop.run_until_complete(guard.aclose())


class AsyncHTTP:
    """Non-blocking JSON-over-HTTP client for one connection (aiohttp)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeouts: TimeoutSettings,
        retry: RetryPolicy,
    ) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        self._headers = {**JSON_CONTENT, **headers}
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        self._sessions = _LoopSessions(self._new_session)
        self._errors: tuple[type[BaseException], ...] = (
            aiohttp.ClientError,
            asyncio.TimeoutError,
        )

    def __repr__(self) -> str:
        return f"AsyncHTTP({self.provider!r}, {self.base_url!r})"

    def _new_session(self) -> Any:
        a = self._aiohttp
        connector = a.TCPConnector(limit=100, limit_per_host=0, ttl_dns_cache=300)
        return a.ClientSession(
            headers=self._headers, timeout=self._timeout, connector=connector, trust_env=True
        )

    async def aclose(self) -> None:
        await self._sessions.aclose()

    def close(self) -> None:
        self._sessions.close()

    def _call_timeout(self, seconds: float | None) -> Any:
        if seconds is None:
            return self._timeout
        return self._aiohttp.ClientTimeout(
            total=None, sock_connect=min(seconds, self.timeouts.connect), sock_read=seconds
        )

    def _map(self, exc: BaseException, url: str, read_timeout: float | None) -> ModelError:
        a = self._aiohttp
        if isinstance(exc, a.ConnectionTimeoutError):
            return _timed_out(self.provider, "accept the connection", self.timeouts.connect, True)
        if isinstance(exc, asyncio.TimeoutError):
            seconds = read_timeout or self.timeouts.read
            return _timed_out(self.provider, "answer in time", seconds, False)
        if isinstance(exc, a.ClientConnectorError):
            return _refused(self.provider, url, exc)
        if isinstance(exc, a.ClientPayloadError | a.ServerDisconnectedError | a.ClientOSError):
            return _cut_off(self.provider, exc)
        return _refused(self.provider, url, exc)

    async def request_json(
        self,
        method: str,
        path: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
        model: str | None = None,
        retry: bool = True,
    ) -> Any:
        url = self.base_url + path
        body = None if payload is None else json.dumps(payload).encode()
        provider = self.provider
        call_timeout = self._call_timeout(timeout)
        session = await self._sessions.get()

        async def attempt() -> Any:
            try:
                async with session.request(
                    method, url, data=body, timeout=call_timeout
                ) as response:
                    content = await response.read()
                    status = response.status
                    headers = response.headers
            except self._errors as exc:
                raise self._map(exc, url, timeout) from None
            if status >= 400:
                raise error_for_status(provider, status, content, headers, model=model)
            if not content:
                raise ResponseFormatError(
                    f"{provider} sent an empty answer (HTTP {status})", provider=provider
                )
            return loads(content, provider)

        return await (self.retry.acall(attempt) if retry else attempt())

    async def stream_lines(
        self,
        path: str,
        payload: Mapping[str, Any],
        *,
        timeout: float | None = None,
        model: str | None = None,
    ) -> AsyncGenerator[bytes, None]:
        url = self.base_url + path
        body = json.dumps(payload).encode()
        provider = self.provider
        call_timeout = self._call_timeout(timeout)
        session = await self._sessions.get()

        async def open_stream() -> Any:
            try:
                response = await session.post(url, data=body, timeout=call_timeout)
            except self._errors as exc:
                raise self._map(exc, url, timeout) from None
            if response.status >= 400:
                try:
                    content = await response.read()
                except self._errors:
                    content = b""
                finally:
                    response.release()
                raise error_for_status(
                    provider, response.status, content, response.headers, model=model
                )
            return response

        response = await self.retry.acall(open_stream)
        finished = False
        try:
            async for line in aiter_lines(response.content.iter_any()):
                yield line
            finished = True
        except self._errors as exc:
            raise self._map(exc, url, timeout) from None
        finally:
            # A fully read answer hands its connection back to the pool; a stream left early
            # must drop it, or the next request would read the rest of this answer.
            if finished:
                response.release()
            else:
                response.close()
