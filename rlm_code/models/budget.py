"""`Budget`: limits on what calls may spend, and `BudgetGuard`, a budget being spent.

A budget is attached to a connector (`LLMConnector(budget=...)`, `connector.budget = ...`) or
to a usage scope (`connector.usage_scope(name, budget=...)`, binding only inside it). Each guard
counts the calls made under it and is checked:

- before each request (`admit`): the request that would pass `max_requests`, or that comes
  after the token, cost or time limit was reached, raises `BudgetExceededError` before any
  socket is opened. Requests are counted when admitted, so concurrent calls cannot overshoot
  `max_requests`. The output-token limit also caps the request's own `max_tokens` to what is
  left, and the deadline caps its timeout, so a single whole call cannot overspend either.
- while a stream runs (`watch`): the output-token and deadline limits stop the stream within
  one chunk (each text, reasoning or tool-call piece counts as at least one token until the
  provider reports its own count), closing it cleanly so the usage received is recorded.

`max_input_tokens` counts every prompt token (input plus cache reads and writes);
`max_cost_usd` counts the calls whose cost is known (a call of unknown cost adds nothing and
makes the scope's cost partial). `deadline_s` runs from when the budget was attached (the
connector) or the scope was first entered; a call whose timeout the deadline capped, and that
times out, raises `BudgetExceededError` too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

from rlm_code.core.exceptions import BudgetExceededError, InvalidInputError, ModelTimeoutError
from rlm_code.models.tally import Tally
from rlm_code.models.types import (
    AdapterEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageReport,
)

_PIECES = (TextDelta, ReasoningDelta, ToolCallDelta)


@dataclass(frozen=True, slots=True)
class Budget:
    """Limits on spending; None means no limit. See the module docstring."""

    max_cost_usd: float | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_requests: int | None = None
    deadline_s: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_input_tokens", "max_output_tokens", "max_requests"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise InvalidInputError(f"Budget {name} must be a whole number of at least 1")
        for name in ("max_cost_usd", "deadline_s"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
            ):
                raise InvalidInputError(f"Budget {name} must be a positive number")


def _exceeded(owner: str, limit: str, reached: float, maximum: float) -> BudgetExceededError:
    if limit == "max_cost_usd":
        shown = f"${reached:.6g} of ${maximum:.6g}"
    elif limit == "deadline_s":
        shown = f"{reached:.3g} s of {maximum:.3g} s"
    else:
        shown = f"{reached:g} of {maximum:g}"
    return BudgetExceededError(
        f"the {owner} budget's {limit} is reached: {shown}",
        limit=limit,
        reached=reached,
        maximum=maximum,
    )


class BudgetGuard:
    """One budget being spent by one connector or scope: its own counts, under a lock."""

    def __init__(self, budget: Budget, owner: str) -> None:
        self.budget = budget
        self.owner = owner
        self.tally = Tally()
        self._lock = threading.Lock()
        self._admitted = 0
        self._started_at = time.monotonic()

    def restart_clock(self) -> None:
        """The deadline runs from now (a scope being entered)."""
        self._started_at = time.monotonic()

    def remaining_s(self) -> float | None:
        deadline = self.budget.deadline_s
        return None if deadline is None else deadline - (time.monotonic() - self._started_at)

    def admit(self) -> tuple[int | None, float | None]:
        """Count one request in, or raise `BudgetExceededError`. Returns what is left of the
        output tokens and of the time (None: no such limit), to cap the request with."""
        b = self.budget
        with self._lock:
            left_s = self.remaining_s()
            if left_s is not None and left_s <= 0:
                raise _exceeded(self.owner, "deadline_s", b.deadline_s - left_s, b.deadline_s)  # type: ignore[operator, arg-type]
            t = self.tally
            if b.max_requests is not None and self._admitted >= b.max_requests:
                raise _exceeded(self.owner, "max_requests", self._admitted, b.max_requests)
            if b.max_input_tokens is not None and t.prompt_tokens >= b.max_input_tokens:
                raise _exceeded(self.owner, "max_input_tokens", t.prompt_tokens, b.max_input_tokens)
            left_out = None
            if b.max_output_tokens is not None:
                left_out = b.max_output_tokens - t.completion_tokens
                if left_out <= 0:
                    raise _exceeded(
                        self.owner, "max_output_tokens", t.completion_tokens, b.max_output_tokens
                    )
            if b.max_cost_usd is not None:
                t.price()
                if t.cost_usd >= b.max_cost_usd:
                    raise _exceeded(self.owner, "max_cost_usd", t.cost_usd, b.max_cost_usd)
            self._admitted += 1
        return left_out, left_s

    def add(self, usage: Usage | None) -> None:
        """Count a finished call's usage (None: it failed before any reply)."""
        with self._lock:
            if usage is None:
                self.tally.add_failure()
            else:
                self.tally.add(usage)


def deadline_error(guards: list[BudgetGuard]) -> BudgetExceededError:
    """The error of the first guard whose deadline has passed (or is the nearest)."""
    timed = [g for g in guards if g.budget.deadline_s is not None]
    guard = min(timed, key=lambda g: g.remaining_s() or 0.0)
    deadline = guard.budget.deadline_s or 0.0
    return _exceeded(guard.owner, "deadline_s", deadline - (guard.remaining_s() or 0.0), deadline)


class StreamWatch:
    """The stream limits of the guards in effect: output tokens left and a deadline."""

    __slots__ = ("_deadline", "_guards", "_left_out", "_out", "_pieces")

    def __init__(self, guards: list[tuple[BudgetGuard, int | None, float | None]]) -> None:
        self._guards = guards
        lefts = [left for _, left, _ in guards if left is not None]
        ends = [time.monotonic() + s for _, _, s in guards if s is not None]
        self._left_out = min(lefts) if lefts else None
        self._deadline = min(ends) if ends else None
        self._out = 0
        self._pieces = 0

    def check(self, event: AdapterEvent) -> None:
        kind = type(event)
        if kind in _PIECES:
            self._pieces += 1
        elif kind is UsageReport:
            self._out = max(self._out, event.usage.output_tokens or 0)  # type: ignore[union-attr]
        left = self._left_out
        if left is not None and max(self._out, self._pieces) > left:
            guard = next(g for g, lo, _ in self._guards if lo == left)
            b = guard.budget
            spent = guard.tally.completion_tokens + max(self._out, self._pieces)
            raise _exceeded(guard.owner, "max_output_tokens", spent, b.max_output_tokens or 0)
        if self._deadline is not None and time.monotonic() > self._deadline:
            raise deadline_error([g for g, _, _ in self._guards])

    def _timed_out(self, error: ModelTimeoutError) -> BudgetExceededError | ModelTimeoutError:
        """The call's timeout was capped to the deadline: its firing is the budget's."""
        if self._deadline is not None and time.monotonic() >= self._deadline - 0.05:
            return deadline_error([g for g, _, _ in self._guards])
        return error

    def sync(self, events: Iterator[AdapterEvent]) -> Iterator[AdapterEvent]:
        try:
            for event in events:
                self.check(event)
                yield event
        except ModelTimeoutError as exc:
            raise self._timed_out(exc) from None
        finally:
            close = getattr(events, "close", None)
            if close is not None:
                close()

    async def asynchronous(
        self, events: AsyncIterator[AdapterEvent]
    ) -> AsyncIterator[AdapterEvent]:
        try:
            async for event in events:
                self.check(event)
                yield event
        except ModelTimeoutError as exc:
            raise self._timed_out(exc) from None
        finally:
            aclose = getattr(events, "aclose", None)
            if aclose is not None:
                await aclose()
