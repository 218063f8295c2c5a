"""`AsyncHTTP`: the async twin of `_transport.SyncHTTP`, on aiohttp.

One `aiohttp.ClientSession` per connection *and event loop* (a session cannot cross loops,
see `LoopLocal`), closed when that loop shuts down under `asyncio.run`, or by `aclose()` /
`close()`. The rules are those of `_transport` (one error boundary per I/O call, the call
deadline, size caps, no redirects, a bounded drain after the end marker); async reads run
under `asyncio.timeout`. This module is the async HTTP stack: `HTTPAdapter` imports it with
the first async call, so blocking use never loads asyncio or aiohttp.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import aiohttp

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import ModelError, ResponseFormatError
from rlm_code.models.adapters._lines import MAX_REPLY_BYTES, loads, too_large
from rlm_code.models.adapters._loop_local import LoopLocal
from rlm_code.models.adapters._transport import (
    DRAIN_BYTES,
    DRAIN_SECONDS,
    ERROR_BODY_BYTES,
    JSON_CONTENT,
    call_deadline,
    check_request_parts,
    env_proxy,
)
from rlm_code.models.adapters.errors import Deadline, aiohttp_errors, error_for_status
from rlm_code.models.adapters.retry import RetryPolicy


async def _close_session(session: Any) -> None:
    await session.close()


class AsyncBody:
    """Async twin of `SyncBody` (an aiohttp response)."""

    def __init__(self, http: AsyncHTTP, response: Any, url: str, deadline: Deadline) -> None:
        self._http = http
        self.response = response
        self._url = url
        self._deadline = deadline
        self.size = 0
        self._boundary = aiohttp_errors(http.provider, url, http.timeouts, deadline=deadline)

    async def _next(self) -> bytes:
        deadline = self._deadline
        with self._boundary:
            remaining = deadline.remaining()
            if remaining is None:
                chunk: bytes = await self.response.content.readany()
                return chunk
            async with asyncio.timeout(remaining):
                chunk = await self.response.content.readany()
            return chunk

    def _count(self, chunk: bytes, cap: int) -> bytes:
        self.size += len(chunk)
        if self.size > cap:
            self.close()
            raise too_large(self._http.provider, "a reply", cap)
        return chunk

    async def chunks(self, cap: int = MAX_REPLY_BYTES) -> AsyncIterator[bytes]:
        while chunk := await self._next():
            yield self._count(chunk, cap)

    async def read(self, cap: int = MAX_REPLY_BYTES) -> bytes:
        """The whole body. Every async call comes through here, so the loop is written out:
        one boundary for the whole read, and no per-chunk method calls without a deadline."""
        parts = []
        content, deadline = self.response.content, self._deadline
        with self._boundary:
            while True:
                if deadline.at is None:
                    chunk = await content.readany()
                else:
                    async with asyncio.timeout(deadline.remaining()):
                        chunk = await content.readany()
                if not chunk:
                    break
                parts.append(self._count(chunk, cap))
        self.response.release()
        return b"".join(parts)

    async def finish(self) -> None:
        """Bounded drain (see `SyncBody.finish`)."""
        content, read = self.response.content, 0
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_SECONDS):
                while read <= DRAIN_BYTES and (chunk := await content.readany()):
                    read += len(chunk)
        if content.at_eof() and read <= DRAIN_BYTES:
            self.response.release()
        else:
            self.response.close()

    def close(self) -> None:
        self.response.close()


class AsyncHTTP:
    """Non-blocking JSON-over-HTTP client for one connection (aiohttp); `on_headers` as for
    `SyncHTTP`."""

    on_headers: Callable[[Any], None] | None = None

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeouts: TimeoutSettings,
        retry: RetryPolicy,
    ) -> None:
        check_request_parts(provider, base_url, headers)
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        self._headers = {**JSON_CONTENT, **headers}
        self._timeout = aiohttp.ClientTimeout(
            sock_connect=timeouts.connect, sock_read=timeouts.read
        )
        self._proxy = env_proxy(self.base_url)
        self._sessions: LoopLocal[Any] = LoopLocal(
            self._new_session, _close_session, lambda s: bool(s.closed)
        )

    def __repr__(self) -> str:
        return f"AsyncHTTP({self.provider!r}, {self.base_url!r})"

    def _new_session(self) -> Any:
        connector = aiohttp.TCPConnector(limit=100, limit_per_host=0, ttl_dns_cache=300)
        # trust_env stays off: the proxy is resolved once (`env_proxy`), not per request.
        return aiohttp.ClientSession(headers=self._headers, connector=connector)

    async def aclose(self) -> None:
        await self._sessions.aclose()

    def close(self) -> None:
        self._sessions.close()

    async def _open(
        self, method: str, url: str, body: bytes | None, deadline: Deadline, model: str | None
    ) -> AsyncBody:
        """Send a request; returns once the status line has arrived. Statuses >= 300 raise."""
        session = self._sessions.current() or await self._sessions.get()
        t = self.timeouts
        if deadline.at is None:
            timeout = self._timeout
        else:
            remaining = deadline.at - time.monotonic()
            if remaining <= 0:
                raise deadline.error(self.provider)
            timeout = aiohttp.ClientTimeout(
                total=remaining,
                sock_connect=min(t.connect, remaining),
                sock_read=min(t.read, remaining),
            )
        with aiohttp_errors(self.provider, url, t, answering=False, deadline=deadline):
            response = await session.request(
                method,
                url,
                data=body,
                timeout=timeout,
                proxy=self._proxy,
                allow_redirects=False,
            )
        opened = AsyncBody(self, response, url, deadline)
        if self.on_headers is not None:
            self.on_headers(response.headers)
        status = response.status
        if status >= 300:
            content = b""
            with contextlib.suppress(ModelError):  # the status says enough
                content = await opened.read(ERROR_BODY_BYTES)
            opened.close()
            raise error_for_status(self.provider, status, content, response.headers, model=model)
        return opened

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
        deadline = call_deadline(provider, timeout)

        async def attempt() -> Any:
            content = await (await self._open(method, url, body, deadline, model)).read()
            if not content:
                raise ResponseFormatError(f"{provider} sent an empty answer", provider=provider)
            return loads(content, provider)

        return await (self.retry.acall(attempt, deadline.at) if retry else attempt())

    async def open_stream(
        self, path: str, payload: Mapping[str, Any], *, timeout: float | None, model: str | None
    ) -> AsyncBody:
        """Async twin of `SyncHTTP.open_stream`."""
        url = self.base_url + path
        body = json.dumps(payload).encode()
        deadline = call_deadline(self.provider, timeout)
        return await self.retry.acall(
            lambda: self._open("POST", url, body, deadline, model), deadline.at
        )
