"""The local server's model-profile answers and name conventions (`rlm_code.testing.modes`):
probe documents of the five local kinds, per-model context limits with each protocol's own
error, Ollama's truncation unless `num_ctx` is sent, and Mistral's strict schema."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

MODELS = ["tiny-ctx8", "coder-ctx32k:latest", "see-vision-notools", "mistral-small-latest"]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalProtocolServer]:
    with run_local_server(models=MODELS) as running:
        yield running


def call(url: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    """Status and parsed JSON (the raw text when it is not one JSON document)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode()


def words(n: int) -> str:
    return " ".join(f"t{i}" for i in range(n))


# -- probe documents ----------------------------------------------------------------------------


def test_api_show_reports_context_and_capabilities(server: LocalProtocolServer) -> None:
    status, show = call(server.base_url + "/api/show", {"model": "coder-ctx32k"})
    assert status == 200
    assert show["model_info"]["llama.context_length"] == 32 * 1024
    assert show["capabilities"] == ["completion", "tools"]
    status, show = call(server.base_url + "/api/show", {"model": "llama3.2"})
    assert show["model_info"]["llama.context_length"] == 131072
    status, show = call(server.base_url + "/api/show", {"model": "see-vision-notools"})
    assert show["capabilities"] == ["completion", "vision"]


def test_props_reports_the_served_model_context(server: LocalProtocolServer) -> None:
    status, props = call(server.base_url + "/props")
    assert status == 200
    assert props["default_generation_settings"]["n_ctx"] == 8
    assert props["default_generation_settings"]["model"] == "tiny-ctx8"
    with run_local_server() as plain:  # no ctx part: llama-server's common 4096
        assert call(plain.base_url + "/props")[1]["default_generation_settings"]["n_ctx"] == 4096


def test_v1_models_carries_max_model_len_only_where_the_name_sets_it(
    server: LocalProtocolServer,
) -> None:
    _status, listing = call(server.openai_base_url + "/models")
    entries = {e["id"]: e for e in listing["data"]}
    assert entries["tiny-ctx8"]["max_model_len"] == 8
    assert entries["coder-ctx32k:latest"]["max_model_len"] == 32768
    assert "max_model_len" not in entries["gpt-4o-mini"]  # OpenAI's own shape otherwise


def test_lmstudio_models(server: LocalProtocolServer) -> None:
    status, listing = call(server.base_url + "/api/v0/models")
    assert status == 200 and listing["object"] == "list"
    entries = {e["id"]: e for e in listing["data"]}
    tiny = entries["tiny-ctx8"]
    assert (tiny["loaded_context_length"], tiny["max_context_length"]) == (8, 8)
    assert (tiny["type"], tiny["state"], tiny["capabilities"]) == ("llm", "loaded", ["tool_use"])
    see = entries["see-vision-notools"]
    assert (see["type"], see["capabilities"], see["loaded_context_length"]) == ("vlm", [], 4096)


def test_sglang_get_model_info(server: LocalProtocolServer) -> None:
    status, info = call(server.base_url + "/get_model_info")
    assert status == 200
    assert info.keys() == {
        "model_path",
        "tokenizer_path",
        "is_generation",
        "preferred_sampling_params",
        "weight_version",
        "has_image_understanding",
        "has_audio_understanding",
        "model_type",
        "architectures",
    }
    assert info["model_path"] == "tiny-ctx8" and info["has_image_understanding"] is False


def test_probe_routes_are_absent_without_openai() -> None:
    with run_local_server(protocols=["ollama"]) as only:
        assert call(only.base_url + "/api/v0/models")[0] == 404
        assert call(only.base_url + "/get_model_info")[0] == 404


# -- per-model context limits -------------------------------------------------------------------


def test_openai_route_answers_the_context_error(server: LocalProtocolServer) -> None:
    body = {"model": "tiny-ctx8", "messages": [{"role": "user", "content": words(20)}]}
    status, error = call(server.openai_base_url + "/chat/completions", body)
    assert status == 400
    assert error["error"]["code"] == "context_length_exceeded"
    assert "maximum context length is 8 tokens" in error["error"]["message"]
    assert "20 tokens" in error["error"]["message"]
    body["messages"] = [{"role": "user", "content": words(8)}]  # fits: answered
    status, reply = call(server.openai_base_url + "/chat/completions", body)
    assert status == 200 and reply["usage"]["prompt_tokens"] == 8


def test_anthropic_and_gemini_routes_answer_their_own_context_error(
    server: LocalProtocolServer,
) -> None:
    status, error = call(
        server.base_url + "/v1/messages",
        {
            "model": "tiny-ctx8",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": words(9)}],
        },
        **{"x-api-key": "sk-ant-test", "anthropic-version": "2023-06-01"},
    )
    assert status == 400
    assert error["error"]["message"] == "prompt is too long: 9 tokens > 8 maximum"
    status, error = call(
        server.base_url + "/v1beta/models/tiny-ctx8:generateContent",
        {"contents": [{"role": "user", "parts": [{"text": words(12)}]}]},
        **{"x-goog-api-key": "AIzaTest"},
    )
    assert status == 400 and error["error"]["status"] == "INVALID_ARGUMENT"
    assert "(12)" in error["error"]["message"] and "(8)" in error["error"]["message"]


# -- Ollama's truncation ------------------------------------------------------------------------


def test_ollama_cuts_a_long_prompt_to_its_default_context(server: LocalProtocolServer) -> None:
    prompt = words(6000)
    body = {"model": "llama3.2", "stream": False, "messages": [{"role": "user", "content": prompt}]}
    status, reply = call(server.base_url + "/api/chat", body)
    assert status == 200
    assert reply["prompt_eval_count"] == 4096  # as Ollama does, silently
    assert reply["message"]["content"] == "Echo: " + " ".join(prompt.split()[-4096:])


def test_ollama_answers_whole_when_num_ctx_is_sent(server: LocalProtocolServer) -> None:
    prompt = words(6000)
    body = {
        "model": "llama3.2",
        "stream": False,
        "options": {"num_ctx": 8192},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": prompt},
        ],
    }
    _status, reply = call(server.base_url + "/api/chat", body)
    assert reply["prompt_eval_count"] == 6002
    assert reply["message"]["content"] == "Echo: " + prompt


def test_ollama_never_exceeds_the_model_context(server: LocalProtocolServer) -> None:
    body = {
        "model": "coder-ctx32k",
        "stream": False,
        "options": {"num_ctx": 1 << 20},
        "messages": [{"role": "user", "content": words(40000)}],
    }
    assert call(server.base_url + "/api/chat", body)[1]["prompt_eval_count"] == 32768


# -- Mistral ------------------------------------------------------------------------------------


def test_mistral_rejects_stream_options_with_its_422(server: LocalProtocolServer) -> None:
    body = {
        "model": "mistral-small-latest",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    status, error = call(server.openai_base_url + "/chat/completions", body)
    assert status == 422
    assert error == {
        "object": "error",
        "message": {
            "detail": [
                {
                    "type": "extra_forbidden",
                    "loc": ["body", "stream_options"],
                    "msg": "Extra inputs are not permitted",
                    "input": {"include_usage": True},
                }
            ]
        },
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    del body["stream_options"]
    body["max_completion_tokens"] = 5
    status, error = call(server.openai_base_url + "/chat/completions", body)
    assert status == 422 and error["message"]["detail"][0]["loc"] == [
        "body",
        "max_completion_tokens",
    ]


def test_mistral_streams_usage_unasked(server: LocalProtocolServer) -> None:
    body = {
        "model": "mistral-small-latest",
        "stream": True,
        "messages": [{"role": "user", "content": "hi there"}],
    }
    status, text = call(server.openai_base_url + "/chat/completions", body)
    assert status == 200
    events = [json.loads(line[6:]) for line in text.splitlines() if line[6:].startswith("{")]
    usage = [e["usage"] for e in events if e.get("usage")]
    assert len(usage) == 1
    assert (usage[0]["prompt_tokens"], usage[0]["completion_tokens"]) == (2, 3)
    body["model"] = "gpt-4o-mini"  # OpenAI itself sends usage only when asked
    status, text = call(server.openai_base_url + "/chat/completions", body)
    assert '"usage":{' not in text.replace(" ", "")
