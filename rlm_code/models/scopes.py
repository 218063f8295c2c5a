"""Usage scopes: attribute every call made inside a `with` (or `async with`) block to it.

    with connector.usage_scope("sub", budget=Budget(max_requests=10), run="42") as scope:
        ...                       # every call here, in this thread or task and in the
    scope.usage, scope.cost_usd   # tasks it starts, is counted in `scope`

The scopes in effect are a tuple in a `ContextVar`, so each thread and each asyncio task sees
its own (a task started inside the block inherits the block's scopes; a thread does not).
Scopes nest: a call counts in every scope in effect, the outer ones included. Each call's own
`Response.usage` is added to each scope as the call is recorded — no diffing of global
counters, so concurrent calls in other scopes can never be counted here.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from typing import Any

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.budget import Budget, BudgetGuard
from rlm_code.models.tally import Tally
from rlm_code.models.types import Usage

ACTIVE: ContextVar[tuple[Scope, ...]] = ContextVar("rlm_code_usage_scopes", default=())


class Scope:
    """One usage scope: its name, tags, optional budget and the counts of its calls."""

    def __init__(self, name: str, budget: Budget | None = None, tags: dict[str, Any] | None = None):
        if not isinstance(name, str) or not name.strip() or "/" in name:
            raise InvalidInputError("a usage scope needs a name (a non-empty string without '/')")
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidInputError("budget must be a rlm_code.Budget")
        clean: dict[str, str] = {}
        for key, value in (tags or {}).items():
            if not isinstance(value, str | int | float | bool):
                raise InvalidInputError(f"scope tag {key!r} must be a string or a number")
            clean[key] = str(value)
        self.name = name
        self.tags = clean
        self.budget = budget
        self.guard = BudgetGuard(budget, f"scope {name!r}") if budget is not None else None
        self._tally = Tally()
        self._lock = threading.Lock()
        self._entered = False

    def __repr__(self) -> str:
        return f"Scope({self.name!r}, calls={self.calls})"

    # -- entering and leaving -------------------------------------------------------------

    def _enter(self) -> Scope:
        ACTIVE.set((*ACTIVE.get(), self))
        if self.guard is not None and not self._entered:
            self.guard.restart_clock()  # the deadline runs from the first entry
        self._entered = True
        return self

    def _exit(self) -> None:
        active = ACTIVE.get()
        if self in active:  # remove the innermost entry of this scope
            index = len(active) - 1 - active[::-1].index(self)
            ACTIVE.set(active[:index] + active[index + 1 :])

    def __enter__(self) -> Scope:
        return self._enter()

    def __exit__(self, *exc: object) -> None:
        self._exit()

    async def __aenter__(self) -> Scope:
        return self._enter()

    async def __aexit__(self, *exc: object) -> None:
        self._exit()

    # -- counting -------------------------------------------------------------------------

    def add(self, usage: Usage | None) -> None:
        """Count a finished call (None: it failed before any reply)."""
        with self._lock:
            if usage is None:
                self._tally.add_failure()
            else:
                self._tally.add(usage)

    @property
    def calls(self) -> int:
        with self._lock:
            return self._tally.calls

    @property
    def usage(self) -> Usage:
        """The sum of the calls' usage, bucket by bucket."""
        with self._lock:
            return self._tally.usage()

    @property
    def cost_usd(self) -> float | None:
        """The summed cost of the calls whose cost is known (None when none is);
        `cost_partial` says whether some call's cost is unknown."""
        with self._lock:
            return self._tally.as_dict()["cost_usd"]  # type: ignore[no-any-return]

    @property
    def cost_partial(self) -> bool:
        with self._lock:
            return self._tally.cost_partial

    def summary(self) -> dict[str, Any]:
        """Calls, failed calls, token buckets, `cost_usd` and `cost_partial`."""
        with self._lock:
            out = self._tally.as_dict()
            out["failed_calls"] = self._tally.failed_calls
            return out
