"""Unit checks of the adapters' pure pieces: usage extraction (unknown is None, never 0), line
splitting across network chunks, Retry-After sources, prompt folding."""

from __future__ import annotations

from types import SimpleNamespace as NS

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlm_code.models.adapters._lines import iter_lines
from rlm_code.models.adapters.anthropic_sdk import on_event, parse_message, prompt_count
from rlm_code.models.adapters.base import as_count
from rlm_code.models.adapters.gemini_sdk import reply_text, retry_delay, usage_counts
from rlm_code.models.adapters.openai_compatible import parse_completion, parse_stream_event
from rlm_code.models.adapters.openai_sdk import parse_chat_completion
from rlm_code.models.adapters.opencode_cli import fold_prompt, parse_event
from rlm_code.models.types import ChatRequest, Message, StreamState

BAD_COUNTS = [None, "12", 1.5, -1, True, [3], {"n": 1}]


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_a_count_that_is_missing_or_not_a_count_is_unknown(value):
    assert as_count(value) is None
    assert as_count(0) == 0 and as_count(7) == 7


@pytest.mark.parametrize("value", BAD_COUNTS)
def test_every_adapter_reports_bad_usage_as_unknown(value):
    choice = NS(message=NS(content="hi"), finish_reason="stop")
    openai_like = NS(choices=[choice], usage=NS(prompt_tokens=value, completion_tokens=value))
    assert parse_chat_completion(openai_like, "openai").usage.known is False

    raw = {
        "choices": [{"message": {"content": "hi"}}],
        "usage": {"prompt_tokens": value, "completion_tokens": value},
    }
    assert parse_completion(raw, "vllm").usage.known is False

    message = NS(
        content=[NS(type="text", text="hi")],
        usage=NS(input_tokens=value, output_tokens=value),
        stop_reason="end_turn",
    )
    assert parse_message(message, "anthropic").usage.known is False

    meta = NS(prompt_token_count=value, candidates_token_count=value, thoughts_token_count=None)
    assert usage_counts(meta) == (None, None)


def test_missing_usage_objects_are_unknown_not_zero():
    choice = NS(message=NS(content="hi"), finish_reason="stop")
    assert parse_chat_completion(NS(choices=[choice], usage=None), "openai").usage.known is False
    assert parse_completion({"choices": [{"message": {"content": "x"}}]}, "v").usage.known is False
    message = NS(content=[], usage=None, stop_reason=None)
    assert parse_message(message, "anthropic").usage.known is False
    assert usage_counts(None) == (None, None)


def test_anthropic_prompt_tokens_include_cache_reads_and_writes():
    usage = NS(input_tokens=10, cache_creation_input_tokens=5, cache_read_input_tokens=100)
    assert prompt_count(usage) == 115
    assert prompt_count(NS(input_tokens=None, cache_read_input_tokens=100)) is None


def test_anthropic_stream_events_fill_the_state_as_they_come():
    state = StreamState()
    start = NS(type="message_start", message=NS(usage=NS(input_tokens=7, output_tokens=1)))
    assert on_event(start, state) is None
    assert (state.prompt_tokens, state.completion_tokens) == (7, None)  # output: provisional
    delta = NS(type="content_block_delta", delta=NS(type="text_delta", text="Hi"))
    assert on_event(delta, state) == "Hi"
    thinking = NS(type="content_block_delta", delta=NS(type="thinking_delta", thinking="hm"))
    assert on_event(thinking, state) is None
    end = NS(type="message_delta", usage=NS(output_tokens=3), delta=NS(stop_reason="end_turn"))
    on_event(end, state)
    assert (state.prompt_tokens, state.completion_tokens, state.finish_reason) == (7, 3, "end_turn")
    assert state.completed is False
    on_event(NS(type="message_stop"), state)
    assert state.completed is True


def test_gemini_thinking_tokens_count_as_completion_and_thoughts_are_not_text():
    meta = NS(prompt_token_count=4, candidates_token_count=3, thoughts_token_count=10)
    assert usage_counts(meta) == (4, 13)
    parts = [NS(text="plan", thought=True), NS(text="Answer", thought=None)]
    response = NS(candidates=[NS(content=NS(parts=parts))])
    assert reply_text(response) == "Answer"
    assert reply_text(NS(candidates=[])) is None


def test_gemini_retry_info_gives_the_wait():
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
    state = StreamState()
    assert parse_stream_event(b": keep-alive", state, "p") is None
    line = b'data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}'
    assert parse_stream_event(line, state, "p") == "Hi"
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}'
    assert parse_stream_event(usage, state, "p") is None
    assert parse_stream_event(b"data: [DONE]", state, "p") is None
    assert (state.prompt_tokens, state.completion_tokens, state.completed) == (3, 1, True)


@given(st.lists(st.binary(max_size=40), max_size=12), st.data())
def test_line_splitting_does_not_depend_on_chunk_borders(pieces, data):
    whole = b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(whole)), max_size=8)))
    chunks, start = [], 0
    for cut in [*cuts, len(whole)]:
        chunks.append(whole[start:cut])
        start = cut
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
    lone = ChatRequest("m", (Message("user", "hi"),))
    assert fold_prompt(lone) == "hi"
    full = ChatRequest("m", (Message("user", "a"), Message("assistant", "b")), system="S")
    assert fold_prompt(full) == "System:\nS\n\nUser:\na\n\nAssistant:\nb"

    state = StreamState()
    assert parse_event(b"banner", state, "opencode") is None
    assert parse_event(b'{"type":"text","part":{"text":"Hi"}}', state, "opencode") == "Hi"
    step = b'{"type":"step_finish","part":{"tokens":{"input":2,"output":1}}}'
    parse_event(step, state, "opencode")
    parse_event(step, state, "opencode")  # several steps add up
    assert (state.prompt_tokens, state.completion_tokens) == (4, 2)


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
