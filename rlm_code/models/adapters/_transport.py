"""The blocking HTTP transport of the raw adapters, `SyncHTTP` (httpx2), and what both
transports share; its async twin `AsyncHTTP` (aiohttp) is in `_async_transport`, loaded with
the first async call so that blocking use never imports asyncio or aiohttp.

- `SyncHTTP`: one `httpx2.Client` per connection (keep-alive pool), reused by every call.
- `AsyncHTTP`: one `aiohttp.ClientSession` per connection *and event loop* (an aiohttp
  session cannot cross loops, see `LoopLocal`), closed when that loop shuts down under
  `asyncio.run`, or by `aclose()` / `close()`.

What every call gets here, once, for both transports:

- One error boundary (`errors.httpx_errors` / `errors.aiohttp_errors`) around each I/O call.
- A call `timeout` bounds the *whole* call: connecting, waiting and reading every byte (a
  server dripping one byte at a time cannot stretch it). Blocking reads are interrupted by a
  shared watchdog thread that shuts the socket down at the deadline; async reads run under
  `asyncio.timeout`. Without a call timeout, the connection's connect/read timeouts apply to
  each step. Either way the error is `ModelTimeoutError`.
- Size caps (`_lines.MAX_REPLY_BYTES`, counted after decompression): a gzip bomb or an endless
  body ends in `ResponseFormatError`.
- Redirects are never followed (a 3xx is a typed error), so the key never reaches another
  origin.
- `finish()` after a stream's end marker: a *bounded* drain (at most `DRAIN_BYTES` for at most
  `DRAIN_SECONDS`) so a well-behaved server's connection goes back to the pool, and a server
  that keeps talking after the end is simply dropped.

httpx2 is imported when a transport is built, never at module import.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import socket
import ssl
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import ModelError, ResponseFormatError
from rlm_code.models.adapters._lines import MAX_REPLY_BYTES, loads, too_large
from rlm_code.models.adapters._watchdog import WATCHDOG
from rlm_code.models.adapters.errors import (
    Deadline,
    error_for_status,
    httpx_errors,
    invalid_request,
    raise_mapped,
)
from rlm_code.models.adapters.retry import RetryPolicy

JSON_CONTENT = {"Content-Type": "application/json", "Accept": "application/json"}
DRAIN_SECONDS = 0.1  # after the end marker: how long to wait for the body's own end
DRAIN_BYTES = 64 * 1024  # ... and how much to read before dropping the connection instead
ERROR_BODY_BYTES = 64 * 1024  # an error status's body is read only this far


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


def tls_context_for(base_url: str) -> ssl.SSLContext:
    """The TLS context a client of `base_url` needs.

    TLS is used only for an https URL or through an https proxy; then it is the default
    context (the CA bundle, loaded once per process). A plain-http local server (Ollama,
    vLLM, llama.cpp on localhost) never uses TLS, so its client gets an empty context instead
    of paying ~20 ms to load the CA bundle on every start: one with no CA loaded, which can
    verify nothing and so fails safe if TLS were ever attempted with it.
    """
    proxy = env_proxy(base_url) or ""
    if base_url.lower().startswith("https:") or proxy.lower().startswith("https:"):
        return default_ssl_context()
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


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


def check_request_parts(provider: str, base_url: str, headers: Mapping[str, str]) -> None:
    """Refuse, before any I/O, a base URL or header no transport can send (`InvalidInputError`)."""
    import httpx2

    with httpx_errors(provider, base_url, TimeoutSettings(), answering=False):
        url = httpx2.URL(base_url)
        for value in headers.values():
            value.encode("ascii")
    unsafe = any(c in base_url for c in " \t") or any(
        c in v for v in (base_url, *headers.values()) for c in "\r\n\0"
    )
    if unsafe or url.scheme not in ("http", "https") or not url.host:
        raise_mapped(invalid_request(provider, ValueError("not an http(s) URL")))


def call_deadline(provider: str, timeout: float | None) -> Deadline:
    """The deadline of one call; a timeout that is not a positive finite number is refused."""
    if timeout is not None and not (isinstance(timeout, int | float) and 0 < timeout < math.inf):
        raise_mapped(
            invalid_request(provider, ValueError("timeout must be a positive finite number"))
        )
    return Deadline(timeout)


def interrupt(response: Any, deadline: Deadline | None = None) -> Callable[[], None]:
    """What the watchdog does at a deadline: mark `deadline` passed (so the failed read is
    reported as that call's timeout) and wake a read blocked on `response`'s socket.

    Shutting the socket down wakes a blocked `recv` (closing it from another thread does
    not); the read then fails. Shared by this transport and the SDK routes (`_sdk`)."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None

    def fire() -> None:
        if deadline is not None:
            deadline.fired = True
        if isinstance(sock, socket.socket):
            sock.shutdown(socket.SHUT_RDWR)
        else:
            response.close()

    return fire


class SyncBody:
    """An answer whose status line has arrived: read it with `chunks()`, then `finish()` (end
    marker seen: bounded drain) or `close()` (drop the connection)."""

    def __init__(self, http: SyncHTTP, response: Any, url: str, deadline: Deadline) -> None:
        self._http = http
        self.response = response
        self._url = url
        self._deadline = deadline
        self._watch: list[Any] | None = None
        if deadline.at is not None:
            self._watch = WATCHDOG.arm(deadline.at, interrupt(response, deadline))
        self._iter = response.iter_bytes()
        self.size = 0

    def _boundary(self) -> Any:
        h = self._http
        return httpx_errors(h.provider, self._url, h.timeouts, deadline=self._deadline)

    def chunks(self, cap: int = MAX_REPLY_BYTES) -> Iterator[bytes]:
        """The decompressed body, chunk by chunk, within the deadline and the size cap."""
        deadline, it, provider = self._deadline, self._iter, self._http.provider
        boundary = self._boundary()  # stateless: one for every read of this body
        while True:
            with boundary:
                chunk = next(it, None)
            if chunk is None:
                return
            self.size += len(chunk)
            if self.size > cap:
                self.close()
                raise too_large(provider, "a reply", cap)
            if deadline.at is not None and deadline.passed:
                self.close()
                raise deadline.error(provider)
            yield chunk

    def read(self, cap: int = MAX_REPLY_BYTES) -> bytes:
        try:
            return b"".join(self.chunks(cap))
        finally:
            self.close()

    def finish(self) -> None:
        """Bounded drain: keep the connection only if the body ends right away."""
        self._cancel()
        fire = interrupt(self.response)
        watch = WATCHDOG.arm(time.monotonic() + DRAIN_SECONDS, fire)
        read = 0
        try:
            with contextlib.suppress(ModelError, Exception):
                for chunk in self._iter:
                    read += len(chunk)
                    if read > DRAIN_BYTES:
                        break
        finally:
            WATCHDOG.cancel(watch)
            self.response.close()

    def _cancel(self) -> None:
        if self._watch is not None:
            WATCHDOG.cancel(self._watch)
            self._watch = None

    def close(self) -> None:
        self._cancel()
        self.response.close()


class SyncHTTP:
    """Blocking JSON-over-HTTP client for one connection. `on_headers`, when set, sees every
    answer's headers (a route reads the provider's rate-limit headers there)."""

    on_headers: Callable[[Any], None] | None = None

    def __init__(
        self,
        provider: str,
        base_url: str,
        headers: Mapping[str, str],
        timeouts: TimeoutSettings,
        retry: RetryPolicy,
    ) -> None:
        import httpx2

        check_request_parts(provider, base_url, headers)
        self._httpx = httpx2
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts
        self.retry = retry
        with httpx_errors(provider, self.base_url, timeouts, answering=False):
            self._client = httpx2.Client(
                headers={**JSON_CONTENT, **headers},
                timeout=httpx2.Timeout(timeouts.read, connect=timeouts.connect),
                limits=httpx2.Limits(max_connections=100, max_keepalive_connections=32),
                follow_redirects=False,
                verify=tls_context_for(self.base_url),
            )

    def __repr__(self) -> str:
        return f"SyncHTTP({self.provider!r}, {self.base_url!r})"

    def close(self) -> None:
        self._client.close()

    def _open(
        self, method: str, url: str, body: bytes | None, deadline: Deadline, model: str | None
    ) -> SyncBody:
        """Send a request; returns once the status line has arrived. Statuses >= 300 raise."""
        remaining = deadline.remaining()
        if remaining is not None and remaining <= 0:
            raise deadline.error(self.provider)
        t = self.timeouts
        timeout = self._httpx.Timeout(
            t.read if remaining is None else min(t.read, remaining),
            connect=t.connect if remaining is None else min(t.connect, remaining),
        )
        client = self._client
        with httpx_errors(self.provider, url, t, answering=False, deadline=deadline):
            request = client.build_request(method, url, content=body, timeout=timeout)
            response = client.send(request, stream=True)
        opened = SyncBody(self, response, url, deadline)
        if self.on_headers is not None:
            self.on_headers(response.headers)
        status = response.status_code
        if status >= 300:
            content = b""
            with contextlib.suppress(ModelError):  # the status says enough
                content = opened.read(ERROR_BODY_BYTES)
            opened.close()
            raise error_for_status(self.provider, status, content, response.headers, model=model)
        return opened

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
        deadline = call_deadline(provider, timeout)

        def attempt() -> Any:
            content = self._open(method, url, body, deadline, model).read()
            if not content:
                raise ResponseFormatError(f"{provider} sent an empty answer", provider=provider)
            return loads(content, provider)

        return self.retry.call(attempt, deadline.at) if retry else attempt()

    def open_stream(
        self, path: str, payload: Mapping[str, Any], *, timeout: float | None, model: str | None
    ) -> SyncBody:
        """POST and return the open answer; retried only until the answer starts."""
        url = self.base_url + path
        body = json.dumps(payload).encode()
        deadline = call_deadline(self.provider, timeout)
        return self.retry.call(lambda: self._open("POST", url, body, deadline, model), deadline.at)
