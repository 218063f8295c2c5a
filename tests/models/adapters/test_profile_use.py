"""The adapters use the model's profile: Ollama's `num_ctx` (a long prompt answered whole, one
that cannot fit refused before the request), `stream_options` only where accepted (Mistral),
and the parameter policy (temperature on reasoning models, the output cap's name)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ContextLengthExceededError, UnsupportedParameterError
from rlm_code.models.adapters._ollama_wire import context_size
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.profiles import estimate_tokens
from rlm_code.models.types import ChatRequest, Message
from rlm_code.testing import LocalProtocolServer, run_local_server

MODELS = ["tiny-ctx2048:latest", "mistral-small-latest"]


@pytest.fixture
def server() -> Iterator[LocalProtocolServer]:
    with run_local_server(models=MODELS) as running:
        yield running


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[LLMConnector]:
    with LLMConnector(config_manager=ConfigManager(project_root=tmp_path)) as conn:
        yield conn


def bodies(server: LocalProtocolServer, path: str) -> list[Any]:
    return [r.json for r in server.requests if r.path == path]


# -- Ollama: num_ctx ----------------------------------------------------------------------------


def test_a_6000_token_prompt_is_answered_whole_because_num_ctx_is_sent(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("ollama/llama3.2", base_url=server.base_url)
    prompt = " ".join(f"w{i}" for i in range(6000))  # 6,000 tokens to the server
    reply = connector.complete(prompt)
    assert reply.text == "Echo: " + prompt  # nothing was cut
    assert reply.usage.input_tokens == 6000
    (body,) = bodies(server, "/api/chat")
    num_ctx = body["options"]["num_ctx"]
    assert num_ctx >= 6000 + 1024 and num_ctx & (num_ctx - 1) == 0  # a power of two
    assert bodies(server, "/api/show") == [{"model": "llama3.2:latest"}]  # probed once


def test_the_same_prompt_streamed_is_answered_whole(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("ollama/llama3.2", base_url=server.base_url)
    prompt = " ".join(f"s{i}" for i in range(6000))
    stream = connector.stream(prompt)
    text = "".join(stream.text())
    assert text == "Echo: " + prompt
    assert stream.response.usage.input_tokens == 6000


def test_async_calls_probe_on_the_async_client_and_answer_whole(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    import asyncio

    connector.connect_to_model("ollama/llama3.2", base_url=server.base_url)
    prompt = " ".join(f"a{i}" for i in range(6000))

    async def run() -> tuple[str, str, int | None]:
        whole = await connector.acomplete(prompt)
        stream = connector.astream(prompt + " more")
        text = "".join([piece async for piece in stream.text()])
        return whole.text, text, stream.response.usage.input_tokens

    whole, streamed, tokens = asyncio.run(run())
    assert whole == "Echo: " + prompt
    assert streamed == "Echo: " + prompt + " more" and tokens == 6001
    (show,) = [r for r in server.requests if r.path == "/api/show"]
    assert "aiohttp" in show.headers.get("user-agent", "").lower()  # not the blocking client
    assert all(b["options"]["num_ctx"] >= 7024 for b in bodies(server, "/api/chat"))


def test_an_async_stream_probes_first_when_it_is_the_first_call(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    import asyncio

    connector.connect_to_model("ollama/tiny-ctx2048", base_url=server.base_url)

    async def run() -> None:
        stream = connector.astream("word " * 20000)
        with pytest.raises(ContextLengthExceededError):
            async for _ in stream.text():
                pass

    asyncio.run(run())
    assert len(bodies(server, "/api/show")) == 1 and bodies(server, "/api/chat") == []


def test_a_prompt_that_cannot_fit_is_refused_before_the_request(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("ollama/tiny-ctx2048", base_url=server.base_url)
    with pytest.raises(ContextLengthExceededError) as caught:
        connector.complete("word " * 20000)
    assert caught.value.limit == 2048
    assert caught.value.requested is not None and caught.value.requested > 2048
    assert bodies(server, "/api/chat") == []  # refused before any request


def test_a_short_prompt_sends_no_num_ctx_and_no_probe(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("ollama/llama3.2", base_url=server.base_url)
    assert connector.complete("hello there").text == "Echo: hello there"
    (body,) = bodies(server, "/api/chat")
    assert "num_ctx" not in body.get("options", {})
    assert bodies(server, "/api/show") == []


def test_num_ctx_stays_within_the_model_context(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("ollama/tiny-ctx2048", base_url=server.base_url)
    prompt = "x " * 5000  # fits 2048 by the low estimate, not by the high one
    assert connector.complete(prompt).text.startswith("Echo: x x")
    (body,) = bodies(server, "/api/chat")
    assert body["options"]["num_ctx"] == 2048


def test_context_size_rounds_up_and_caps() -> None:
    assert context_size(100, None, None) is None  # fits Ollama's default: leave it
    assert context_size(5000, None, None) == 8192
    assert context_size(5000, 4000, None) == 16384
    assert context_size(5000, None, 6000) == 6000
    request = ChatRequest(model="m", messages=(Message("user", "abcdef" * 100),), system="sys")
    low, high = estimate_tokens(request)
    assert low == 100 and high >= 200 and low < high


# -- stream_options only where accepted ---------------------------------------------------------


def test_mistral_streams_work_and_record_usage(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model(
        "mistral/mistral-small-latest", api_key="sk-test-mistral", base_url=server.openai_base_url
    )
    stream = connector.stream("how are you", max_tokens=50)
    assert "".join(stream.text()) == "Echo: how are you"
    usage = stream.response.usage
    assert (usage.input_tokens, usage.output_tokens) == (3, 4)
    (body,) = bodies(server, "/v1/chat/completions")
    assert "stream_options" not in body and body["max_tokens"] == 50
    summary = connector.get_usage_summary()
    assert summary["totals"]["total_calls"] == 1
    assert summary["totals"]["total_tokens"] == 7


def test_other_hosts_still_ask_for_stream_usage(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("vllm/some-model", base_url=server.openai_base_url)
    stream = connector.stream("hi")
    assert "".join(stream.text()) == "Echo: hi"
    assert stream.response.usage.input_tokens == 1
    (body,) = bodies(server, "/v1/chat/completions")
    assert body["stream_options"] == {"include_usage": True}


# -- the parameter policy -----------------------------------------------------------------------


def test_temperature_on_a_reasoning_model_is_refused_before_the_request(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model("openai/gpt-5", api_key="sk-test-1", base_url=server.openai_base_url)
    with pytest.raises(UnsupportedParameterError, match="temperature"):
        connector.complete("hi", temperature=0.2)
    with pytest.raises(UnsupportedParameterError):
        list(connector.stream("hi", temperature=0.2).text())
    assert bodies(server, "/v1/chat/completions") == []
    # Without it the call goes through, the output cap under OpenAI's current name.
    assert connector.complete("hi", max_tokens=9).text == "Echo: hi"
    (body,) = bodies(server, "/v1/chat/completions")
    assert body["max_completion_tokens"] == 9 and "max_tokens" not in body


def test_temperature_on_other_models_is_sent(
    server: LocalProtocolServer, connector: LLMConnector
) -> None:
    connector.connect_to_model(
        "openai/gpt-4o", api_key="sk-test-1", base_url=server.openai_base_url
    )
    connector.complete("hi", temperature=0.2, max_tokens=9)
    connector.connect_to_model("vllm/some-model", base_url=server.openai_base_url)
    connector.complete("hi", temperature=0.3, max_tokens=9)
    sdk, raw = bodies(server, "/v1/chat/completions")
    assert (sdk["temperature"], sdk["max_completion_tokens"]) == (0.2, 9)
    assert (raw["temperature"], raw["max_tokens"]) == (0.3, 9)
    assert "max_completion_tokens" not in raw


def test_a_config_override_drives_the_policy(
    server: LocalProtocolServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the project file, however the connection finds its config
    (tmp_path / "rlm_config.yaml").write_text(
        'model_profiles: {"vllm/some-model": {accepts_temperature: false, stream_usage: always}}\n'
    )
    with LLMConnector(config_manager=ConfigManager(project_root=tmp_path)) as connector:
        connector.connect_to_model("vllm/some-model", base_url=server.openai_base_url)
        with pytest.raises(UnsupportedParameterError):
            connector.complete("hi", temperature=0.5)
        list(connector.stream("hi").text())
    (body,) = bodies(server, "/v1/chat/completions")
    assert "stream_options" not in body
