"""The server's load counters and simulated rate limits, as one aiohttp middleware.

Tests of the client's concurrency limits and connection pooling need the server's view:
`in_flight` (requests being answered now), `max_in_flight` (the most at once since the last
`reset_counters()`) and `connections_opened` (TCP connections that sent a request, told apart
by the client's address and port). A request is in flight from its arrival until its handler
returns — for a streamed answer, until its last byte is written.

With `ratelimit=(N, WINDOW_S)` the server behaves like a provider with a request limit: every
POST counts against a fixed window of `WINDOW_S` seconds; every answer carries OpenAI's
`x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests` and
`x-ratelimit-reset-requests` (e.g. `0.250s`) headers, and a POST over the limit gets a 429 with
`Retry-After` (whole seconds, rounded up) and the same headers — what a client that reads the
headers never sees.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rlm_code.testing.state import ServerState

__all__ = ["install_limits"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_HEADERS_KEY = web.RequestKey("rlm_ratelimit_headers", dict)


def install_limits(app: web.Application, state: ServerState) -> None:
    """Add the counting middleware (and the rate-limit headers when configured) to `app`."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        state.opened_by(peer)
        limit = state.config.ratelimit
        if limit is not None and request.method == "POST":
            allowed, headers = state.take_request(limit, time.monotonic())
            request[_HEADERS_KEY] = headers
            if not allowed:
                retry = math.ceil(float(headers["x-ratelimit-reset-requests"].rstrip("s")))
                body = b'{"error": {"message": "Rate limit reached for requests", "type": '
                body += b'"requests", "code": "rate_limit_exceeded"}}'
                return web.Response(
                    status=429,
                    body=body,
                    content_type="application/json",
                    headers={**headers, "Retry-After": str(max(1, retry))},
                )
        state.enter()
        try:
            return await handler(request)
        finally:
            state.leave()

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        headers = request.get(_HEADERS_KEY)
        if headers:
            for name, value in headers.items():
                response.headers.setdefault(name, value)

    app.middlewares.append(count)
    app.on_response_prepare.append(add_headers)
