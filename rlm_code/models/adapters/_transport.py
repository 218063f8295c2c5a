"""The HTTP transports of the raw adapters: `SyncHTTP` (httpx2) and `AsyncHTTP` (aiohttp).

- `SyncHTTP`: one `httpx2.Client` per connection (keep-alive pool), reused by every call.
- `AsyncHTTP`: one `aiohttp.ClientSession` per connection *and event loop* (an aiohttp
  session cannot cross loops, see `LoopLocal`), closed when that loop shuts down under
  `asyncio.run`, or by `aclose()` / `close()`.

Transport failures are mapped to typed errors by `errors.map_httpx_error` /
`errors.map_aiohttp_error` (the table is in `errors`).

httpx2 and aiohttp are imported when a transport is built, never at module import.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import ssl
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import ModelError, ResponseFormatError
from rlm_code.models.adapters._lines import aiter_lines, iter_lines, loads
from rlm_code.models.adapters._loop_local import LoopLocal
from rlm_code.models.adapters.errors import error_for_status, map_aiohttp_error, map_httpx_error
from rlm_code.models.adapters.retry import RetryPolicy

JSON_CONTENT = {"Content-Type": "application/json", "Accept": "application/json"}


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
