"""One mapping from a provider failure to a typed `ModelError`, shared by every adapter.

The raw-HTTP adapters call `error_for_status` with the status, headers and body they got; the
SDK adapters call it with the same facts taken from the SDK's exception. So a 429 is a
`RateLimitError` with `retry_after` whichever way it arrived.

The small constructors below (`timed_out`, `refused`, `cut_off`, `bad_payload`,
`unterminated`) give every adapter the same wording and the same `retryable` flag for the
same failure, whether it surfaced as an httpx2, aiohttp or SDK exception.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from rlm_code.core.exceptions import (
    AuthenticationError,
    ModelError,
    ModelNotFoundError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
)

if TYPE_CHECKING:
    from rlm_code.core.config import TimeoutSettings

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
_MAX_DETAIL = 300


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    if not headers:
        return None
    getter = headers.get
    raw_ms = getter("retry-after-ms") or getter("Retry-After-Ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = getter("retry-after") or getter("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def error_detail(body: bytes | str | None) -> str:
    """The provider's own error message from a body in any of the five wire formats."""
    if not body:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if stripped[:1] == "<" or stripped[:15].lower().startswith("<!doctype"):
        return "the server answered with an HTML page, not the provider's API"
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:_MAX_DETAIL]
    message: object = None
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, dict):
            message = err.get("message") or err.get("status") or err.get("type")
        elif isinstance(err, str):
            message = err
        if message is None and isinstance(data.get("message"), str):
            message = data["message"]
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        return error_detail(json.dumps(data[0]))
    if not isinstance(message, str):
        message = " ".join(text.split())
    return message[:_MAX_DETAIL]


def error_for_status(
    provider: str,
    status: int,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
) -> ModelError:
    """The typed error for an HTTP error status from `provider`."""
    detail = error_detail(body)
    said = f": {detail}" if detail else ""
    who = f"{provider} answered HTTP {status}{said}"
    if status in (401, 403):
        return AuthenticationError(
            f"{provider} rejected the API key (HTTP {status}){said}",
            provider=provider,
            status_code=status,
        )
    if status == 429:
        retry_after = parse_retry_after(headers)
        wait = f"; it asked to wait {retry_after:g} s" if retry_after is not None else ""
        return RateLimitError(
            f"{provider} is rate limiting requests (HTTP 429){wait}{said}",
            provider=provider,
            status_code=status,
            retry_after=retry_after,
        )
    if status == 404:
        lowered = detail.lower()
        if "model" in lowered or (model and model.lower() in lowered):
            name = f"'{model}' " if model else ""
            return ModelNotFoundError(
                f"{provider} does not know the model {name}(HTTP 404){said}",
                provider=provider,
                status_code=status,
                hint="List the models with `rlm-code models PROVIDER --live`.",
            )
        return ProviderError(
            who,
            provider=provider,
            status_code=status,
            hint="Check the base URL: the server has no such endpoint.",
        )
    if status == 408:
        return ModelTimeoutError(who, provider=provider, status_code=status, retryable=True)
    if status >= 500 or status == 529:
        return ProviderError(
            who,
            provider=provider,
            status_code=status,
            retry_after=parse_retry_after(headers),
            retryable=status in RETRYABLE_STATUSES,
            hint="The provider is having trouble; try again later.",
        )
    return ProviderError(
        who,
        provider=provider,
        status_code=status,
        hint="The provider rejected the request; check the model name and parameters.",
    )


def timed_out(provider: str, phase: str, seconds: float | None, retryable: bool) -> ModelError:
    """A connect timeout (`retryable`: nothing was sent) or a read timeout (not retried: the
    provider may still be working on it, and waiting `read` seconds again rarely helps)."""
    limit = f" after {seconds:g} s" if seconds else ""
    return ModelTimeoutError(
        f"{provider} did not {phase}{limit}", provider=provider, retryable=retryable
    )


def refused(provider: str, where: str, exc: BaseException) -> ProviderConnectionError:
    """The server could not be reached (refused, DNS, reset before any answer): retryable."""
    return ProviderConnectionError(
        f"cannot connect to {provider} at {where} ({type(exc).__name__})", provider=provider
    )


def cut_off(provider: str, exc: BaseException) -> ProviderError:
    """The connection broke while the answer was arriving; the reply may be partial."""
    return ProviderError(
        f"{provider} closed the connection before the answer was complete ({type(exc).__name__})",
        provider=provider,
        hint="Try again; if it keeps happening, check the server's logs.",
    )


def bad_payload(provider: str, exc: BaseException | None = None) -> ResponseFormatError:
    """The answer is not valid JSON or not valid UTF-8 (the SDKs raise ValueError children)."""
    what = "invalid UTF-8" if isinstance(exc, UnicodeDecodeError) else "invalid JSON"
    return ResponseFormatError(
        f"{provider} sent an answer that cannot be parsed ({what})",
        provider=provider,
        hint="The server may not speak this API; check the base URL and provider.",
    )


def unterminated(provider: str, marker: str) -> ProviderError:
    """A stream that stopped without its end marker: the reply may be cut short."""
    return ProviderError(
        f"{provider} ended the stream without its end marker ({marker}); "
        "the reply may be incomplete",
        provider=provider,
        hint="Try again; if it persists, the server or a proxy is cutting streams short.",
    )


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
