"""`Tally`: the counts of a set of calls — calls, token buckets and cost — kept exact.

One class counts for the connector's totals, each model, each scope name and each `Scope`
object, so every aggregate means the same thing. Tokens are added as calls are recorded.
Cost is added lazily: a call's usage waits in a short list until someone asks for a cost
(or the list grows long), so the price table loads only then. A call whose cost is unknown
is counted apart (`unknown_cost_calls`) and makes the cost `partial`: it is never added as $0.
"""

from __future__ import annotations

from typing import Any

from rlm_code.models.types import Usage

BUCKETS = (
    "input_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
MAX_UNPRICED = 512  # past this many waiting calls, price them at once (bounds the memory)


class Tally:
    """Counts of calls. Not locked: its owner (a tracker or a scope) holds the lock."""

    __slots__ = (
        "_unpriced",
        "calls",
        "completion_tokens",
        "cost_usd",
        "failed_calls",
        "prompt_tokens",
        "unknown_cost_calls",
        "unknown_usage_calls",
        *BUCKETS,
    )

    def __init__(self) -> None:
        self.calls = 0
        self.failed_calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.input_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.unknown_usage_calls = 0
        self.cost_usd = 0.0
        self.unknown_cost_calls = 0
        self._unpriced: list[Usage] = []

    def add(self, usage: Usage) -> None:
        """Count one call that produced (part of) a reply."""
        self.calls += 1
        prompt = usage.prompt_tokens
        completion = usage.output_tokens
        if prompt is None or completion is None:
            self.unknown_usage_calls += 1
        self.prompt_tokens += prompt or 0
        self.completion_tokens += completion or 0
        self.input_tokens += usage.input_tokens or 0
        self.cache_read_tokens += usage.cache_read_tokens or 0
        self.cache_write_tokens += usage.cache_write_tokens or 0
        self.reasoning_tokens += usage.reasoning_tokens or 0
        self._unpriced.append(usage)
        if len(self._unpriced) > MAX_UNPRICED:
            self.price()

    def add_failure(self) -> None:
        """Count a call that failed before any reply: a request, no tokens, no cost."""
        self.failed_calls += 1

    def price(self) -> None:
        """Add the cost of every call not priced yet (loads the price table if needed)."""
        for usage in self._unpriced:
            cost = usage.cost_usd
            if cost is None:
                self.unknown_cost_calls += 1
            else:
                self.cost_usd += cost
        self._unpriced.clear()

    @property
    def cost_partial(self) -> bool:
        """Whether some call's cost is unknown (the cost then covers the others only)."""
        self.price()
        return self.unknown_cost_calls > 0

    def usage(self) -> Usage:
        """The sum of every call's buckets as one `Usage` (a bucket no call reported is None)."""
        known = self.calls - self.unknown_usage_calls
        return Usage(
            self.input_tokens if self.calls else None,
            self.completion_tokens if known or self.completion_tokens else None,
            self.cache_read_tokens if self.calls else None,
            self.cache_write_tokens if self.calls else None,
            self.reasoning_tokens if self.calls else None,
        )

    def as_dict(self, *, with_cost: bool = True) -> dict[str, Any]:
        """The counts as the summary shows them (`cost_usd` None when no call had a known
        cost; `cost_partial` when some had none)."""
        out: dict[str, Any] = {
            "calls": self.calls,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.completion_tokens,
            "cache_read_tokens": self.cache_read_tokens,
            "cache_write_tokens": self.cache_write_tokens,
            "reasoning_tokens": self.reasoning_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "unknown_usage_calls": self.unknown_usage_calls,
        }
        if with_cost:
            self.price()
            priced = self.calls - self.unknown_cost_calls
            out["cost_usd"] = round(self.cost_usd, 10) if priced else None
            out["cost_partial"] = self.unknown_cost_calls > 0
            out["unknown_cost_calls"] = self.unknown_cost_calls
        return out
