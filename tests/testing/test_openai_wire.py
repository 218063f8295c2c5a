"""The OpenAI wire format, driven with the official `openai` SDK."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import openai
import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

from .conftest import Clients

SYSTEM = {"role": "system", "content": "You are terse."}  # 3 tokens
USER = {"role": "user", "content": "hello local server"}  # 3 tokens


def test_plain_reply_text_and_exact_usage(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[SYSTEM, USER])
    assert reply.object == "chat.completion"
    assert reply.model == "gpt-4o-mini"
    choice = reply.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Echo: hello local server"
    assert choice.finish_reason == "stop"
    assert reply.usage is not None
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens) == (6, 4)
    assert reply.usage.total_tokens == 10


def test_content_parts_and_last_user_message(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    messages = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer here"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "second "}, {"type": "text", "text": "one"}],
        },
    ]
    reply = client.chat.completions.create(model="any-model-name", messages=messages)
    assert reply.choices[0].message.content == "Echo: second one"
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 2 + 3 + 2


def test_stream_chunks_join_to_the_reply_with_usage_last(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[SYSTEM, USER],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert all(chunk.object == "chat.completion.chunk" for chunk in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    contents = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert contents == ["Echo: ", "hello ", "local ", "server"]
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (6, 4)
    assert all(chunk.usage is None for chunk in chunks[:-1])


def test_stream_without_include_usage_has_no_usage(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    chunks = list(client.chat.completions.create(model="m", messages=[USER], stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("param", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_truncates_and_reports_length(
    local_server: LocalProtocolServer, clients: Clients, param: str
) -> None:
    client = clients.openai(local_server)
    reply = client.chat.completions.create(model="m", messages=[USER], **{param: 2})
    assert reply.choices[0].message.content == "Echo: hello"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage.completion_tokens == 2
    stream = client.chat.completions.create(model="m", messages=[USER], stream=True, **{param: 3})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: hello local"
    assert chunks[-1].choices[0].finish_reason == "length"


def test_models_list(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.openai(local_server)
    ids = [model.id for model in client.models.list()]
    assert ids[:6] == [
        "test-model",
        "llama3.2:latest",
        "qwen2.5-coder:7b",
        "gpt-4o-mini",
        "claude-sonnet-4-5-20250929",
        "gemini-2.5-flash",
    ]
    assert client.models.retrieve("gpt-4o-mini").owned_by == "openai"


def test_set_reply_and_stream_chunk_padding(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(fresh_server)
    fresh_server.set_reply("scripted", "fixed text here")
    reply = client.chat.completions.create(model="scripted", messages=[USER])
    assert reply.choices[0].message.content == "fixed text here"
    assert reply.usage is not None and reply.usage.completion_tokens == 3
    stream = client.chat.completions.create(
        model="scripted",
        messages=[USER],
        stream=True,
        extra_headers={"X-Stream-Chunks": "10"},
    )
    contents = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert len(contents) == 10
    assert "".join(contents) == "fixed text here" + " word" * 7
    fresh_server.set_reply("scripted", None)
    again = client.chat.completions.create(model="scripted", messages=[USER])
    assert again.choices[0].message.content == "Echo: hello local server"


def test_require_key_exact_and_any(clients: Clients) -> None:
    with run_local_server(require_key="sk-test-right") as server:
        request = urllib.request.Request(
            server.openai_base_url + "/chat/completions",
            data=json.dumps({"model": "m", "messages": [USER]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(request, timeout=5)
        assert missing.value.code == 401
        error = json.load(missing.value)["error"]
        assert error["type"] == "invalid_request_error"
        assert "didn't provide an API key" in error["message"]
        wrong = clients.openai(server, api_key="sk-test-wrong")
        right = clients.openai(server, api_key="sk-test-right")
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.chat.completions.create(model="m", messages=[USER])
        assert caught.value.code == "invalid_api_key"
        assert "sk-test-wrong" not in caught.value.response.text
        assert right.chat.completions.create(model="m", messages=[USER]).choices
    with run_local_server(require_key=True) as server:
        anyone = clients.openai(server, api_key="sk-test-x")
        assert anyone.chat.completions.create(model="m", messages=[USER]).choices


def test_strict_models_gives_model_not_found(clients: Clients) -> None:
    with run_local_server(strict_models=True, models=["extra-model"]) as server:
        client = clients.openai(server)
        assert client.chat.completions.create(model="extra-model", messages=[USER]).choices
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model="unknown-model", messages=[USER])
        assert caught.value.code == "model_not_found"


def test_missing_messages_is_a_400_naming_the_param(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="m", messages=[])
    assert caught.value.param == "messages"
