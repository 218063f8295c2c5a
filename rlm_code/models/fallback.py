"""One route call across its targets: limits, fallbacks and cooldowns.

Each target runs its own retries first (the adapter's `RetryPolicy`). Then the call moves to
the next target only for an error another target can fix:

- `ProviderConnectionError` (refused, reset, DNS): the server is not there;
- a `ProviderError` with a 5xx status (the adapter already retried it);
- a `RateLimitError` whose `retry_after` exceeds the backoff cap (`retries.backoff_max`):
  the adapter did not wait it out, another provider may serve now;
- `ContextLengthExceededError` when the next target's context window
  (`profile().context_window`) is larger than the limit the error states (else than the failed
  target's own window). When either window is unknown, the next target is tried: one fast,
  failed request costs less than giving up on a target that may well fit.

Everything else (a bad key, a bad request, a content filter, a timeout, a budget) is raised at
once: another target would fail the same way or the caller must decide. A stream moves on only
before its first event; after it, the error is raised as it is — never a silent switch in the
middle of a reply. Each attempt is counted (tracker, scopes, budgets, ledger) under the target
that made it, so the ledger shows both the failure and the target that served.

A target that fails `route_cooldown.failures` times in a row (default 3) with one of the first
three kinds is skipped for `route_cooldown.seconds` (default 30) — unless every target of the
route is cooling down, when they are all tried in order anyway.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

from rlm_code.core.exceptions import (
    ContextLengthExceededError,
    ModelError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
)
from rlm_code.models import calls
from rlm_code.models.connection import Connection
from rlm_code.models.limits import Limits
from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
from rlm_code.models.types import AdapterEvent, ChatRequest, Response

if TYPE_CHECKING:
    from rlm_code.models.metering import MeteredCall, Metering
    from rlm_code.models.routes import Health, Target

__all__ = ["Plan", "fixable"]

log = logging.getLogger("rlm_code.routes")
Prepare = Callable[[Connection], ChatRequest]


def _window(target: Target) -> int | None:
    """The target's context window, None when unknown (or no profile is available)."""
    profile = getattr(target.conn, "profile", None)
    if profile is None:
        return None
    try:
        window = profile().context_window
    except Exception:  # a profile that cannot be read says nothing
        return None
    return window if isinstance(window, int) else None


def fixable(error: ModelError, failed: Target, following: Target, backoff_max: float) -> bool:
    """Whether `following` may succeed where `failed` raised `error` (module docstring)."""
    if isinstance(error, ContextLengthExceededError):
        window = _window(following)
        limit = error.limit if error.limit is not None else _window(failed)
        return window is None or limit is None or window > limit
    return _unavailable(error, backoff_max)


def _unavailable(error: ModelError, backoff_max: float) -> bool:
    """The target could not serve now (the kinds that count towards a cooldown)."""
    if isinstance(error, ProviderConnectionError):
        return True
    if isinstance(error, RateLimitError):
        return error.retry_after is not None and error.retry_after > backoff_max
    if isinstance(error, ProviderError) and not isinstance(error, ContextLengthExceededError):
        return error.status_code is not None and error.status_code >= 500
    return False


def _exit(limits: tuple[Limits, ...], response: Response | None) -> None:
    usage = response.usage if response is not None else None
    for lim in reversed(limits):
        lim.exit(usage)


class _Served:
    """Which target a route's stream settled on; counts and releases it when the stream ends."""

    __slots__ = ("call", "conn", "limits", "stream", "target")

    def __init__(self) -> None:
        self.stream: Any = None
        self.conn: Connection | None = None
        self.call: MeteredCall | None = None
        self.target: Target | None = None
        self.limits: tuple[Limits, ...] = ()

    def serve(self, target: Target, call: MeteredCall, limits: tuple[Limits, ...]) -> None:
        self.target, self.conn, self.call, self.limits = target, target.conn, call, limits
        acc = self.stream._acc  # the reply is attributed to the target that serves it
        acc.provider, acc.model = target.conn.spec.provider_id, target.conn.model

    def done(self, response: Response, error: ModelError | None) -> None:
        conn, call, limits = self.conn, self.call, self.limits
        if conn is None or call is None:
            return
        self.conn = self.call = None
        conn.release()
        _exit(limits, response)
        if error is not None and not response.text and not response.usage.known:
            call.failed(error)
        else:
            call.finished(response, streamed=True)


class Plan:
    """How a route's calls run: its targets, limits, metering and cooldown settings."""

    __slots__ = ("backoff_max", "health", "limits", "metering", "targets")

    def __init__(
        self,
        targets: tuple[Target, ...],
        limits: Limits | None,
        metering: Metering,
        health: Health,
        backoff_max: float,
    ) -> None:
        self.targets = targets
        self.limits = limits
        self.metering = metering
        self.health = health
        self.backoff_max = backoff_max

    def _chain(self) -> tuple[Target, ...]:
        targets = self.targets
        if len(targets) == 1:
            return targets
        now = time.monotonic()
        live = tuple(t for t in targets if not t.cooling(now))
        return live or targets

    def _limits(self, target: Target) -> tuple[Limits, ...]:
        own, provider = self.limits, target.provider_limits
        if own is None:
            return () if provider is None else (provider,)
        return (own,) if provider is None else (own, provider)

    def _moves_on(self, error: ModelError, chain: tuple[Target, ...], index: int) -> bool:
        """Note the failure; True when the call should go on with the next target."""
        target = chain[index]
        if _unavailable(error, self.backoff_max):
            target.failed(self.health)
        if index + 1 >= len(chain):
            return False
        if not fixable(error, target, chain[index + 1], self.backoff_max):
            return False
        log.info(
            "%s failed (%s); trying %s", target.label, type(error).__name__, chain[index + 1].label
        )
        return True

    @staticmethod
    def _held(target: Target, prepare: Prepare) -> tuple[Connection, ChatRequest]:
        conn = target.conn
        conn.hold()
        try:
            return conn, prepare(conn)
        except BaseException:
            conn.release()
            raise

    # -- whole replies ------------------------------------------------------------------------

    def complete(self, prepare: Prepare) -> Response:
        chain = self._chain()
        for index, target in enumerate(chain):
            limits = self._limits(target)
            if not limits and len(chain) == 1:  # the common case: nothing to wait for
                return calls.complete(*self._held(target, prepare), self.metering)
            for n, lim in enumerate(limits):
                try:
                    lim.enter()
                except BaseException:
                    _exit(limits[:n], None)
                    raise
            response = None
            try:
                response = calls.complete(*self._held(target, prepare), self.metering)
            except ModelError as exc:
                if self._moves_on(exc, chain, index):
                    continue
                raise
            finally:
                _exit(limits, response)
            target.succeeded()
            return response
        raise AssertionError("unreachable: the last target raises")  # pragma: no cover

    async def acomplete(self, prepare: Prepare) -> Response:
        chain = self._chain()
        for index, target in enumerate(chain):
            limits = self._limits(target)
            if not limits and len(chain) == 1:
                return await calls.acomplete(*self._held(target, prepare), self.metering)
            for n, lim in enumerate(limits):
                try:
                    await lim.aenter()
                except BaseException:
                    _exit(limits[:n], None)
                    raise
            response = None
            try:
                response = await calls.acomplete(*self._held(target, prepare), self.metering)
            except ModelError as exc:
                if self._moves_on(exc, chain, index):
                    continue
                raise
            finally:
                _exit(limits, response)
            target.succeeded()
            return response
        raise AssertionError("unreachable: the last target raises")  # pragma: no cover

    # -- streams ------------------------------------------------------------------------------

    def stream(self, prepare: Prepare) -> ResponseStream:
        chain = self._chain()
        if len(chain) == 1 and not self._limits(chain[0]):
            return calls.stream(*self._held(chain[0], prepare), self.metering)
        served = _Served()
        conn = chain[0].conn
        stream = ResponseStream(
            self._events(chain, prepare, served), conn.spec.provider_id, conn.model, served.done
        )
        served.stream = stream
        return stream

    def astream(self, prepare: Prepare) -> AsyncResponseStream:
        chain = self._chain()
        if len(chain) == 1 and not self._limits(chain[0]):
            return calls.astream(*self._held(chain[0], prepare), self.metering)
        served = _Served()
        conn = chain[0].conn
        stream = AsyncResponseStream(
            self._aevents(chain, prepare, served), conn.spec.provider_id, conn.model, served.done
        )
        served.stream = stream
        return stream

    def _admit(
        self, target: Target, prepare: Prepare, limits: tuple[Limits, ...]
    ) -> tuple[Connection, ChatRequest, MeteredCall]:
        try:
            conn, request = self._held(target, prepare)
        except BaseException:
            _exit(limits, None)
            raise
        try:
            request, call = self.metering.admit(conn, request)
        except BaseException:
            conn.release()
            _exit(limits, None)
            raise
        return conn, request, call

    def _events(
        self, chain: tuple[Target, ...], prepare: Prepare, served: _Served
    ) -> Iterator[AdapterEvent]:
        for index, target in enumerate(chain):
            limits = self._limits(target)
            for n, lim in enumerate(limits):
                try:
                    lim.enter()
                except BaseException:
                    _exit(limits[:n], None)
                    raise
            conn, request, call = self._admit(target, prepare, limits)
            events = conn.adapter.stream(request)
            if call.watch is not None:
                events = call.watch.sync(events)
            try:
                first = next(events)
            except StopIteration:
                served.serve(target, call, limits)
                return
            except BaseException as exc:
                _close(events)
                conn.release()
                _exit(limits, None)
                if not isinstance(exc, ModelError):
                    raise
                error = call.failed(exc)
                if self._moves_on(exc, chain, index):
                    continue
                raise error from None
            served.serve(target, call, limits)
            target.succeeded()
            try:
                yield first
                yield from events
            finally:
                _close(events)
            return

    async def _aevents(
        self, chain: tuple[Target, ...], prepare: Prepare, served: _Served
    ) -> AsyncIterator[AdapterEvent]:
        for index, target in enumerate(chain):
            limits = self._limits(target)
            for n, lim in enumerate(limits):
                try:
                    await lim.aenter()
                except BaseException:
                    _exit(limits[:n], None)
                    raise
            conn, request, call = self._admit(target, prepare, limits)
            events = conn.adapter.astream(request)
            if call.watch is not None:
                events = call.watch.asynchronous(events)
            try:
                first = await events.__anext__()
            except StopAsyncIteration:
                served.serve(target, call, limits)
                return
            except BaseException as exc:
                await _aclose(events)
                conn.release()
                _exit(limits, None)
                if not isinstance(exc, ModelError):
                    raise
                error = call.failed(exc)
                if self._moves_on(exc, chain, index):
                    continue
                raise error from None
            served.serve(target, call, limits)
            target.succeeded()
            try:
                yield first
                async for event in events:
                    yield event
            finally:
                await _aclose(events)
            return


def _close(events: Iterator[AdapterEvent]) -> None:
    close = getattr(events, "close", None)
    if close is not None:
        close()


async def _aclose(events: AsyncIterator[AdapterEvent]) -> None:
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        await aclose()
