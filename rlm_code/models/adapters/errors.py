"""One mapping from a provider failure to a typed `ModelError`, shared by every adapter.

The raw-HTTP adapters call `error_for_status` with the status, headers and body they got; the
SDK adapters call it with the same facts taken from the SDK's exception. So a 429 is a
`RateLimitError` with `retry_after` whichever way it arrived.

The small constructors below (`timed_out`, `refused`, `cut_off`, `bad_payload`,
`unterminated`) give every adapter the same wording and the same `retryable` flag for the
same failure, whether it surfaced as an httpx2, aiohttp or SDK exception.

Transport exceptions are mapped at one boundary per transport: `httpx_errors(...)` and
`aiohttp_errors(...)` are context managers wrapped around every I/O call (as httpx maps
httpcore's errors), never copied try/except blocks. The SDK adapters use them too (the SDKs
speak httpx2 underneath). The table:

========================================  =============================  =========
failure                                   error                          retried
========================================  =============================  =========
bad URL or header (before any I/O)        `InvalidInputError`            no
refused / DNS / reset before an answer    `ProviderConnectionError`      yes
connect (or pool) timeout                 `ModelTimeoutError`            yes
read timeout, call deadline passed        `ModelTimeoutError`            no
connection cut while the answer arrives   `ProviderError`                no
HTTP error status                         `error_for_status`             by status
redirect (3xx): never followed            `ProviderError`                no
========================================  =============================  =========

An error body an agent can act on is typed by what it says, whatever its status or whether it
came inside a stream (`stream_error`): `ContextLengthExceededError` (with `limit` and
`requested`), `ContentFilterError`, `UnsupportedParameterError`; see `_error_bodies` for the
bodies each provider sends. None of them is retried.

The mapped error keeps the original's type name (`original="httpx2.ReadTimeout"`) and the
status code, but not the original itself: it is raised with `__cause__` and `__context__`
empty (`raise_mapped`), because the original may hold an echoed key or a URL with a password.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, NoReturn
from urllib.parse import urlsplit

from rlm_code.core.exceptions import (
    AuthenticationError,
    InvalidInputError,
    ModelError,
    ModelNotFoundError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
)
from rlm_code.core.redact import redact
from rlm_code.models.adapters._error_bodies import BODY_STATUSES, body_error

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
    """The provider's own error message from a body in any of the five wire formats.

    Redacted *before* it is shortened: cutting first could leave most of a key (63 of its 64
    characters) that the key-shape patterns no longer recognise."""
    if not body:
        return ""
    return redact(_raw_detail(body))[:_MAX_DETAIL]


def _raw_detail(body: bytes | str) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    stripped = text.lstrip()
    if stripped[:1] == "<" or stripped[:15].lower().startswith("<!doctype"):
        return "the server answered with an HTML page, not the provider's API"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return " ".join(text.split())
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
        return _raw_detail(json.dumps(data[0]))
    if not isinstance(message, str):
        message = " ".join(text.split())
    return message


def safe_url(url: str) -> str:
    """`url` without what may be secret in it (user:password, query, fragment), for messages."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(an invalid URL)"
    if not parts.scheme or not host:
        return redact(url.split("?", 1)[0].rpartition("@")[2])
    return f"{parts.scheme}://{host}{port}{parts.path}"


def error_for_status(
    provider: str,
    status: int,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    model: str | None = None,
) -> ModelError:
    """The typed error for an HTTP error status from `provider`; a body naming one of the
    errors of `_error_bodies` (context, content filter, unsupported setting) gives that one."""
    detail = error_detail(body)
    said = f": {detail}" if detail else ""
    who = f"{provider} answered HTTP {status}{said}"
    if 300 <= status < 400:
        where = (headers or {}).get("location") or (headers or {}).get("Location")
        to = f" to {safe_url(where)}" if where else ""
        return ProviderError(
            f"{provider} answered with a redirect (HTTP {status}){to}; it was not followed, "
            "so the key is never sent to another address",
            provider=provider,
            status_code=status,
            hint="Set the base URL to the address the server points to, if you trust it.",
        )
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
    if status in BODY_STATUSES and (typed := body_error(provider, status, body, detail)):
        return typed  # context too long, content refused, a setting the model does not take
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


def stream_error(
    provider: str, body: bytes | str | None, what: str = "failed mid-stream"
) -> ModelError:
    """The typed error for an error object inside a 200 answer (a stream's error event, an
    error line in place of the reply): the body's own type when it names one (`body_error`),
    else a `ProviderError` saying `provider` `what`."""
    detail = error_detail(body)
    typed = body_error(provider, None, body, detail)
    return typed or ProviderError(f"{provider} {what}: {detail}", provider=provider)


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
        f"cannot connect to {provider} at {safe_url(where)} ({type(exc).__name__})",
        provider=provider,
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
    if isinstance(exc, TimeoutError):  # asyncio.TimeoutError is this one since 3.11
        return timed_out(provider, "answer in time", read_timeout or timeouts.read, False)
    if isinstance(exc, a.ClientConnectorError):
        return refused(provider, where, exc)
    if answering and isinstance(
        exc, a.ClientPayloadError | a.ServerDisconnectedError | a.ClientOSError
    ):
        return cut_off(provider, exc)
    return refused(provider, where, exc)


def original_name(exc: BaseException) -> str:
    """`"httpx2.ReadTimeout"`: the package and type name of an exception, for `original=`."""
    package = type(exc).__module__.partition(".")[0]
    name = type(exc).__qualname__
    return name if package == "builtins" else f"{package}.{name}"


def raise_mapped(error: ModelError, exc: BaseException | None = None) -> NoReturn:
    """Raise `error` with nothing chained: the exception it replaces stays unreachable.

    `raise ... from None` is not enough (it only hides `__context__` from tracebacks), so
    both links are cleared after the raise, which is when Python sets them."""
    if exc is not None and error.original is None:
        error.original = original_name(exc)
    try:
        raise error
    finally:
        error.__context__ = None
        error.__cause__ = None
        error.__suppress_context__ = True


def invalid_request(provider: str, exc: BaseException) -> InvalidInputError:
    """A URL or header httpx2/aiohttp cannot send (caught before any I/O). The offending
    value is not echoed: it may be the key or a URL with a password."""
    if isinstance(exc, UnicodeError):
        what = "the API key or a header holds characters HTTP headers cannot carry (non-ASCII)"
    else:
        what = "the base URL or a header is not valid for an HTTP request"
    return InvalidInputError(
        f"{provider}: {what} ({type(exc).__name__})",
        provider=provider,
        hint="Check the base URL and the API key for typos or pasted extra characters.",
    )


class Boundary:
    """A context manager that turns one transport's exceptions into typed errors.

    Our own `ModelError`s pass through untouched; `catch` says what is mapped; `mapper`
    builds the typed error. Reusable and cheap to make: one per I/O site and call.
    """

    __slots__ = ("_catch", "_mapper")

    def __init__(
        self,
        catch: tuple[type[BaseException], ...],
        mapper: Callable[[BaseException], ModelError],
    ) -> None:
        self._catch = catch
        self._mapper = mapper

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        tp: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        if exc is None or isinstance(exc, ModelError) or not isinstance(exc, self._catch):
            return False
        error = self._mapper(exc)
        name = original_name(exc)
        del exc, tb  # keep the original out of this frame's locals too
        error.original = error.original or name
        raise_mapped(error)


_BAD_INPUT = (ValueError, UnicodeError, TypeError)


class Deadline:
    """When one call must be over (`timeout` bounds the whole call: connect and every read).

    `at` is a `time.monotonic()` instant, None without a call timeout. `fired` is set by
    whoever interrupts a blocked read at the deadline, so the resulting transport error is
    reported as the timeout it is."""

    __slots__ = ("at", "fired", "seconds")

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self.at = None if seconds is None else time.monotonic() + seconds
        self.fired = False

    def remaining(self) -> float | None:
        return None if self.at is None else self.at - time.monotonic()

    @property
    def passed(self) -> bool:
        return self.fired or (self.at is not None and time.monotonic() >= self.at)

    def error(self, provider: str) -> ModelError:
        return timed_out(provider, "finish the call within its timeout", self.seconds, False)


def httpx_errors(
    provider: str,
    where: str,
    timeouts: TimeoutSettings,
    read_timeout: float | None = None,
    *,
    answering: bool = True,
    deadline: Deadline | None = None,
) -> Boundary:
    """The httpx2 boundary. Before the answer (`answering=False`) a bad URL or header
    (`InvalidURL`, `UnsupportedProtocol`, `ValueError`, `UnicodeEncodeError`) is
    `InvalidInputError`; every transport error follows `map_httpx_error`. With a `deadline`
    that has passed, any failure is that call's `ModelTimeoutError` (the watchdog's socket
    shutdown surfaces as a read error)."""
    import httpx2

    def mapper(exc: BaseException) -> ModelError:
        if deadline is not None and deadline.at is not None and deadline.passed:
            return deadline.error(provider)
        if isinstance(exc, (httpx2.InvalidURL, httpx2.UnsupportedProtocol, *_BAD_INPUT)):
            return invalid_request(provider, exc)
        return map_httpx_error(
            httpx2, provider, exc, where, timeouts, read_timeout, answering=answering
        )

    catch: tuple[type[BaseException], ...] = (httpx2.TransportError, httpx2.DecodingError)
    if not answering:
        catch += (httpx2.InvalidURL, *_BAD_INPUT)
    return Boundary(catch, mapper)


def aiohttp_errors(
    provider: str,
    where: str,
    timeouts: TimeoutSettings,
    read_timeout: float | None = None,
    *,
    answering: bool = True,
    deadline: Deadline | None = None,
) -> Boundary:
    """The aiohttp boundary; see `httpx_errors`."""
    import aiohttp

    def mapper(exc: BaseException) -> ModelError:
        if deadline is not None and deadline.at is not None and deadline.passed:
            return deadline.error(provider)
        if isinstance(exc, aiohttp.InvalidURL) or (
            isinstance(exc, _BAD_INPUT) and not isinstance(exc, aiohttp.ClientError)
        ):
            return invalid_request(provider, exc)
        return map_aiohttp_error(
            aiohttp, provider, exc, where, timeouts, read_timeout, answering=answering
        )

    catch: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
    if not answering:
        catch += _BAD_INPUT
    return Boundary(catch, mapper)
