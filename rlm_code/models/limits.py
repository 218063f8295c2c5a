"""Concurrency and rate limits of a route or a provider: a gate and two token buckets.

A `Limits` holds up to three independent limits, any of which may be absent:

- `max_concurrency`: a `Gate` (a semaphore that blocking threads and asyncio tasks share, so
  sync and async calls on the same route count against one ceiling);
- `requests_per_minute`: a `TokenBucket` of requests, one taken as each call starts;
- `tokens_per_minute`: a `TokenBucket` of tokens. What a call will use is unknown before it
  runs, so a call waits only while the bucket is in debt, and its `Response.usage` (input plus
  output tokens) is taken after it ends — the bucket may go below zero, and the next calls
  wait until it refills.

Buckets refill continuously at `rate / 60` per second and hold at most one second's worth (at
least 1): a limit of 600 requests a minute allows 10 at once, then one every 100 ms. Each
caller reserves its place and sleeps once for exactly its share (no polling), so pacing is
even under any number of threads and tasks.

Waiting for a limit never fails a call: the wait is not bounded by the call's timeout (the
timeout starts when the request is sent). `learn(headers)` reads a provider's
`x-ratelimit-remaining-*` / `x-ratelimit-reset-*` (and Anthropic's `anthropic-ratelimit-*`)
answer headers: when a remaining count reaches 0, the matching bucket pauses until the reset.
A route without limits has no `Limits` object at all, so the cost per call is one `None` check.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # asyncio loads with the first async call (issue 11: blocking start-up)
    import asyncio

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.types import Usage

__all__ = ["Gate", "Limits", "TokenBucket", "check_limit", "reset_seconds"]


def check_limit(value: object, what: str) -> float | None:
    """None, or a positive number (a bad value is a typed one-line error before any I/O)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidInputError(f"{what} must be a positive number or None, got {value!r}")
    if value != value or value == float("inf"):
        raise InvalidInputError(f"{what} must be finite")
    return float(value)


class Gate:
    """A counting semaphore for threads and asyncio tasks (any loop) at once.

    A released slot is handed straight to the oldest waiter, sync or async, so waiters are
    served in order and a burst of releases never lets more than `size` calls run.
    """

    __slots__ = ("_lock", "_used", "_waiters", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._used = 0
        self._lock = threading.Lock()
        self._waiters: deque[Any] = deque()

    @property
    def in_use(self) -> int:
        return self._used

    def acquire(self) -> None:
        with self._lock:
            if self._used < self.size and not self._waiters:
                self._used += 1
                return
            event = threading.Event()
            self._waiters.append(event)
        event.wait()  # the slot is ours when set (release hands it over)

    async def aacquire(self) -> None:
        with self._lock:
            if self._used < self.size and not self._waiters:
                self._used += 1
                return
            import asyncio  # only async callers get here: the event loop is running already

            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            entry = (loop, future)
            self._waiters.append(entry)
        try:
            await future
        except BaseException:
            with self._lock:
                waiting = entry in self._waiters
                if waiting:
                    self._waiters.remove(entry)
            if not waiting and future.done() and not future.cancelled():
                self.release()  # handed a slot, then cancelled: give it back
            raise

    def release(self) -> None:
        with self._lock:
            if not self._waiters:
                self._used -= 1
                return
            waiter = self._waiters.popleft()  # the slot passes on; _used stays
        if isinstance(waiter, threading.Event):
            waiter.set()
        else:
            loop, future = waiter
            try:
                loop.call_soon_threadsafe(self._hand_over, future)
            except RuntimeError:  # that loop has closed: nobody can take the slot
                self.release()

    def _hand_over(self, future: asyncio.Future[None]) -> None:
        if future.done():  # cancelled meanwhile: pass the slot on
            self.release()
        else:
            future.set_result(None)


class TokenBucket:
    """`per_minute` units a minute, refilled continuously, at most `burst` saved up."""

    __slots__ = ("_lock", "_stamp", "_until", "burst", "level", "rate")

    def __init__(self, per_minute: float, burst: float | None = None) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst if burst is not None else max(1.0, self.rate)
        self.level = self.burst
        self._stamp = time.monotonic()
        self._until = 0.0  # paused (by the provider's headers) until this instant
        self._lock = threading.Lock()

    def reserve(self, amount: float) -> float:
        """Take `amount` now (the level may go below zero) and return the seconds the caller
        must wait before its turn: until the level it left behind is back to zero."""
        with self._lock:
            now = time.monotonic()
            self.level = min(self.burst, self.level + (now - self._stamp) * self.rate)
            self._stamp = now
            self.level -= amount
            debt = -self.level
            wait = debt / self.rate if debt > 0 else 0.0
            return max(wait, self._until - now)

    def debit(self, amount: float) -> None:
        """Take what a finished call used (the tokens of its usage)."""
        if amount > 0:
            with self._lock:
                self.level -= amount

    def pause(self, seconds: float) -> None:
        """No unit until `seconds` from now (the provider said its window is used up)."""
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)


class Limits:
    """The limits of one route or provider (see the module docstring)."""

    __slots__ = ("gate", "requests", "tokens")

    def __init__(
        self,
        max_concurrency: float | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        self.gate = Gate(int(max_concurrency)) if max_concurrency else None
        self.requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self.tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None

    def __repr__(self) -> str:
        parts = []
        if self.gate is not None:
            parts.append(f"max_concurrency={self.gate.size}")
        if self.requests is not None:
            parts.append(f"requests_per_minute={self.requests.rate * 60:g}")
        if self.tokens is not None:
            parts.append(f"tokens_per_minute={self.tokens.rate * 60:g}")
        return f"Limits({', '.join(parts)})"

    def _wait(self) -> float:
        wait = 0.0
        if self.requests is not None:
            wait = self.requests.reserve(1)
        if self.tokens is not None:
            wait = max(wait, self.tokens.reserve(0))
        return wait

    def enter(self) -> None:
        """Block until a call may start: a slot of the gate, then its turn in the buckets."""
        if self.gate is not None:
            self.gate.acquire()
        try:
            wait = self._wait()
            if wait > 0:
                time.sleep(wait)
        except BaseException:
            self.exit(None)
            raise

    async def aenter(self) -> None:
        """Async twin of `enter` (waits without blocking the event loop)."""
        if self.gate is not None:
            await self.gate.aacquire()
        try:
            wait = self._wait()
            if wait > 0:
                import asyncio  # loaded already: this is an async call

                await asyncio.sleep(wait)
        except BaseException:
            self.exit(None)
            raise

    def exit(self, usage: Usage | None) -> None:
        """The call ended: free its slot and take the tokens it used."""
        if self.gate is not None:
            self.gate.release()
        if self.tokens is not None and usage is not None:
            self.tokens.debit((usage.input_tokens or 0) + (usage.output_tokens or 0))

    def learn(self, headers: Mapping[str, str]) -> None:
        """Pause the requests or tokens bucket when the provider says its window is used up.

        Reads `x-ratelimit-remaining-requests` / `-tokens` with `x-ratelimit-reset-requests` /
        `-tokens` (OpenAI, Groq, OpenRouter and most compatible hosts) and
        `anthropic-ratelimit-{requests,tokens}-remaining` / `-reset`. A bucket the user did not
        configure is made only to pause (the `-limit-*` count's window is not stated, so it
        is not taken as a rate). A pause lasts at most 5 minutes."""
        for kind in ("requests", "tokens"):
            remaining = _header(headers, f"x-ratelimit-remaining-{kind}")
            reset = _header(headers, f"x-ratelimit-reset-{kind}")
            if remaining is None:
                remaining = _header(headers, f"anthropic-ratelimit-{kind}-remaining")
                reset = _header(headers, f"anthropic-ratelimit-{kind}-reset")
            if remaining is None or remaining.strip() not in ("0", "0.0"):
                continue
            seconds = reset_seconds(reset) if reset is not None else None
            if seconds is None or seconds <= 0:
                continue
            bucket = self.requests if kind == "requests" else self.tokens
            if bucket is None:  # only to pause: the window's length is not known
                bucket = TokenBucket(_UNLIMITED)
                if kind == "requests":
                    self.requests = bucket
                else:
                    self.tokens = bucket
            bucket.pause(min(seconds, 300.0))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """The header's value; httpx's and aiohttp's header maps ignore case, a dict must be
    lower-case."""
    return headers.get(name)


_UNLIMITED = 1e12  # a bucket that only pauses
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def reset_seconds(value: str) -> float | None:
    """Seconds until a rate-limit window resets: `"1s"`, `"6m0s"`, `"20ms"`, `"1h2m3.5s"`
    (OpenAI's form), a plain number of seconds, or an RFC 3339 instant (Anthropic's)."""
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if parts and "".join(n + u for n, u in parts) == text:
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return sum(float(n) * scale[u] for n, u in parts)
    try:
        instant = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if instant.tzinfo is None:
        return None
    return instant.timestamp() - time.time()
