"""The Ollama native API, driven with the official `ollama` SDK."""

from __future__ import annotations

import json
import urllib.request

import ollama
import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

from .conftest import Clients

SYSTEM = {"role": "system", "content": "You are a tester."}  # 4 tokens
USER = {"role": "user", "content": "hello ollama there"}  # 3 tokens


def test_chat_reply_and_counts(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.ollama(local_server)
    response = client.chat(model="llama3.2", messages=[SYSTEM, USER])
    assert response.model == "llama3.2"
    assert response.message.role == "assistant"
    assert response.message.content == "Echo: hello ollama there"
    assert response.done is True
    assert response.done_reason == "stop"
    assert (response.prompt_eval_count, response.eval_count) == (7, 4)
    assert response.total_duration and response.eval_duration


def test_chat_stream_is_the_default_and_ends_with_done(local_server: LocalProtocolServer) -> None:
    body = json.dumps({"model": "llama3.2:latest", "messages": [USER]}).encode()
    request = urllib.request.Request(f"{local_server.base_url}/api/chat", data=body)
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.headers.get_content_type() == "application/x-ndjson"
        lines = [json.loads(line) for line in response.read().splitlines()]
    assert [line["message"]["content"] for line in lines] == [
        "Echo: ",
        "hello ",
        "ollama ",
        "there",
        "",
    ]
    assert [line["done"] for line in lines] == [False, False, False, False, True]
    assert lines[-1]["eval_count"] == 4 and lines[-1]["prompt_eval_count"] == 3


def test_sdk_stream_and_num_predict(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.ollama(local_server)
    parts = list(client.chat(model="qwen2.5-coder:7b", messages=[USER], stream=True))
    assert "".join(part.message.content for part in parts) == "Echo: hello ollama there"
    assert parts[-1].done and parts[-1].eval_count == 4
    short = client.chat(model="qwen2.5-coder:7b", messages=[USER], options={"num_predict": 2})
    assert short.message.content == "Echo: hello"
    assert short.done_reason == "length"
    assert short.eval_count == 2


def test_generate_counts_system_and_prompt(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.ollama(local_server)
    response = client.generate(model="test-model", prompt="write a poem", system="be short")
    assert response.response == "Echo: write a poem"
    assert (response.prompt_eval_count, response.eval_count) == (2 + 3, 4)
    streamed = list(client.generate(model="test-model", prompt="write a poem", stream=True))
    assert "".join(part.response for part in streamed) == "Echo: write a poem"
    assert streamed[-1].done_reason == "stop"


def test_tags_version_show_and_root(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.ollama(local_server)
    listed = client.list().models
    names = [model.model for model in listed]
    assert names[:3] == ["test-model:latest", "llama3.2:latest", "qwen2.5-coder:7b"]
    first = listed[0]
    assert first.digest and first.size and first.details and first.details.format == "gguf"
    with urllib.request.urlopen(f"{local_server.base_url}/api/tags", timeout=5) as response:
        raw = json.load(response)["models"][0]
    assert set(raw) >= {"name", "model", "modified_at", "size", "digest", "details"}
    with urllib.request.urlopen(f"{local_server.base_url}/api/version", timeout=5) as response:
        assert json.load(response)["version"]
    with urllib.request.urlopen(local_server.base_url + "/", timeout=5) as response:
        assert response.read() == b"Ollama is running"
    head = urllib.request.Request(local_server.base_url + "/", method="HEAD")
    with urllib.request.urlopen(head, timeout=5) as response:
        assert response.status == 200
    shown = client.show("llama3.2")
    assert shown.modelinfo and shown.modelinfo["llama.context_length"] == 131072


def test_unknown_model_is_ollamas_404(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.ollama(local_server)
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="mistral", messages=[USER])
    assert caught.value.status_code == 404
    assert caught.value.error == 'model "mistral" not found, try pulling it first'
    with pytest.raises(ollama.ResponseError) as streamed:
        list(client.chat(model="mistral", messages=[USER], stream=True))
    assert streamed.value.status_code == 404


def test_added_models_exist_on_ollama() -> None:
    with run_local_server(models=["phi4"]) as server:
        client = Clients()
        try:
            reply = client.ollama(server).chat(model="phi4:latest", messages=[USER])
            assert reply.message.content == "Echo: hello ollama there"
        finally:
            client.close()


def test_require_key_uses_bearer() -> None:
    with run_local_server(require_key="ollama-test-key") as server:
        made = Clients()
        try:
            anonymous = made.ollama(server)
            with pytest.raises(ollama.ResponseError) as caught:
                anonymous.chat(model="llama3.2", messages=[USER])
            assert caught.value.status_code == 401
            assert caught.value.error == "unauthorized"
            keyed = made.ollama(server, headers={"Authorization": "Bearer ollama-test-key"})
            assert keyed.chat(model="llama3.2", messages=[USER]).message.content
        finally:
            made.close()
