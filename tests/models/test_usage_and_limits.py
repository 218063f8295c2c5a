"""Usage records what each reply says (a missing count is unknown, never 0), and the limits on
a request apply to the whole request, before any I/O."""

from __future__ import annotations

import math

import pytest

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.call_record import CallRecord
from rlm_code.models.prompting import MAX_PROMPT_CHARS, build_request, make_params
from rlm_code.models.types import Usage
from rlm_code.models.usage import UsageTracker, usage_delta


def test_a_call_with_only_completion_tokens_is_flagged_unknown() -> None:
    # Ollama with a cached prompt reports `eval_count` but no `prompt_eval_count`.
    tracker = UsageTracker()
    before = tracker.snapshot()
    tracker.record_call(
        CallRecord(0.0, "ollama", "llama3.2", Usage(input_tokens=None, output_tokens=7))
    )
    summary = tracker.summary()
    assert summary["totals"]["unknown_usage_calls"] == 1
    assert summary["totals"]["completion_tokens"] == 7
    assert summary["totals"]["prompt_tokens"] == 0
    assert summary["last_call"]["prompt_tokens"] is None
    assert summary["last_call"]["usage_known"] is False
    assert summary["by_model"]["ollama/llama3.2"]["unknown_usage_calls"] == 1
    assert usage_delta(before, tracker.snapshot())["unknown_usage_calls"] == 1


def test_a_call_with_both_counts_is_known_and_cache_counts_as_prompt() -> None:
    tracker = UsageTracker()
    usage = Usage(input_tokens=10, output_tokens=4, cache_read_tokens=90, reasoning_tokens=2)
    tracker.record_call(CallRecord(0.0, "openai", "gpt-4o", usage, finish_reason="length"))
    summary = tracker.summary()
    totals = summary["totals"]
    assert totals["unknown_usage_calls"] == 0
    assert totals["prompt_tokens"] == 100  # input + cache reads: every prompt token
    assert totals["cache_read_tokens"] == 90
    assert totals["reasoning_tokens"] == 2
    assert totals["total_tokens"] == 104
    assert summary["last_call"]["finish_reason"] == "length"


def test_usage_merge_keeps_what_earlier_reports_said() -> None:
    first = Usage(input_tokens=12)
    later = Usage(output_tokens=3)
    merged = first.merged(later)
    assert (merged.input_tokens, merged.output_tokens) == (12, 3)
    assert Usage().total_tokens is None and not Usage().known


@pytest.mark.parametrize(
    ("system", "context"),
    [
        ("x" * MAX_PROMPT_CHARS, None),
        (None, {"current_code": "y" * MAX_PROMPT_CHARS}),
        (None, {"conversation_history": [{"role": "user", "content": "z" * MAX_PROMPT_CHARS}]}),
        (None, {"reference": ["r" * (MAX_PROMPT_CHARS // 2)] * 3}),
    ],
)
def test_the_size_limit_covers_the_whole_request(system, context) -> None:
    with pytest.raises(InvalidInputError, match="more than any model accepts"):
        build_request("m", "short prompt", system, context)


def test_a_request_under_the_limit_passes() -> None:
    request = build_request("m", "p", "s" * 1000, {"current_code": "c" * 1000})
    assert request.messages[-1].content == "p"


@pytest.mark.parametrize("timeout", [math.inf, math.nan, -1, 0, 10**9, True, "5"])
def test_unusable_timeouts_are_typed_errors(timeout: object) -> None:
    with pytest.raises(InvalidInputError, match="timeout must be"):
        make_params(timeout=timeout)


def test_a_normal_timeout_is_kept() -> None:
    assert make_params(timeout=2).timeout == 2.0
