"""The Gemini API wire format, driven with the official `google-genai` SDK."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from google.genai import errors, types

from rlm_code.testing import LocalProtocolServer, run_local_server

from .conftest import Clients

MODEL = "gemini-2.5-flash"


def test_generate_with_system_instruction_and_exact_usage(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.gemini(local_server)
    response = client.models.generate_content(
        model=MODEL,
        contents="hello from gemini",
        config=types.GenerateContentConfig(system_instruction="Answer in one line."),
    )
    assert response.text == "Echo: hello from gemini"
    candidate = response.candidates[0]
    assert candidate.finish_reason == types.FinishReason.STOP
    assert candidate.content.role == "model"
    usage = response.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count) == (4 + 3, 4)
    assert usage.total_token_count == 11


def test_stream_events_and_cumulative_usage(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.gemini(local_server)
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="stream this now"))
    assert [chunk.text for chunk in chunks] == ["Echo: ", "stream ", "this ", "now"]
    assert [chunk.usage_metadata.candidates_token_count for chunk in chunks] == [1, 2, 3, 4]
    assert chunks[-1].usage_metadata.prompt_token_count == 3
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(chunk.candidates[0].finish_reason is None for chunk in chunks[:-1])


def test_max_output_tokens_truncates(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.gemini(local_server)
    response = client.models.generate_content(
        model=MODEL,
        contents="one two three four",
        config=types.GenerateContentConfig(max_output_tokens=3),
    )
    assert response.text == "Echo: one two"
    assert response.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert response.usage_metadata.candidates_token_count == 3


def test_multi_turn_contents_and_parts(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.gemini(local_server)
    contents = [
        types.Content(role="user", parts=[types.Part(text="first turn")]),
        types.Content(role="model", parts=[types.Part(text="reply")]),
        types.Content(role="user", parts=[types.Part(text="last "), types.Part(text="turn")]),
    ]
    response = client.models.generate_content(model=MODEL, contents=contents)
    assert response.text == "Echo: last turn"
    assert response.usage_metadata.prompt_token_count == 2 + 1 + 2


def test_models_list_and_get(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.gemini(local_server)
    names = [model.name for model in client.models.list()]
    assert "models/gemini-2.5-flash" in names
    model = client.models.get(model=MODEL)
    assert model.name == "models/gemini-2.5-flash"
    assert model.input_token_limit and model.output_token_limit


def test_v1beta_path_with_query_key(local_server: LocalProtocolServer) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "raw call"}]}]}
    request = urllib.request.Request(
        f"{local_server.base_url}/v1beta/models/{MODEL}:generateContent?key=AIzaTest123",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = json.load(response)
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "Echo: raw call"
    assert answer["usageMetadata"]["totalTokenCount"] == 2 + 3


def test_require_key_missing_wrong_and_query() -> None:
    with run_local_server(require_key="AIzaTestRight") as server:
        url = f"{server.base_url}/v1beta/models/{MODEL}:generateContent"
        body = json.dumps({"contents": [{"parts": [{"text": "x"}]}]}).encode()
        headers = {"Content-Type": "application/json"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(urllib.request.Request(url, body, headers), timeout=5)
        assert missing.value.code == 403
        assert json.load(missing.value)["error"]["status"] == "PERMISSION_DENIED"
        wrong = Clients().gemini(server, api_key="AIzaTestWrong")
        with pytest.raises(errors.ClientError) as caught:
            wrong.models.generate_content(model=MODEL, contents="x")
        assert caught.value.code == 400
        assert caught.value.status == "INVALID_ARGUMENT"
        assert caught.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert "AIzaTestWrong" not in json.dumps(caught.value.details)
        wrong.close()
        with urllib.request.urlopen(
            urllib.request.Request(url + "?key=AIzaTestRight", body, headers), timeout=5
        ) as response:
            assert response.status == 200


def test_fault_model_in_url_path(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.gemini(local_server)
    with pytest.raises(errors.ClientError) as caught:
        client.models.generate_content(model="fault-429", contents="x")
    assert caught.value.code == 429
    assert caught.value.status == "RESOURCE_EXHAUSTED"
    assert caught.value.response.headers["retry-after"] == "1"
    with pytest.raises(errors.ServerError) as unavailable:
        list(client.models.generate_content_stream(model="fault-503", contents="x"))
    assert unavailable.value.code == 503
    assert unavailable.value.status == "UNAVAILABLE"
    with pytest.raises(errors.ClientError) as missing:
        client.models.generate_content(model="fault-404", contents="x")
    assert missing.value.status == "NOT_FOUND"


def test_count_tokens(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.gemini(local_server)
    assert client.models.count_tokens(model=MODEL, contents="a b c").total_tokens == 3
