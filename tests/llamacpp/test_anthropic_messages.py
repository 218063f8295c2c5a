"""Our Anthropic adapter (provider `anthropic`, through the official SDK) against llama.cpp's
own Anthropic-compatible `/v1/messages` endpoint.

A loopback `http://` base URL is allowed by the trust rules, so the adapter talks to the
server with a fake key. The server reports prompt-cache hits as `cache_read_input_tokens`
beside `input_tokens`, exactly Anthropic's buckets: our `last_call` must show the same
numbers, for a whole and a streamed reply, sync and async.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import pytest

from rlm_code import LLMConnector

from . import raw
from .conftest import LlamaServer

pytestmark = [
    pytest.mark.skipif(
        find_spec("xllamacpp") is None, reason="xllamacpp (llama.cpp's server) is not installed"
    ),
    pytest.mark.skipif(find_spec("anthropic") is None, reason="the anthropic SDK is not installed"),
]

FAKE_KEY = "sk-ant-test-1"
PROMPT = "Hello from the Anthropic side"
MAX_TOKENS = 6


@pytest.fixture
def connector(llama_server: LlamaServer) -> Iterator[LLMConnector]:
    with LLMConnector() as conn:
        conn.connect_to_model(
            "tiny", model_type="anthropic", api_key=FAKE_KEY, base_url=llama_server.url
        )
        yield conn


def _last_call(conn: LLMConnector) -> dict[str, Any]:
    last: dict[str, Any] = conn.get_usage_summary()["last_call"]
    return last


def _counts(last: dict[str, Any]) -> dict[str, Any]:
    return {key: last[key] for key in ("prompt_tokens", "completion_tokens", "cache_read_tokens")}


def test_whole_and_streamed_replies_with_usage(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    url = llama_server.url
    assert connector.get_connection_status()["adapter"] == "anthropic"
    raw.messages(url, PROMPT, max_tokens=MAX_TOKENS, stream=False)  # settle the prompt cache
    expected = raw.messages(url, PROMPT, max_tokens=MAX_TOKENS, stream=False)
    assert expected.text and expected.finish_reason == "max_tokens"

    text = connector.generate_response(PROMPT, temperature=0, max_tokens=MAX_TOKENS)
    after_whole = raw.messages(url, PROMPT, max_tokens=MAX_TOKENS, stream=False)
    assert text == expected.text == after_whole.text
    last = _last_call(connector)
    assert _counts(last) == raw.anthropic_counts(after_whole.usage)
    assert last["cache_read_tokens"] > 0  # the settled prompt was read from the cache
    assert (last["completion_tokens"], last["finish_reason"]) == (MAX_TOKENS, "length")

    pieces = list(connector.stream_response(PROMPT, temperature=0, max_tokens=MAX_TOKENS))
    after_stream = raw.messages(url, PROMPT, max_tokens=MAX_TOKENS, stream=True)
    assert len(pieces) > 1
    assert "".join(pieces) == text == after_stream.text
    last = _last_call(connector)
    assert _counts(last) == raw.anthropic_counts(after_stream.usage)
    assert (last["streamed"], last["interrupted"], last["finish_reason"]) == (True, False, "length")


def test_async_whole_and_streamed_replies_with_usage(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    url = llama_server.url
    prompt = "Async hello from the Anthropic side"
    raw.messages(url, prompt, max_tokens=MAX_TOKENS, stream=False)
    expected = raw.messages(url, prompt, max_tokens=MAX_TOKENS, stream=False)

    async def both() -> tuple[str, dict[str, Any], list[str]]:
        text = await connector.agenerate_response(prompt, temperature=0, max_tokens=MAX_TOKENS)
        whole_last = _last_call(connector)
        stream = connector.astream_response(prompt, temperature=0, max_tokens=MAX_TOKENS)
        return text, whole_last, [piece async for piece in stream]

    text, whole_last, pieces = asyncio.run(both())
    assert text == expected.text == "".join(pieces)
    assert _counts(whole_last) == raw.anthropic_counts(expected.usage)
    assert _counts(_last_call(connector)) == raw.anthropic_counts(expected.usage)
    assert _last_call(connector)["streamed"] is True
