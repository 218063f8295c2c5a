"""Unit checks of the adapters' pure pieces: usage extraction (unknown is None, never 0), line
splitting across network chunks, Retry-After sources, prompt folding.

The SDK adapters' modules are imported inside their tests, so the raw-HTTP checks here run
whatever state those modules are in."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlm_code.models.adapters._lines import SSEEvent, iter_lines
from rlm_code.models.adapters.base import as_count
from rlm_code.models.adapters.openai_compatible import ChatStreamParser, parse_completion
from rlm_code.models.types import (
    ChatRequest,
    Message,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    Usage,
    UsageReport,
)

from .conftest import cut_at

BAD_COUNTS = [None, "12", 1.5, -1, True, [3], {"n": 1}]


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_count_that_is_missing_or_not_a_count_is_unknown(value):
    assert as_count(value) is None
    assert as_count(0) == 0 and as_count(7) == 7


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_every_adapter_reports_bad_usage_as_unknown(value):
    from rlm_code.models.adapters import anthropic_sdk, openai_sdk
    from rlm_code.models.adapters.gemini_sdk import usage_counts

    raw = {
        "choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": value, "completion_tokens": value},
    }
    assert parse_completion(raw, "vllm").usage.known is False
    assert openai_sdk.parse_completion(raw, "openai")[1].known is False

    message = {
        "content": [{"type": "text", "text": "hi"}],
        "usage": {"input_tokens": value, "output_tokens": value},
        "stop_reason": "end_turn",
    }
    assert anthropic_sdk.parse_message(message, "anthropic")[1].known is False

    meta = NS(prompt_token_count=value, candidates_token_count=value, thoughts_token_count=None)
    assert usage_counts(meta) == (None, None)


def test_missing_usage_objects_are_unknown_not_zero():
    from rlm_code.models.adapters import anthropic_sdk, openai_sdk
    from rlm_code.models.adapters.gemini_sdk import usage_counts

    whole = {"choices": [{"message": {"content": "x"}}]}
    assert parse_completion(whole, "v").usage.known is False
    assert openai_sdk.parse_completion({**whole, "usage": None}, "openai")[1].known is False
    message = {"content": [], "usage": None, "stop_reason": None}
    assert anthropic_sdk.parse_message(message, "anthropic")[1].known is False
    assert usage_counts(None) == (None, None)


def test_anthropic_cache_reads_and_writes_are_their_own_buckets():
    from rlm_code.models.adapters.anthropic_sdk import anthropic_usage

    usage = {"input_tokens": 10, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}
    assert anthropic_usage(usage) == Usage(10, None, 100, 5)
    assert anthropic_usage({"cache_read_input_tokens": 100}).prompt_tokens is None


def test_anthropic_stream_events_report_as_they_come():
    from rlm_code.models.adapters.anthropic_sdk import _StreamParser

    def sse(data: str) -> SSEEvent:
        return SSEEvent(data.encode())

    parser = _StreamParser("anthropic")
    start = sse('{"type":"message_start","message":{"usage":{"input_tokens":7,"output_tokens":1}}}')
    assert parser.event(start) == [UsageReport(Usage(7, None, None, None))]  # output: provisional
    delta = sse('{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}')
    assert parser.event(delta) == [TextDelta("Hi")]
    thinking = sse(
        '{"type":"content_block_delta","delta":{"type":"thinking_delta","thinking":"h"}}'
    )
    assert parser.event(thinking) == [ReasoningDelta("h")]  # reasoning, never text
    end = sse(
        '{"type":"message_delta","usage":{"output_tokens":3},"delta":{"stop_reason":"end_turn"}}'
    )
    assert parser.event(end) == [UsageReport(Usage(None, 3))]
    assert parser.done is False
    assert parser.event(sse('{"type":"message_stop"}')) == [StreamEnd("stop", "end_turn")]
    assert parser.done is True


def test_gemini_thinking_tokens_count_as_completion_and_thoughts_are_not_text():
    from rlm_code.models.adapters.gemini_sdk import reply_text, usage_counts

    meta = NS(prompt_token_count=4, candidates_token_count=3, thoughts_token_count=10)
    assert usage_counts(meta) == (4, 13)
    parts = [NS(text="plan", thought=True), NS(text="Answer", thought=None)]
    response = NS(candidates=[NS(content=NS(parts=parts))])
    assert reply_text(response) == "Answer"
    assert reply_text(NS(candidates=[])) is None


def test_gemini_retry_info_gives_the_wait():
    from rlm_code.models.adapters.gemini_sdk import retry_delay

    details = {
        "error": {
            "code": 429,
            "details": [
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure"},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"},
            ],
        }
    }
    assert retry_delay(details) == 1.5
    assert retry_delay({"error": {"code": 429}}) is None
    assert retry_delay("not json") is None


def test_openai_stream_events():
    parser = ChatStreamParser("p")
    assert parser.feed(b": keep-alive\n\n") == []
    line = b'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}\n\n'
    assert parser.feed(line) == [TextDelta("Hi")]
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
    assert parser.feed(usage) == [UsageReport(Usage(3, 1))]
    assert parser.feed(b"data: [DONE]\n\n") == [StreamEnd(None, None)]


@given(st.lists(st.binary(max_size=40), max_size=12), st.data())
def test_line_splitting_does_not_depend_on_chunk_borders(pieces, data):
    whole = b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=8)))
    chunks = cut_at(whole, cuts)
    *terminated, tail = whole.split(b"\n")
    expected = [ln[:-1] if ln.endswith(b"\r") else ln for ln in terminated]
    if tail:  # an unterminated last fragment is passed on as it came
        expected.append(tail)
    assert list(iter_lines(chunks)) == expected


def test_utf8_split_between_chunks_is_reassembled():
    data = 'data: {"t": "héllo → 日本"}\n'.encode()
    chunks = [data[i : i + 1] for i in range(len(data))]
    assert [ln.decode() for ln in iter_lines(chunks)] == ['data: {"t": "héllo → 日本"}']


def test_opencode_prompt_folding_and_events():
    from rlm_code.models.adapters.opencode_cli import StepTally, fold_prompt, parse_event

    lone = ChatRequest("m", (Message("user", "hi"),))
    assert fold_prompt(lone) == "hi"
    full = ChatRequest("m", (Message("user", "a"), Message("assistant", "b")), system="S")
    assert fold_prompt(full) == "System:\nS\n\nUser:\na\n\nAssistant:\nb"

    tally = StepTally()
    assert parse_event(b"banner", tally, "opencode") == []
    text = parse_event(b'{"type":"text","part":{"text":"Hi"}}', tally, "opencode")
    assert text == [TextDelta("Hi")]
    step = b'{"type":"step_finish","part":{"tokens":{"input":2,"output":1}}}'
    parse_event(step, tally, "opencode")
    reports = parse_event(step, tally, "opencode")  # several steps add up
    usage = [e.usage for e in reports if isinstance(e, UsageReport)][-1]
    assert (usage.input_tokens, usage.output_tokens) == (4, 2)


def test_the_async_transport_resolves_the_environment_proxy_once(monkeypatch):
    from rlm_code.models.adapters._transport import env_proxy

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    assert env_proxy("https://api.example.com/v1") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert env_proxy("https://api.example.com/v1") == "http://proxy.internal:3128"
    assert env_proxy("http://api.example.com/v1") is None  # no HTTP_PROXY
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert env_proxy("https://api.example.com/v1") is None
