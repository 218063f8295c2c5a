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

from rlm_code.models.types import Usage

SNAPSHOT_KEYS = ("total_calls", "prompt_tokens", "completion_tokens", "unknown_usage_calls")
_DELTA_ALWAYS = ("total_calls", "prompt_tokens", "completion_tokens")


BUCKETS = ("input_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


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
            "usage_known": prompt is not None and completion is not None,
            "finish_reason": self.finish_reason,
            "streamed": self.streamed,
            "interrupted": self.interrupted,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 1),
        }


def _new_entry() -> dict[str, Any]:
    return {
        "calls": 0,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        **dict.fromkeys(BUCKETS, 0),
        "unknown_usage_calls": 0,
    }


class UsageTracker:
    """Accumulates calls and tokens per model; safe to share between threads.

    `prompt_tokens` is every prompt token (`Usage.prompt_tokens`: input plus cache reads and
    writes), `completion_tokens` (also shown as `output_tokens`) every generated one; the
    buckets of `Usage` (`input_tokens` without the cache, cache reads and writes, reasoning)
    are shown beside them, so `prompt_tokens = input + cache reads + cache writes`. A call that
    lacks either count is an `unknown_usage_calls` call and adds only what it did report: a
    missing count is unknown, never 0.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals = dict.fromkeys(SNAPSHOT_KEYS, 0)
        self._buckets = dict.fromkeys(BUCKETS, 0)
        self._failed = 0
        self._by_model: dict[str, dict[str, Any]] = {}
        self._last_call: _LastCall | None = None

    def record(
        self,
        provider_id: str,
        model: str,
        usage: Usage,
        *,
        streamed: bool = False,
        interrupted: bool = False,
        latency_ms: float | None = None,
        finish_reason: str | None = None,
    ) -> None:
        """Count one call that reached the provider and produced (part of) a reply.

        Runs on every call, so it only adds numbers up under the lock and keeps the last
        call's raw facts; `summary()` turns those into the `last_call` dict when asked."""
        prompt = usage.prompt_tokens
        completion = usage.output_tokens
        known = prompt is not None and completion is not None
        key = f"{provider_id}/{model}"
        with self._lock:
            entry = self._by_model.get(key)
            if entry is None:
                entry = self._by_model[key] = _new_entry()
            for counters, calls_key in ((self._totals, "total_calls"), (entry, "calls")):
                counters[calls_key] += 1
                counters["prompt_tokens"] += prompt or 0
                counters["completion_tokens"] += completion or 0
                if not known:
                    counters["unknown_usage_calls"] += 1
            for name, value in (
                ("input_tokens", usage.input_tokens),
                ("cache_read_tokens", usage.cache_read_tokens),
                ("cache_write_tokens", usage.cache_write_tokens),
                ("reasoning_tokens", usage.reasoning_tokens),
            ):
                if value:
                    self._buckets[name] += value
                    entry[name] += value
            self._last_call = _LastCall(
                time.time(), key, provider_id, usage, finish_reason, streamed, interrupted,
                latency_ms,
            )  # fmt: skip

    def record_failure(self) -> None:
        """Count a call that failed before any reply arrived (no tokens are charged)."""
        with self._lock:
            self._failed += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            totals: dict[str, Any] = dict(self._totals)
            totals.update(self._buckets)
            totals["output_tokens"] = totals["completion_tokens"]
            totals["total_tokens"] = totals["prompt_tokens"] + totals["completion_tokens"]
            totals["failed_calls"] = self._failed
            by_model: dict[str, Any] = {}
            for key, entry in self._by_model.items():
                item: dict[str, Any] = dict(entry)
                item["output_tokens"] = entry["completion_tokens"]
                item["total_tokens"] = entry["prompt_tokens"] + entry["completion_tokens"]
                by_model[key] = item
            last = self._last_call
        return {"totals": totals, "by_model": by_model, "last_call": last and last.as_dict()}

    def reset(self) -> None:
        with self._lock:
            self._totals = dict.fromkeys(SNAPSHOT_KEYS, 0)
            self._buckets = dict.fromkeys(BUCKETS, 0)
            self._failed = 0
            self._by_model.clear()
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
