"""Our OpenAI-compatible path (provider `llama-cpp`) against the real llama.cpp server.

What a user relies on: the whole reply and the streamed reply are the same text, sync and
async; the usage we record is exactly what the server said (prompt, completion and cached
prompt tokens, for streams too); a reply cut by `max_tokens` is reported as `"length"`.
The model never emits end-of-text (see `tiny_gguf`), so every reply runs to `max_tokens`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest

from rlm_code import LLMConnector
from rlm_code.models.adapters.openai_compatible import ChatStreamParser, parse_completion
from rlm_code.models.types import StreamEnd, TextDelta, UsageReport, normalize_finish_reason

from . import raw
from .conftest import LlamaServer

pytestmark = pytest.mark.skipif(
    find_spec("xllamacpp") is None, reason="xllamacpp (llama.cpp's server) is not installed"
)

PROMPT = "Why is the sky blue?"
MAX_TOKENS = 8


@pytest.fixture
def connector(llama_server: LlamaServer) -> Iterator[LLMConnector]:
    """A connector on the `llama-cpp` provider, pointed at the session's server."""
    with LLMConnector() as conn:
        conn.connect_to_model("tiny", model_type="llama-cpp", base_url=llama_server.openai_base_url)
        yield conn


def _last_call_counts(conn: LLMConnector) -> dict[str, Any]:
    last = conn.get_usage_summary()["last_call"]
    return {key: last[key] for key in ("prompt_tokens", "completion_tokens", "cache_read_tokens")}


def test_connects_and_reports_the_provider(connector: LLMConnector) -> None:
    status = connector.get_connection_status()
    assert status["connected"] is True
    assert status["provider"] == "llama-cpp"


def test_whole_and_streamed_replies_match_the_server_sync(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    url = llama_server.url
    expected = raw.settled(url, PROMPT, MAX_TOKENS)
    assert len(expected.text) > 0

    text = connector.generate_response(PROMPT, temperature=0, max_tokens=MAX_TOKENS)
    after_whole = raw.chat(url, PROMPT, max_tokens=MAX_TOKENS, stream=False)
    assert text == expected.text == after_whole.text
    assert _last_call_counts(connector) == raw.openai_counts(after_whole.usage)
    whole_last = connector.get_usage_summary()["last_call"]
    assert whole_last["completion_tokens"] == MAX_TOKENS
    assert whole_last["finish_reason"] == "length"
    assert whole_last["streamed"] is False

    pieces = list(connector.stream_response(PROMPT, temperature=0, max_tokens=MAX_TOKENS))
    after_stream = raw.chat(url, PROMPT, max_tokens=MAX_TOKENS, stream=True)
    assert len(pieces) > 1  # really streamed, not one block
    assert "".join(pieces) == text == after_stream.text
    assert _last_call_counts(connector) == raw.openai_counts(after_stream.usage)
    stream_last = connector.get_usage_summary()["last_call"]
    assert stream_last["finish_reason"] == "length"
    assert stream_last["streamed"] is True
    assert stream_last["interrupted"] is False

    totals = connector.get_usage_summary()["totals"]
    server_said = [raw.openai_counts(r.usage) for r in (after_whole, after_stream)]
    assert totals["total_calls"] == 2
    assert totals["prompt_tokens"] == sum(c["prompt_tokens"] for c in server_said)
    assert totals["completion_tokens"] == sum(c["completion_tokens"] for c in server_said)
    assert totals["cache_read_tokens"] == sum(c["cache_read_tokens"] for c in server_said)


def test_whole_and_streamed_replies_match_the_server_async(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    url = llama_server.url
    prompt = "Hello, world: async"
    expected = raw.settled(url, prompt, MAX_TOKENS)

    async def whole() -> str:
        return await connector.agenerate_response(prompt, temperature=0, max_tokens=MAX_TOKENS)

    async def streamed() -> list[str]:
        stream = connector.astream_response(prompt, temperature=0, max_tokens=MAX_TOKENS)
        return [piece async for piece in stream]

    text = asyncio.run(whole())
    after_whole = raw.chat(url, prompt, max_tokens=MAX_TOKENS, stream=False)
    assert text == expected.text == after_whole.text
    assert _last_call_counts(connector) == raw.openai_counts(after_whole.usage)

    pieces = asyncio.run(streamed())
    after_stream = raw.chat(url, prompt, max_tokens=MAX_TOKENS, stream=True)
    assert len(pieces) > 1
    assert "".join(pieces) == text == after_stream.text
    assert _last_call_counts(connector) == raw.openai_counts(after_stream.usage)
    last = connector.get_usage_summary()["last_call"]
    assert (last["streamed"], last["finish_reason"]) == (True, "length")


def test_cached_prompt_tokens_are_read_from_the_cache_bucket(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    """llama.cpp reports its prompt-cache hits as `cached_tokens`: they land in
    `cache_read_tokens` and still count in `prompt_tokens` (every prompt token)."""
    prompt = "the model and the code: a cache test"
    first = raw.settled(llama_server.url, prompt, 4)
    assert first.usage["prompt_tokens_details"]["cached_tokens"] > 0
    connector.generate_response(prompt, temperature=0, max_tokens=4)
    last = connector.get_usage_summary()["last_call"]
    assert 0 < last["cache_read_tokens"] < last["prompt_tokens"]
    assert last["prompt_tokens"] == first.usage["prompt_tokens"]


def test_length_finish_in_the_server_answer_and_our_parsers(llama_server: LlamaServer) -> None:
    """The server's own `finish_reason` for a cut reply, read by our parsers (whole and SSE)."""
    whole = raw.chat(llama_server.url, PROMPT, max_tokens=3, stream=False)
    assert whole.finish_reason == "length"
    parsed = parse_completion(raw.json_body(whole), "llama-cpp")
    assert parsed.text == whole.text
    assert normalize_finish_reason(parsed.finish_reason) == "length"
    assert parsed.usage.output_tokens == 3

    streamed = raw.chat(llama_server.url, PROMPT, max_tokens=3, stream=True)
    assert streamed.finish_reason == "length"
    parser = ChatStreamParser("llama-cpp")
    body = streamed.body
    events = [e for start in range(0, len(body), 7) for e in parser.feed(body[start : start + 7])]
    assert parser.done
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == whole.text
    assert [e for e in events if isinstance(e, StreamEnd)] == [StreamEnd("length", "length")]
    reports = [e.usage for e in events if isinstance(e, UsageReport)]
    assert reports and reports[-1].output_tokens == 3


def test_a_stop_sequence_ends_the_reply_with_stop(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    """`stop` reaches the server, and a reply it ends is `"stop"`, not `"length"`."""
    prompt = "Tell me about the sky"
    free = raw.settled(llama_server.url, prompt, 12).text
    stop_at = next(i for i in range(2, len(free)) if free[i].isalnum())
    text = connector.generate_response(prompt, temperature=0, max_tokens=12, stop=[free[stop_at]])
    assert text == free[: free.index(free[stop_at])]
    last = connector.get_usage_summary()["last_call"]
    assert last["finish_reason"] == "stop"
    assert last["completion_tokens"] < 12


@pytest.mark.skipif(
    not hasattr(LLMConnector, "complete"), reason="LLMConnector.complete has not landed yet"
)
def test_complete_reports_length_when_max_tokens_cuts(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    expected = raw.settled(llama_server.url, PROMPT, 3)
    response = connector.complete(PROMPT, max_tokens=3, temperature=0)
    assert response.finish_reason == "length"
    assert response.text == expected.text
    assert response.usage.output_tokens == 3
    assert response.provider == "llama-cpp"
