"""LLMConnector behaviour through the public API, against the local protocol server."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import (
    InvalidAPIKeyFormatError,
    InvalidInputError,
    MissingAPIKeyError,
    ModelError,
    ModelNotFoundError,
    NotConnectedError,
    ProviderConnectionError,
    ProviderNotFoundError,
)
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.testing import count_tokens, echo_reply

FAST_CONFIG = """\
timeouts: {connect: 2, read: 5}
retries: {max_attempts: 3, backoff_base: 0.01, backoff_max: 1}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "rlm_config.yaml").write_text(FAST_CONFIG)
    return tmp_path


@pytest.fixture
def connector(project: Path):
    with LLMConnector(config_manager=ConfigManager(project_root=project)) as conn:
        yield conn


def closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- resolution -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "model_type"),
    [
        ("claude-sonnet-4-5-20250929", "anthropic"),
        ("anthropic/claude-sonnet-4-5-20250929", None),
        ("claude-sonnet-4-5-20250929", "claude"),
        ("Anthropic/claude-sonnet-4-5-20250929", None),
        ("claude-sonnet-4-5-20250929", " CLAUDE "),
    ],
)
def test_spec_resolution_forms_all_reach_anthropic_without_network(
    connector, fresh_server, monkeypatch, model, model_type
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-resolution")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fresh_server.base_url)
    assert connector.connect_to_model(model, model_type=model_type) is True
    status = connector.get_connection_status()
    assert status["provider"] == "anthropic"
    assert status["model"] == "claude-sonnet-4-5-20250929"
    assert status["model_id"] == "anthropic/claude-sonnet-4-5-20250929"
    assert status["base_url"] == fresh_server.base_url
    assert fresh_server.requests == []  # BYOK connect does no network I/O


def test_openrouter_keeps_nested_model_path(connector, monkeypatch, local_server):
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test-nested")
    connector.connect_to_model(
        "openrouter/openai/gpt-4o-mini", base_url=local_server.openai_base_url
    )
    assert connector.get_connection_status()["model"] == "openai/gpt-4o-mini"


@pytest.mark.parametrize(
    ("model", "model_type", "fragment"),
    [
        ("gpt-4o", "not-a-provider", "unknown provider 'not-a-provider'"),
        ("nope/x", None, "unknown provider 'nope'"),
        ("llama3.2", None, "cannot tell which provider"),
    ],
)
def test_unknown_provider_lists_supported_ids(connector, model, model_type, fragment):
    with pytest.raises(ProviderNotFoundError) as info:
        connector.connect_to_model(model, model_type=model_type)
    message = str(info.value)
    assert fragment in message
    for provider_id in ("ollama", "anthropic", "openrouter", "mistral"):
        assert provider_id in message


@pytest.mark.parametrize("bad", ["", "   ", "gpt 4o", "ollama/llama\x00", "a//b", "/x", 42, None])
def test_bad_model_names_are_typed_errors(connector, bad):
    with pytest.raises(InvalidInputError):
        connector.connect_to_model(bad)  # type: ignore[arg-type]
    assert connector.get_connection_status()["connected"] is False


# -- keys ----------------------------------------------------------------------------------------


def test_key_lookup_order_argument_env_in_order_then_store(connector, monkeypatch, project):
    config = connector.config_manager
    config.key_store.set("gemini", "AIzaTestFromStore")
    connector.connect_to_model("gemini/gemini-2.5-flash")
    assert connector.get_connection_status()["api_key_source"] == "key store"
    monkeypatch.setenv("GOOGLE_API_KEY", "AIzaTestFromGoogleVar")
    connector.connect_to_model("gemini/gemini-2.5-flash")
    assert connector.get_connection_status()["api_key_source"] == "env:GOOGLE_API_KEY"
    monkeypatch.setenv("GEMINI_API_KEY", "AIzaTestFromGeminiVar")
    connector.connect_to_model("gemini/gemini-2.5-flash")
    assert connector.get_connection_status()["api_key_source"] == "env:GEMINI_API_KEY"
    connector.connect_to_model("gemini/gemini-2.5-flash", api_key="AIzaTestFromArgument")
    assert connector.get_connection_status()["api_key_source"] == "argument"


def test_dotenv_key_is_used(connector, project):
    (project / ".env").write_text('export OPENAI_API_KEY="sk-test-from-dotenv"\n')
    connector.connect_to_model("openai/gpt-4o-mini")
    assert connector.get_connection_status()["api_key_source"] == "env:OPENAI_API_KEY"


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ("openai/gpt-4o", "pk-test-wrongprefix123"),
        ("openai/gpt-4o", "sk-ant-test-anthropic-key-for-openai"),
        ("anthropic/claude-sonnet-4-5-20250929", "sk-test-openai-style-key"),
        ("gemini/gemini-2.5-flash", "sk-test-not-google-key"),
        ("openai/gpt-4o", "sk-test-with\nnewline"),
    ],
)
def test_key_format_checked_before_network_without_echoing_key(connector, fresh_server, model, key):
    with pytest.raises(InvalidAPIKeyFormatError) as info:
        connector.connect_to_model(model, api_key=key, base_url=fresh_server.base_url)
    for text in (str(info.value), repr(info.value)):
        assert key not in text
        assert key.split("\n")[0] not in text
    assert fresh_server.requests == []


def test_missing_key_names_the_env_vars(connector):
    with pytest.raises(MissingAPIKeyError) as info:
        connector.connect_to_model("together/meta-llama/Llama-3.3-70B-Instruct-Turbo")
    assert "TOGETHER_API_KEY" in str(info.value)
    assert "TOGETHERAI_API_KEY" in str(info.value)


def test_status_never_holds_the_key(connector, local_server):
    key = "sk-test-status-secret-0042"
    connector.connect_to_model("openai/gpt-4o", api_key=key, base_url=local_server.openai_base_url)
    status = connector.get_connection_status()
    for name in (
        "connected",
        "provider",
        "model",
        "model_id",
        "base_url",
        "has_api_key",
        "connection_type",
        "adapter",
    ):
        assert name in status
    assert status["has_api_key"] is True
    assert key not in repr(status) and key not in repr(connector)


# -- base URL ------------------------------------------------------------------------------------


def test_base_url_order_argument_env_config_default(project, monkeypatch):
    (project / "rlm_config.yaml").write_text(
        FAST_CONFIG + "providers:\n  groq: {base_url: https://config.invalid/v1}\n"
    )
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test-base-url")
    # A project file may point a key-bearing provider elsewhere only when the user opted in.
    monkeypatch.setenv("RLM_CODE_TRUST_PROJECT_URLS", "1")
    connector = LLMConnector(ConfigManager(project_root=project))
    connector.connect_to_model("groq/llama-3.1-8b-instant")
    assert connector.get_connection_status()["base_url"] == "https://config.invalid/v1"
    monkeypatch.setenv("GROQ_BASE_URL", "https://env.invalid/v1")
    connector.connect_to_model("groq/llama-3.1-8b-instant")
    assert connector.get_connection_status()["base_url"] == "https://env.invalid/v1"
    connector.connect_to_model("groq/llama-3.1-8b-instant", base_url="https://arg.invalid/v1/")
    assert connector.get_connection_status()["base_url"] == "https://arg.invalid/v1"
    connector.close()
    plain = LLMConnector(ConfigManager(project_root=project.parent))
    monkeypatch.delenv("GROQ_BASE_URL")
    plain.connect_to_model("groq/llama-3.1-8b-instant")
    assert plain.get_connection_status()["base_url"] == "https://api.groq.com/openai/v1"
    plain.close()


def test_bad_base_url_is_a_typed_error(connector):
    with pytest.raises(InvalidInputError):
        connector.connect_to_model("vllm/x", base_url="ftp://example")


# -- ollama --------------------------------------------------------------------------------------


def test_ollama_untagged_name_resolves_to_tag(connector, local_server, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", local_server.base_url)
    connector.connect_to_model("ollama/llama3.2")
    assert connector.get_connection_status()["model"] == "llama3.2:latest"
    connector.connect_to_model("qwen2.5-coder", model_type="local-ollama")
    assert connector.get_connection_status()["model"] == "qwen2.5-coder:7b"
    assert connector.generate_response("hi there") == echo_reply("hi there")


def test_ollama_unknown_model_lists_models_and_pull_hint(connector, local_server):
    with pytest.raises(ModelNotFoundError) as info:
        connector.connect_to_model("ollama/mistral-nope", base_url=local_server.base_url)
    message = str(info.value)
    assert "llama3.2:latest" in message and "ollama pull mistral-nope" in message


def test_ollama_down_is_connection_error(connector):
    with pytest.raises(ProviderConnectionError):
        connector.connect_to_model("ollama/llama3.2", base_url=closed_port_url())


def test_local_openai_compatible_server_is_checked_at_connect(connector, fresh_server):
    connector.connect_to_model("vllm/test-model", base_url=fresh_server.openai_base_url)
    assert [r.path for r in fresh_server.requests] == ["/v1/models"]
    with pytest.raises(ProviderConnectionError):
        connector.connect_to_model("lmstudio/test-model", base_url=closed_port_url() + "/v1")
    assert connector.get_connection_status()["provider"] == "vllm"  # the old one stays


def test_cloud_hosts_are_not_contacted_at_connect(connector, monkeypatch):
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test-no-network")
    assert connector.connect_to_model("groq/llama-3.1-8b-instant", base_url=closed_port_url())


def test_list_available_ollama_models(connector, local_server, monkeypatch):
    monkeypatch.setenv("OLLAMA_HOST", local_server.base_url)
    models = connector.list_available_ollama_models()
    assert "llama3.2:latest" in models and "qwen2.5-coder:7b" in models
    monkeypatch.setenv("OLLAMA_HOST", closed_port_url())
    assert connector.list_available_ollama_models() == []


# -- connection lifecycle ------------------------------------------------------------------------


def test_connect_replaces_and_closes_previous(connector, local_server):
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    first = connector._connection.adapter
    connector.connect_to_model("sglang/test-model", base_url=local_server.openai_base_url)
    assert first._sync._client.is_closed
    assert connector.get_connection_status()["provider"] == "sglang"
    connector.disconnect()
    assert connector.get_connection_status()["connected"] is False
    with pytest.raises(NotConnectedError):
        connector.generate_response("hello")


def test_generate_without_connection_is_typed(connector):
    with pytest.raises(NotConnectedError):
        connector.generate_response("hello")
    with pytest.raises(NotConnectedError):
        list(connector.stream_response("hello"))


# -- generation and context ----------------------------------------------------------------------


def test_context_keys_reach_the_request(connector, fresh_server):
    connector.connect_to_model("vllm/test-model", base_url=fresh_server.openai_base_url)
    history = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
    ]
    reply = connector.generate_response(
        "second question",
        system_prompt="be brief",
        context={
            "conversation_history": history,
            "current_code": "x = 1",
            "reference": "docs here",
        },
    )
    assert reply == echo_reply("second question")
    body = fresh_server.requests[-1].json
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    system = body["messages"][0]["content"]
    assert "be brief" in system and "x = 1" in system and "docs here" in system


@pytest.mark.parametrize(
    "context",
    [
        {"unknown_key": 1},
        {"conversation_history": [{"role": "robot", "content": "x"}]},
        {"conversation_history": [{"content": "no role"}]},
        {"current_code": 5},
        "not a dict",
    ],
)
def test_bad_context_is_rejected_before_sending(connector, fresh_server, context):
    connector.connect_to_model("vllm/test-model", base_url=fresh_server.openai_base_url)
    fresh_server.clear_requests()  # connecting to a local server checks it is up
    with pytest.raises(InvalidInputError):
        connector.generate_response("hello", context=context)  # type: ignore[arg-type]
    assert fresh_server.requests == []


@pytest.mark.parametrize("prompt", ["", "   \n", None, 12, "x" * 4_000_001])
def test_bad_prompts_are_rejected_and_not_counted(connector, fresh_server, prompt):
    connector.connect_to_model("vllm/test-model", base_url=fresh_server.openai_base_url)
    fresh_server.clear_requests()  # connecting to a local server checks it is up
    before = connector.usage_snapshot()
    with pytest.raises(InvalidInputError):
        connector.generate_response(prompt)  # type: ignore[arg-type]
    assert connector.usage_snapshot() == before
    assert fresh_server.requests == []


def test_usage_spec_sample_numbers_are_exact(connector, local_server):
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    before = connector.usage_snapshot()
    response = connector.generate_response("Explain this code")
    after = connector.usage_snapshot()
    delta = LLMConnector.usage_delta(before, after)
    assert delta == {
        "total_calls": 1,
        "prompt_tokens": count_tokens("Explain this code"),
        "completion_tokens": count_tokens(response),
    }
    summary = connector.get_usage_summary()
    assert set(summary) == {"totals", "by_model", "last_call"}
    assert summary["by_model"]["vllm/test-model"]["calls"] == 1
    assert summary["last_call"]["model"] == "vllm/test-model"


def test_unknown_usage_is_flagged_not_zero(connector, local_server):
    connector.connect_to_model("vllm/fault-no_usage", base_url=local_server.openai_base_url)
    before = connector.usage_snapshot()
    connector.generate_response("count me")
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    assert delta == {
        "total_calls": 1,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "unknown_usage_calls": 1,
    }
    assert connector.get_usage_summary()["last_call"]["usage_known"] is False


def test_breaking_a_stream_records_usage_and_keeps_connection(connector, local_server):
    connector.connect_to_model("ollama/llama3.2", base_url=local_server.base_url)
    prompt = "one two three four five six seven eight"
    stream = connector.stream_response(prompt)
    assert next(stream) == "Echo: "
    stream.close()
    summary = connector.get_usage_summary()
    assert summary["totals"]["total_calls"] == 1
    assert summary["last_call"]["interrupted"] is True
    assert connector.generate_response("still works") == echo_reply("still works")


# -- temporary routes and concurrency ------------------------------------------------------------


def test_temporary_route_leaves_current_connection(connector, local_server):
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    before = connector.get_connection_status()
    reply = connector.generate_response_with_model(
        "side trip", "ollama/llama3.2", base_url=local_server.base_url
    )
    assert reply == echo_reply("side trip")
    assert connector.get_connection_status() == before
    with pytest.raises(ModelError):
        connector.generate_response_with_model("x", "ollama/nope", base_url=local_server.base_url)
    with pytest.raises(ModelError):
        connector.generate_response_with_model("x", "openai/gpt-4o", api_key="bad-key")
    assert connector.get_connection_status() == before
    by_model = connector.get_usage_summary()["by_model"]
    assert by_model["ollama/llama3.2:latest"]["calls"] == 1


def test_threads_and_tasks_share_one_connector_exactly(connector, local_server):
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    prompt = "alpha beta gamma"
    per_call_completion = count_tokens(echo_reply(prompt))
    errors: list[BaseException] = []
    status_before = connector.get_connection_status()

    def worker(i: int) -> None:
        try:
            if i % 4 == 0:
                text = connector.generate_response_with_model(
                    prompt, "sglang/test-model", base_url=local_server.openai_base_url
                )
            elif i % 2:
                text = "".join(connector.stream_response(prompt))
            else:
                text = connector.generate_response(prompt)
            assert text == echo_reply(prompt)
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []

    async def many() -> list[str]:
        async def one(i: int) -> str:
            if i % 2:
                return "".join([c async for c in connector.astream_response(prompt)])
            return await connector.agenerate_response(prompt)

        return await asyncio.gather(*(one(i) for i in range(500)))

    results = asyncio.run(many())
    assert all(r == echo_reply(prompt) for r in results)
    totals = connector.get_usage_summary()["totals"]
    assert totals["total_calls"] == 532
    assert totals["prompt_tokens"] == 532 * count_tokens(prompt)
    assert totals["completion_tokens"] == 532 * per_call_completion
    assert connector.get_connection_status() == status_before


def test_cancelling_an_async_stream_records_usage_and_keeps_connection(connector, local_server):
    connector.connect_to_model("vllm/fault-drip", base_url=local_server.openai_base_url)
    first_chunk = asyncio.Event()

    async def consume() -> None:
        async for _chunk in connector.astream_response("one two three four five six"):
            first_chunk.set()

    async def main() -> None:
        task = asyncio.create_task(consume())
        await asyncio.wait_for(first_chunk.wait(), timeout=5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    summary = connector.get_usage_summary()
    assert summary["totals"]["total_calls"] == 1
    assert summary["last_call"]["interrupted"] is True
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    assert asyncio.run(connector.agenerate_response("after cancel")) == echo_reply("after cancel")
