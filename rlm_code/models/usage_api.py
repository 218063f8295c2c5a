"""The connector's usage methods: the spec's summary and counters, usage scopes and budgets.

`LLMConnector` inherits these; the counting itself is `metering` (one `CallRecord` per call,
added to the tracker, the scopes in effect, the budgets and the ledger).
"""

from __future__ import annotations

from typing import Any

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.budget import Budget, BudgetGuard
from rlm_code.models.metering import Metering
from rlm_code.models.scopes import Scope
from rlm_code.models.usage import usage_delta


class UsageMethods:
    """Usage, scopes and budgets of a connector; the host class creates `_metering`."""

    _metering: Metering

    def usage_snapshot(self) -> dict[str, int]:
        """Compact counters (calls, prompt and completion tokens) for `usage_delta`."""
        return self._metering.tracker.snapshot()

    @staticmethod
    def usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """`after - before` for calls and tokens (plus `unknown_usage_calls` when non-zero)."""
        return usage_delta(before or {}, after or {})

    def get_usage_summary(self, scope: str | None = None) -> dict[str, Any]:
        """`totals` (calls, token buckets, `cost_usd`, `cost_partial`), `by_model` keyed
        `provider/model`, and `last_call`. Given a scope name, `totals` covers only the calls
        made in scopes of that name."""
        if scope is not None and not isinstance(scope, str):
            raise InvalidInputError("scope must be a scope name (a string)")
        return self._metering.tracker.summary(scope)

    def reset_usage(self) -> None:
        self._metering.tracker.reset()

    def usage_scope(self, name: str, *, budget: Budget | None = None, **tags: Any) -> Scope:
        """A scope to use with `with` / `async with`: every call made inside it (in that
        thread or task, and in tasks it starts) is counted in it; scopes nest; `budget`
        binds only inside it. See `rlm_code.models.scopes`."""
        return Scope(name, budget, tags)

    @property
    def budget(self) -> Budget | None:
        """The connector's budget (None: no limit). Setting it starts a fresh count."""
        guard = self._metering.guard
        return guard.budget if guard is not None else None

    @budget.setter
    def budget(self, budget: Budget | None) -> None:
        if budget is not None and not isinstance(budget, Budget):
            raise InvalidInputError("budget must be a rlm_code.Budget or None")
        self._metering.guard = BudgetGuard(budget, "connector") if budget is not None else None
