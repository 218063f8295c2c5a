"""Shared HTTP pieces for the adapters: transports, line readers, per-loop resources and the
one mapping from transport exceptions to typed errors.

- `SyncHTTP`: one `httpx2.Client` per connection (keep-alive pool), reused by every call.
- `AsyncHTTP`: one `aiohttp.ClientSession` per connection *and event loop* (an aiohttp
  session cannot cross loops), closed when that loop shuts down under `asyncio.run`, or by
  `aclose()` / `close()`.
- `LoopLocal`: that per-loop bookkeeping, for any loop-bound resource (the SDK adapters keep
  their async SDK clients in one).
- Line splitting on bytes (`iter_lines`, `aiter_lines`): a multi-byte character split across
  network chunks is reassembled, and invalid UTF-8 surfaces as a typed error at `json.loads`
  instead of being silently replaced.
- Every transport failure is mapped here, once (`map_httpx_error`, `map_aiohttp_error`, used
  by the SDK adapters too):

  ========================================  =============================  =========
  failure                                   error                          retried
  ========================================  =============================  =========
  refused / DNS / reset before an answer    `ProviderConnectionError`      yes
  connect (or pool) timeout                 `ModelTimeoutError`            yes
  read timeout                              `ModelTimeoutError`            no
  connection cut while the answer arrives   `ProviderError`                no
  HTTP error status                         `errors.error_for_status`      by status
  ========================================  =============================  =========

Streams are handed back line by line; a caller that has seen its stream's end marker keeps
reading to the end of the body (`drain`), so the connection goes back to the pool instead of
being dropped: with TLS, a new connection per streamed call costs a handshake every time.

httpx2 and aiohttp are imported when a transport is built, never at module import.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import ssl
import threading
from abc import abstractmethod
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Any, ClassVar, Generic, TypeVar

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import ModelError, ResponseFormatError
from rlm_code.models.adapters.base import Adapter, Endpoint
from rlm_code.models.adapters.errors import (
    cut_off,
    error_for_status,
    refused,
    timed_out,
    unterminated,
)
from rlm_code.models.adapters.retry import RetryPolicy
from rlm_code.models.types import ChatRequest, Completion, StreamState

log = logging.getLogger("rlm_code.http")

JSON_CONTENT = {"Content-Type": "application/json", "Accept": "application/json"}

R = TypeVar("R")


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx2's default TLS context (certifi, or `SSL_CERT_FILE`/`SSL_CERT_DIR`), built once.

    Building one costs ~15 ms (it loads the CA bundle); every client made here shares this one,
    so connecting, temporary routes and the per-loop async clients do not pay it again. An
    `SSLContext` is safe to share between threads and event loops.
    """
    import httpx2

    context: ssl.SSLContext = httpx2.create_ssl_context()
    return context


def env_proxy(url: str) -> str | None:
    """The proxy the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`) sets
    for `url`, looked up once per connection.

    aiohttp's `trust_env=True` does this lookup, and a `.netrc` lookup, on a worker thread for
    every request: two thread-pool round trips that doubled the cost of concurrent calls.
    """
    import urllib.request
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    proxies = urllib.request.getproxies()
    return proxies.get(parts.scheme) or proxies.get("all")


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (without `\\n` / `\\r\\n`), across chunk borders.

    An unterminated last fragment is passed on as it came."""
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


def map_httpx_error(
    httpx: Any,
    provider: str,
    exc: BaseException,
    where: str,
    timeouts: TimeoutSettings,
    read_timeout: float | None = None,
    *,
    answering: bool = True,
) -> ModelError:
    """An httpx2 transport exception -> typed error (see the table in the module docstring).

    `answering` says whether the answer had started (status line received): a connection
    that breaks before that is a retryable connection failure, after it a cut-off reply.
    """
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return timed_out(provider, "accept the connection", timeouts.connect, True)
    if isinstance(exc, httpx.TimeoutException):
        return timed_out(provider, "answer in time", read_timeout or timeouts.read, False)
    if isinstance(exc, httpx.ConnectError):
        return refused(provider, where, exc)
    if answering and isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return cut_off(provider, exc)
    return refused(provider, where, exc)


def map_aiohttp_error(
    aiohttp: Any,
    provider: str,
    exc: BaseException,
    where: str,
    timeouts: TimeoutSettings,
    read_timeout: float | None = None,
    *,
    answering: bool = True,
) -> ModelError:
    """An aiohttp (or asyncio timeout) exception -> typed error; see `map_httpx_error`."""
    a = aiohttp
    if isinstance(exc, a.ConnectionTimeoutError):
        return timed_out(provider, "accept the connection", timeouts.connect, True)
    if isinstance(exc, asyncio.TimeoutError):
        return timed_out(provider, "answer in time", read_timeout or timeouts.read, False)
    if isinstance(exc, a.ClientConnectorError):
        return refused(provider, where, exc)
    if answering and isinstance(
        exc, a.ClientPayloadError | a.ServerDisconnectedError | a.ClientOSError
    ):
        return cut_off(provider, exc)
    return refused(provider, where, exc)


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
            verify=default_ssl_context(),
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

    def _map(
        self, exc: BaseException, url: str, read_timeout: float | None, answering: bool
    ) -> ModelError:
        return map_httpx_error(
            self._httpx,
            self.provider,
            exc,
            url,
            self.timeouts,
            read_timeout,
            answering=answering,
        )

    def _open(self, method: str, url: str, body: bytes | None, timeout: float | None) -> Any:
        """Send a request and return the response once its status line has arrived."""
        client = self._client
        request = client.build_request(method, url, content=body, timeout=self._timeout(timeout))
        try:
            return client.send(request, stream=True)
        except self._errors as exc:
            raise self._map(exc, url, timeout, answering=False) from None

    def _read(self, response: Any, url: str, timeout: float | None) -> bytes:
        try:
            content: bytes = response.read()
        except self._errors as exc:
            raise self._map(exc, url, timeout, answering=True) from None
        finally:
            response.close()
        return content

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
        provider = self.provider

        def attempt() -> Any:
            response = self._open(method, url, body, timeout)
            content = self._read(response, url, timeout)
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
        """POST and yield the answer's lines; retried only until the answer starts.

        Closing the generator early closes the response (and drops its connection); read it to
        the end to hand the connection back to the pool.
        """
        url = self.base_url + path
        body = json.dumps(payload).encode()
        provider = self.provider

        def open_stream() -> Any:
            response = self._open("POST", url, body, timeout)
            if response.status_code >= 400:
                content = b""
                with contextlib.suppress(ModelError):  # the status says enough
                    content = self._read(response, url, timeout)
                raise error_for_status(
                    provider, response.status_code, content, response.headers, model=model
                )
            return response

        response = self.retry.call(open_stream)
        try:
            # iter_bytes, not iter_raw: a proxy may gzip the stream (we send Accept-Encoding).
            yield from iter_lines(response.iter_bytes())
        except self._errors as exc:
            raise self._map(exc, url, timeout, answering=True) from None
        finally:
            response.close()


class LoopLocal(Generic[R]):
    """One resource per event loop (aiohttp sessions, async SDK clients), closed when its loop
    shuts down.

    Such resources are tied to the loop they were created in. To close one while its loop is
    still alive we park an async generator at a `yield`: `asyncio.run` (and any loop that calls
    `shutdown_asyncgens`) closes every such generator before closing the loop, and the
    generator's `finally` closes the resource there. Without this, each `asyncio.run` would
    leave a pool of open sockets behind for the garbage collector.
    """

    def __init__(
        self,
        make: Callable[[], R],
        aclose: Callable[[R], Awaitable[Any]],
        is_closed: Callable[[R], bool] | None = None,
    ) -> None:
        self._make = make
        self._aclose = aclose
        self._is_closed = is_closed
        self._lock = threading.Lock()
        self._by_loop: dict[asyncio.AbstractEventLoop, tuple[R, AsyncGenerator[None, None]]] = {}

    async def get(self) -> R:
        """The running loop's resource, created on first use in that loop."""
        loop = asyncio.get_running_loop()
        found = self._by_loop.get(loop)
        if found is not None and (self._is_closed is None or not self._is_closed(found[0])):
            return found[0]
        resource = self._make()
        guard = self._guard(loop, resource)
        with self._lock:
            for old in [lp for lp in self._by_loop if lp.is_closed()]:
                del self._by_loop[old]
            self._by_loop[loop] = (resource, guard)
        await guard.__anext__()
        return resource

    async def _guard(
        self, loop: asyncio.AbstractEventLoop, resource: R
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            with self._lock:
                found = self._by_loop.get(loop)
                if found is not None and found[0] is resource:
                    del self._by_loop[loop]
            await self._aclose(resource)

    async def aclose(self) -> None:
        """Close the resource of the running loop."""
        found = self._by_loop.get(asyncio.get_running_loop())
        if found is not None:
            await found[1].aclose()

    def close(self) -> None:
        """Close every loop's resource from synchronous code, whichever loop owns it."""
        with self._lock:
            items = list(self._by_loop.items())
            self._by_loop.clear()
        try:
            current: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            current = None
        for loop, (_resource, guard) in items:
            if loop.is_closed():
                continue
            if loop is current:
                loop.create_task(guard.aclose())
            elif loop.is_running():
                future = asyncio.run_coroutine_threadsafe(guard.aclose(), loop)
                try:
                    future.result(timeout=2)
                except Exception:  # the other thread's loop is busy or stopping
                    log.debug("could not close a resource of another event loop in time")
            else:
                loop.run_until_complete(guard.aclose())


async def _close_session(session: Any) -> None:
    await session.close()


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
        self._proxy = env_proxy(self.base_url)
        self._sessions: LoopLocal[Any] = LoopLocal(
            self._new_session, _close_session, lambda s: bool(s.closed)
        )
        self._errors: tuple[type[BaseException], ...] = (
            aiohttp.ClientError,
            asyncio.TimeoutError,
        )

    def __repr__(self) -> str:
        return f"AsyncHTTP({self.provider!r}, {self.base_url!r})"

    def _new_session(self) -> Any:
        a = self._aiohttp
        connector = a.TCPConnector(limit=100, limit_per_host=0, ttl_dns_cache=300)
        # trust_env stays off: the proxy is resolved once (`env_proxy`), not per request.
        return a.ClientSession(headers=self._headers, timeout=self._timeout, connector=connector)

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

    def _map(
        self, exc: BaseException, url: str, read_timeout: float | None, answering: bool
    ) -> ModelError:
        return map_aiohttp_error(
            self._aiohttp,
            self.provider,
            exc,
            url,
            self.timeouts,
            read_timeout,
            answering=answering,
        )

    async def _open(
        self, session: Any, method: str, url: str, body: bytes | None, timeout: float | None
    ) -> Any:
        """Send a request and return the response once its status line has arrived."""
        try:
            return await session.request(
                method, url, data=body, timeout=self._call_timeout(timeout), proxy=self._proxy
            )
        except self._errors as exc:
            raise self._map(exc, url, timeout, answering=False) from None

    async def _read(self, response: Any, url: str, timeout: float | None) -> bytes:
        try:
            content: bytes = await response.read()
        except self._errors as exc:
            response.close()
            raise self._map(exc, url, timeout, answering=True) from None
        response.release()
        return content

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
        session = await self._sessions.get()

        async def attempt() -> Any:
            response = await self._open(session, method, url, body, timeout)
            content = await self._read(response, url, timeout)
            status = response.status
            if status >= 400:
                raise error_for_status(provider, status, content, response.headers, model=model)
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
        """Async twin of `SyncHTTP.stream_lines`."""
        url = self.base_url + path
        body = json.dumps(payload).encode()
        provider = self.provider
        session = await self._sessions.get()

        async def open_stream() -> Any:
            response = await self._open(session, "POST", url, body, timeout)
            if response.status >= 400:
                content = b""
                with contextlib.suppress(ModelError):  # the status says enough
                    content = await self._read(response, url, timeout)
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
            raise self._map(exc, url, timeout, answering=True) from None
        finally:
            # A fully read answer hands its connection back to the pool; a stream left early
            # must drop it, or the next request would read the rest of this answer.
            if finished:
                response.release()
            else:
                response.close()


def drain(lines: Iterator[bytes]) -> None:
    """Read a stream to its end after its end marker, so its connection can be reused.

    Errors here are ignored: the reply is already complete.
    """
    try:
        for _ in lines:
            pass
    except ModelError:
        pass


async def adrain(lines: AsyncIterator[bytes]) -> None:
    """Async twin of `drain`."""
    try:
        async for _ in lines:
            pass
    except ModelError:
        pass


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
