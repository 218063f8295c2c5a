"""Token usage accounting, exact under threads and asyncio tasks.

Every finished call is recorded once, under one lock, as `provider/model`. A call whose
provider reported no usage is counted in `calls` and in `unknown_usage_calls`, and adds
nothing to the token totals: unknown is not zero, and the summary says so.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from rlm_code.models.call_record import CallRecord
from rlm_code.models.tally import Tally
from rlm_code.models.types import Usage

SNAPSHOT_KEYS = ("total_calls", "prompt_tokens", "completion_tokens", "unknown_usage_calls")
_DELTA_ALWAYS = ("total_calls", "prompt_tokens", "completion_tokens")


class _LastCall(NamedTuple):
    """The facts of the last recorded call, kept raw; `as_dict` is the spec's `last_call`."""

    at: float
    model: str
    provider: str
    usage: Usage
    finish_reason: str | None
    streamed: bool
    interrupted: bool
    latency_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        usage = self.usage
        prompt, completion = usage.prompt_tokens, usage.output_tokens
        return {
            "timestamp": datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds"),
            "model": self.model,
            "provider": self.provider,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "input_tokens": usage.input_tokens,
            "output_tokens": completion,
            "cache_read_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "total_tokens": usage.total_tokens,
            "cost_usd": usage.cost_usd,
            "cost_source": usage.cost_source,
            "usage_known": prompt is not None and completion is not None,
            "finish_reason": self.finish_reason,
            "streamed": self.streamed,
            "interrupted": self.interrupted,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
        }


class UsageTracker:
    """Accumulates calls, tokens and cost per model and per scope name; safe to share
    between threads.

    `prompt_tokens` is every prompt token (`Usage.prompt_tokens`: input plus cache reads and
    writes), `completion_tokens` (also shown as `output_tokens`) every generated one; the
    buckets of `Usage` (`input_tokens` without the cache, cache reads and writes, reasoning)
    are shown beside them, so `prompt_tokens = input + cache reads + cache writes`. A call that
    lacks either count is an `unknown_usage_calls` call and adds only what it did report: a
    missing count is unknown, never 0. Cost is summed from each call's own `Usage.cost_usd`
    when a summary is asked for (`Tally`), with `cost_partial` when some call's cost is unknown.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = Tally()
        self._by_model: dict[str, Tally] = {}
        self._by_scope: dict[str, Tally] = {}
        self._last_call: _LastCall | None = None

    def record_call(self, record: CallRecord) -> None:
        """Count one call (`record.error_type` set: a failure, no tokens).

        Runs on every call, so it only adds numbers up under the lock and keeps the last
        call's raw facts; `summary()` turns those into dicts when asked."""
        key = f"{record.provider}/{record.model}"
        usage = record.usage
        with self._lock:
            tallies = [self._totals, self._model(key)]
            for name in record.scopes:
                scope = self._by_scope.get(name)
                if scope is None:
                    scope = self._by_scope[name] = Tally()
                tallies.append(scope)
            if record.error_type is not None:
                for tally in tallies:
                    tally.add_failure()
                return
            for tally in tallies:
                tally.add(usage)
            self._last_call = _LastCall(
                record.at, key, record.provider, usage, record.finish_reason, record.streamed,
                record.interrupted, record.latency_ms,
            )  # fmt: skip

    def _model(self, key: str) -> Tally:
        tally = self._by_model.get(key)
        if tally is None:
            tally = self._by_model[key] = Tally()
        return tally

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            t = self._totals
            return {
                "total_calls": t.calls,
                "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens,
                "unknown_usage_calls": t.unknown_usage_calls,
            }

    def summary(self, scope: str | None = None) -> dict[str, Any]:
        """`totals`, `by_model` and `last_call` (the spec's shape); given a scope name, the
        totals of that scope's calls (`by_model` and `last_call` then cover all calls)."""
        with self._lock:
            chosen = self._totals if scope is None else self._by_scope.get(scope) or Tally()
            totals = chosen.as_dict()
            totals["total_calls"] = totals.pop("calls")
            totals["failed_calls"] = chosen.failed_calls
            by_model = {key: tally.as_dict() for key, tally in self._by_model.items()}
            last = self._last_call
        return {"totals": totals, "by_model": by_model, "last_call": last and last.as_dict()}

    def reset(self) -> None:
        with self._lock:
            self._totals = Tally()
            self._by_model.clear()
            self._by_scope.clear()
            self._last_call = None


def usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Counters of `after` minus `before`: calls and tokens, plus unknown-usage calls if any."""
    delta = {key: int(after.get(key, 0)) - int(before.get(key, 0)) for key in _DELTA_ALWAYS}
    unknown = int(after.get("unknown_usage_calls", 0)) - int(before.get("unknown_usage_calls", 0))
    if unknown:
        delta["unknown_usage_calls"] = unknown
    return delta


def monotonic_ms() -> float:
    return time.perf_counter() * 1000.0
