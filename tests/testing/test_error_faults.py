"""The body faults of the local server (issue 13): ``context_length``, ``content_filter`` and
``unsupported_parameter`` send each protocol's real error body, which our boundary maps to
the typed error (`test_error_mapping.py` holds the same bodies as the providers sent them).

Raw HTTP shows the exact bodies; the official SDKs show a client sees them as the real
service's; the connector, for all five adapters, is in `test_contract.py`'s fault table.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from rlm_code.core.exceptions import (
    ContentFilterError,
    ContextLengthExceededError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters.errors import error_for_status, stream_error
from rlm_code.testing import FAULT_MODES, LocalProtocolServer, run_local_server
from rlm_code.testing.faults import (
    BODY_FAULTS,
    DEFAULT_CONTEXT_LIMIT,
    DEFAULT_CONTEXT_REQUESTED,
    STATUS_FAULTS,
)

from .conftest import Clients

USER = {"role": "user", "content": "hi there"}
CLAUDE = "claude-sonnet-4-5-20250929"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def post(server: LocalProtocolServer, path: str, body: dict[str, Any], **headers: str) -> Any:
    return httpx.post(server.base_url + path, json=body, headers=headers, timeout=10)


def openai_chat(model: str = "gpt-4o-mini", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [USER], **extra}


def anthropic_chat(**extra: Any) -> dict[str, Any]:
    return {"model": CLAUDE, "max_tokens": 50, "messages": [USER], **extra}


GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash:generateContent"


def test_the_body_faults_are_fault_modes_of_their_own() -> None:
    assert BODY_FAULTS.issubset(FAULT_MODES)
    assert not BODY_FAULTS & STATUS_FAULTS


# -- each protocol's own body, mapped by our boundary -------------------------------------------


def requests_for(server: LocalProtocolServer, fault: str) -> dict[str, tuple[str, Any]]:
    """(provider, answer) per protocol for one body fault, asked by the X-Fault header."""
    return {
        "openai": (
            "openai",
            post(server, "/v1/chat/completions", openai_chat(), **{"X-Fault": fault}),
        ),
        "anthropic": (
            "anthropic",
            post(server, "/v1/messages", anthropic_chat(), **{"X-Fault": fault}),
        ),
        "gemini": ("gemini", post(server, GEMINI_PATH, GEMINI_BODY, **{"X-Fault": fault})),
        "ollama": (
            "ollama",
            post(
                server,
                "/api/chat",
                {"model": "llama3.2", "messages": [USER], "stream": False},
                **{"X-Fault": fault},
            ),
        ),
    }


def test_context_length_is_each_protocols_400_with_the_figures(
    local_server: LocalProtocolServer,
) -> None:
    answers = requests_for(local_server, "context_length")
    for name, (provider, answer) in answers.items():
        assert answer.status_code == 400, name
        error = error_for_status(provider, answer.status_code, answer.content)
        assert type(error) is ContextLengthExceededError, (name, answer.text)
        assert (error.limit, error.requested) == (DEFAULT_CONTEXT_LIMIT, DEFAULT_CONTEXT_REQUESTED)
    assert answers["openai"][1].json()["error"]["code"] == "context_length_exceeded"
    assert (
        answers["anthropic"][1].json()["error"]["message"]
        == "prompt is too long: 5000 tokens > 4096 maximum"
    )
    assert answers["gemini"][1].json()["error"]["status"] == "INVALID_ARGUMENT"
    runner = json.loads(answers["ollama"][1].json()["error"])  # the runner's body, as a string
    assert runner["error"]["type"] == "exceed_context_size_error"
    assert (runner["error"]["n_prompt_tokens"], runner["error"]["n_ctx"]) == (5000, 4096)


def test_the_context_figures_follow_the_request_headers(local_server: LocalProtocolServer) -> None:
    headers = {
        "X-Fault": "context_length",
        "X-Context-Limit": "8192",
        "X-Context-Requested": "9100",
    }
    answer = post(local_server, "/v1/messages", anthropic_chat(), **headers)
    error = error_for_status("anthropic", 400, answer.content)
    assert isinstance(error, ContextLengthExceededError)
    assert (error.limit, error.requested) == (8192, 9100)


def test_unsupported_parameter_is_each_protocols_400(local_server: LocalProtocolServer) -> None:
    answers = requests_for(local_server, "unsupported_parameter")
    for name, (provider, answer) in answers.items():
        assert answer.status_code == 400, name
        error = error_for_status(provider, 400, answer.content)
        assert type(error) is UnsupportedParameterError, (name, answer.text)
    assert answers["openai"][1].json()["error"]["param"] == "temperature"
    assert answers["ollama"][1].json() == {"error": '"llama3.2:latest" does not support thinking'}
    assert "is not enabled for models/gemini-2.5-flash" in answers["gemini"][1].text


def test_content_filter_where_the_service_has_one(local_server: LocalProtocolServer) -> None:
    answers = requests_for(local_server, "content_filter")
    for name in ("openai", "anthropic"):
        provider, answer = answers[name]
        assert answer.status_code == 400
        assert type(error_for_status(provider, 400, answer.content)) is ContentFilterError
    assert (
        answers["openai"][1].json()["error"]["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    )
    gemini = answers["gemini"][1]  # a 200 without candidates
    assert gemini.status_code == 200 and "candidates" not in gemini.json()
    assert gemini.json()["promptFeedback"]["blockReason"] == "SAFETY"
    assert gemini.json()["usageMetadata"]["promptTokenCount"] == 2
    ollama = answers["ollama"][1]  # Ollama filters nothing: a normal answer
    assert ollama.status_code == 200 and ollama.json()["message"]["content"] == "Echo: hi there"


def test_anthropic_filters_a_stream_after_it_has_begun(local_server: LocalProtocolServer) -> None:
    answer = post(
        local_server, "/v1/messages", anthropic_chat(stream=True), **{"X-Fault": "content_filter"}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [block.split("\n") for block in answer.text.strip().split("\n\n")]
    names = [lines[0].removeprefix("event: ") for lines in events]
    assert names == ["message_start", "content_block_start", "content_block_delta", "error"]
    error = stream_error("anthropic", events[-1][1].removeprefix("data: "))
    assert type(error) is ContentFilterError


def test_llamacpp_and_tgi_answer_with_their_own_bodies() -> None:
    with run_local_server(protocols=["llamacpp"]) as server:
        answer = post(
            server, "/v1/chat/completions", openai_chat("m"), **{"X-Fault": "context_length"}
        )
        body = answer.json()["error"]
        assert answer.status_code == 400 and body["type"] == "exceed_context_size_error"
        error = error_for_status("llamacpp", 400, answer.content)
        assert isinstance(error, ContextLengthExceededError) and error.limit == 4096
        answer = post(
            server, "/v1/chat/completions", openai_chat("m"), **{"X-Fault": "unsupported_parameter"}
        )
        assert answer.json()["error"]["message"] == "Unsupported param: best_of"
        assert type(error_for_status("llamacpp", 400, answer.content)) is UnsupportedParameterError
        filtered = post(
            server, "/v1/chat/completions", openai_chat("m"), **{"X-Fault": "content_filter"}
        )
        assert filtered.status_code == 200  # llama.cpp filters nothing
    with run_local_server(protocols=["tgi"]) as server:
        answer = post(
            server, "/v1/chat/completions", openai_chat("m"), **{"X-Fault": "context_length"}
        )
        assert answer.status_code == 422 and answer.json()["error_type"] == "validation"
        error = error_for_status("tgi", 422, answer.content)
        assert isinstance(error, ContextLengthExceededError)
        assert (error.limit, error.requested) == (4096, 5000)


def test_a_body_fault_leaves_listings_alone(fresh_server: LocalProtocolServer) -> None:
    """A scripted body fault taken by a GET is used up without an error: a model listing has
    no context to exceed."""
    fresh_server.script_faults(["context_length"])
    answer = httpx.get(fresh_server.openai_base_url + "/models", timeout=10)
    assert answer.status_code == 200 and fresh_server.pending_faults() == []


# -- what the official SDKs see ------------------------------------------------------------------


def test_the_openai_sdk_sees_openais_errors(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="fault-context_length", messages=[USER])
    assert caught.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="fault-unsupported_parameter", messages=[USER], stream=True
        )
    assert caught.value.code == "unsupported_parameter" and caught.value.param == "temperature"


def test_the_anthropic_sdk_sees_the_filter_mid_stream(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as caught:
        for event in client.messages.create(
            model=CLAUDE,
            max_tokens=50,
            messages=[USER],
            stream=True,
            extra_headers={"X-Fault": "content_filter"},
        ):
            seen.append(event.type)
    assert seen == ["message_start", "content_block_start", "content_block_delta"]
    assert "Output blocked by content filtering policy" in str(caught.value)


def test_the_gemini_sdk_sees_a_blocked_prompt(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.gemini(local_server)
    reply = client.models.generate_content(model="fault-content_filter", contents="hi")
    assert reply.candidates is None
    assert reply.prompt_feedback.block_reason.value == "SAFETY"
    chunks: Iterator[Any] = client.models.generate_content_stream(
        model="fault-content_filter", contents="hi"
    )
    assert [chunk.prompt_feedback.block_reason.value for chunk in chunks] == ["SAFETY"]
