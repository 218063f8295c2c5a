"""Bounded exponential backoff with jitter, the same for every adapter.

An attempt is retried only when its error says `retryable` (connection failures, 429, 500,
502, 503, 504, 529, connect timeouts) and attempts remain. The wait is the provider's
`Retry-After` when it sent one — honoured exactly — else `backoff_base * 2**(n-1)` capped at
`backoff_max`, with "equal jitter" (a random half of it). A `Retry-After` longer than
`backoff_max` is not slept through: the `RateLimitError` is raised at once, carrying
`retry_after`, so the caller decides. Streams are retried only until their first byte of
text; after that an error is raised, never a silent restart.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from rlm_code.core.config import RetrySettings
from rlm_code.core.exceptions import ModelError

T = TypeVar("T")
log = logging.getLogger("rlm_code.retry")


class RetryPolicy:
    """Decides whether and how long to wait before another attempt."""

    __slots__ = ("backoff_base", "backoff_max", "max_attempts")

    def __init__(self, settings: RetrySettings | None = None) -> None:
        settings = settings or RetrySettings()
        self.max_attempts = max(1, int(settings.max_attempts))
        self.backoff_base = max(0.0, float(settings.backoff_base))
        self.backoff_max = max(0.0, float(settings.backoff_max))

    def delay(self, attempt: int, error: ModelError) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None to give up now."""
        if attempt >= self.max_attempts or not error.retryable:
            return None
        if error.retry_after is not None:
            wait = float(error.retry_after)
            return wait if wait <= self.backoff_max else None
        ceiling = min(self.backoff_max, self.backoff_base * (2.0 ** (attempt - 1)))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def _wait(self, attempt: int, error: ModelError, deadline: float | None) -> float | None:
        wait = self.delay(attempt, error)
        if wait is not None and deadline is not None and time.monotonic() + wait >= deadline:
            return None  # the call's timeout would pass while waiting: give up now
        return wait

    def call(self, attempt_fn: Callable[[], T], deadline: float | None = None) -> T:
        """Run `attempt_fn` until it succeeds or may not be retried; `deadline` (a
        `time.monotonic()` instant) is the call's end: no wait runs past it."""
        attempt = 1
        while True:
            try:
                return attempt_fn()
            except ModelError as error:
                wait = self._wait(attempt, error, deadline)
                if wait is None:
                    raise
                log.debug("attempt %d failed (%s); retrying in %.2f s", attempt, error, wait)
                time.sleep(wait)
                attempt += 1

    async def acall(
        self, attempt_fn: Callable[[], Awaitable[T]], deadline: float | None = None
    ) -> T:
        """Async twin of `call`. asyncio is imported here, not at the top: it is already
        loaded whenever this runs, and blocking use of the adapters should not pay for it."""
        import asyncio

        attempt = 1
        while True:
            try:
                return await attempt_fn()
            except ModelError as error:
                wait = self._wait(attempt, error, deadline)
                if wait is None:
                    raise
                log.debug("attempt %d failed (%s); retrying in %.2f s", attempt, error, wait)
                await asyncio.sleep(wait)
                attempt += 1
