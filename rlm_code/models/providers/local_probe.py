"""The network half of local discovery: GET many URLs at once, within one deadline.

Split from `local_discovery` (which decides what to probe and what the answers mean) so that
each module stays small. Nothing here raises for a network problem: every URL gets an
`Answer` — a status and body, or a short reason why there was none.
"""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import aiohttp

__all__ = ["NOT_JSON", "Answer", "fetch_all", "run_coroutine", "timed_out"]

_DEADLINE_GRACE_S = 0.25
_MAX_BODY_BYTES = 4 * 1024 * 1024  # a models list is kilobytes; anything huge is not one
_HEADERS = {"Accept": "application/json", "User-Agent": "rlm-code-discover"}

T = TypeVar("T")


# -- fetching ---------------------------------------------------------------------------------


NOT_JSON: Any = object()


@dataclass
class Answer:
    """The outcome of one GET: an HTTP status and body, or why there was none."""

    status: int | None = None
    body: bytes = b""
    latency_ms: float | None = None
    error: str | None = None

    def json(self) -> Any:
        import json

        if self.status is None:
            return NOT_JSON
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError):
            return NOT_JSON


def timed_out(timeout: float) -> Answer:
    return Answer(error=f"timed out after {timeout:g} s")


def _connect_error(exc: BaseException) -> str:
    """A short reason for a failed connection: refused, unknown host or the OS's words."""
    import aiohttp

    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve host {getattr(exc, 'host', '')}".rstrip()
    os_error = getattr(exc, "os_error", None)
    code = getattr(os_error, "errno", None)
    if code == errno.ECONNREFUSED or "refused" in str(exc).lower():
        return "connection refused"
    reason = getattr(os_error, "strerror", None) or type(exc).__name__
    return f"cannot connect ({reason})"


async def _fetch(session: aiohttp.ClientSession, url: str, timeout: float) -> Answer:
    """GET `url` once; never raises for network problems."""
    import aiohttp

    started = time.perf_counter()
    try:
        async with session.get(
            url,
            timeout=aiohttp.ClientTimeout(total=timeout),
            allow_redirects=False,
            headers=_HEADERS,
        ) as response:
            body = bytearray()
            async for chunk in response.content.iter_chunked(65536):
                body += chunk
                if len(body) > _MAX_BODY_BYTES:
                    return Answer(error="answer too large to be a model list")
            latency = round((time.perf_counter() - started) * 1000, 1)
            return Answer(status=response.status, body=bytes(body), latency_ms=latency)
    except TimeoutError:  # aiohttp's ServerTimeoutError is a TimeoutError too
        return timed_out(timeout)
    except aiohttp.ClientConnectorError as exc:
        return Answer(error=_connect_error(exc))
    except aiohttp.ServerDisconnectedError:
        return Answer(error="the server closed the connection without answering")
    except (aiohttp.ClientResponseError, aiohttp.ClientPayloadError):
        return Answer(error="not an HTTP answer")
    except aiohttp.InvalidURL:
        return Answer(error="invalid URL")
    except aiohttp.ClientError as exc:
        return Answer(error=f"cannot talk to the server ({type(exc).__name__})")
    except (OSError, ValueError) as exc:
        return Answer(error=f"cannot connect ({type(exc).__name__})")


async def fetch_all(urls: list[str], timeout: float) -> dict[str, Answer]:
    """Fetch every distinct URL concurrently; the whole thing ends by one deadline."""

    import aiohttp

    unique = list(dict.fromkeys(urls))
    if not unique:
        return {}
    # limit=0: no cap on parallel connections (a cap would queue probes behind silent ports);
    # force_close: no keep-alive sockets left behind; trust_env=False: never send a probe of
    # localhost through an HTTP(S)_PROXY from the environment.
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector, trust_env=False) as session:
        tasks = {url: asyncio.create_task(_fetch(session, url, timeout)) for url in unique}
        _, pending = await asyncio.wait(tasks.values(), timeout=timeout + _DEADLINE_GRACE_S)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
    answers: dict[str, Answer] = {}
    for url, task in tasks.items():
        if task.cancelled():
            answers[url] = timed_out(timeout)
        else:
            answers[url] = task.result()
    return answers


def run_coroutine(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from sync code, even when called inside a running loop.

    Not `asyncio.run`: its teardown joins the default executor, so one stuck DNS lookup in a
    resolver thread would hold the caller long after the deadline. Closing the loop ourselves
    shuts that executor down without waiting.
    """
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _run_in_new_loop(factory)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rlm-discover") as pool:
        return pool.submit(_run_in_new_loop, factory).result()


def _run_in_new_loop(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(factory())
    finally:
        try:
            leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in leftovers:
                task.cancel()
            if leftovers:
                loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


# -- reading the answers ----------------------------------------------------------------------
