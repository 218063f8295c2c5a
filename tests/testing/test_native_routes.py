"""TGI and llama.cpp discovery routes, and who answers the shared ``/v1/models``."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import openai
import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

from .conftest import Clients


def _get(url: str, **headers: str) -> tuple[int, Any]:
    """Status and parsed JSON body (None when empty, the text when not JSON)."""
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    if not body:
        return status, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


def test_tgi_info(local_server: LocalProtocolServer) -> None:
    status, info = _get(local_server.base_url + "/info")
    assert status == 200
    assert info["model_id"] == "test-model"
    assert {"max_input_tokens", "max_total_tokens", "version", "router"} <= set(info)


def test_llamacpp_props_and_health(local_server: LocalProtocolServer) -> None:
    status, props = _get(local_server.base_url + "/props")
    assert status == 200
    assert props["default_generation_settings"]["n_ctx"] > 0
    assert props["total_slots"] == 1
    assert props["model_path"].endswith(".gguf")
    assert _get(local_server.base_url + "/health") == (200, {"status": "ok"})


def test_tgi_only_server_uses_tgi_shapes(clients: Clients) -> None:
    with run_local_server(protocols=["tgi"]) as server:
        assert _get(server.base_url + "/health") == (200, None)
        assert _get(server.base_url + "/props")[0] == 404
        client = clients.openai(server)
        reply = client.chat.completions.create(
            model="tgi", messages=[{"role": "user", "content": "hey"}]
        )
        assert reply.choices[0].message.content == "Echo: hey"
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(
                model="fault-429", messages=[{"role": "user", "content": "hey"}]
            )
        assert caught.value.response.json() == {
            "error": "Model is overloaded",
            "error_type": "overloaded",
        }


def test_v1_models_answer_depends_on_the_client(local_server: LocalProtocolServer) -> None:
    url = local_server.base_url + "/v1/models"
    _, openai_list = _get(url)
    assert openai_list["object"] == "list"
    assert openai_list["data"][0] == {
        "id": "test-model",
        "object": "model",
        "created": openai_list["data"][0]["created"],
        "owned_by": "local",
    }
    _, anthropic_list = _get(url, **{"anthropic-version": "2023-06-01"})
    assert anthropic_list["data"][0]["type"] == "model"
    assert {"has_more", "first_id", "last_id"} <= set(anthropic_list)
    _, gemini_list = _get(url, **{"x-goog-api-key": "AIzaTest123"})
    assert gemini_list["models"][0]["name"] == "models/test-model"


def test_model_fault_on_a_get_route(local_server: LocalProtocolServer) -> None:
    status, body = _get(local_server.base_url + "/v1beta/models/fault-503")
    assert status == 503
    assert body["error"]["status"] == "UNAVAILABLE"
    status, body = _get(local_server.base_url + "/api/tags", **{"X-Fault": "500"})
    assert status == 500
    assert body == {"error": "llama runner process has terminated: exit status 2"}
