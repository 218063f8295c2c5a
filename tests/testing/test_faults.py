"""Fault injection: each mode gives the error the real SDK raises for the real service.

Wire-level details (exact bytes, TCP behaviour) are checked with raw sockets in
test_faults_wire.py; this file is about what a client built on the official SDKs sees.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import httpx2
import ollama
import openai
import pytest
from google.genai import errors

from rlm_code.testing import LocalProtocolServer

from .conftest import Clients

USER = {"role": "user", "content": "hi there"}
CLAUDE = "claude-sonnet-4-5-20250929"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _openai_stream_text(client: Any, model: str, **kwargs: Any) -> str:
    stream = client.chat.completions.create(model=model, messages=[USER], stream=True, **kwargs)
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def _gemini_stream(clients: Clients, server: LocalProtocolServer, model: str) -> list[Any]:
    return list(clients.gemini(server).models.generate_content_stream(model=model, contents="x"))


def _ollama_stream(clients: Clients, server: LocalProtocolServer, model: str) -> list[Any]:
    return list(clients.ollama(server).chat(model=model, messages=[USER], stream=True))


# -- status faults --------------------------------------------------------------------------


def test_429_openai_rate_limit_with_retry_after(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[USER],
            extra_headers={"X-Fault": "429", "X-Retry-After": "7"},
        )
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "7"
    assert caught.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError) as default:
        _openai_stream_text(client, "fault-429")
    assert default.value.response.headers["retry-after"] == "1"


def test_429_anthropic_and_ollama(local_server: LocalProtocolServer, clients: Clients) -> None:
    claude = clients.anthropic(local_server)
    with pytest.raises(anthropic.RateLimitError) as caught:
        claude.messages.create(model="fault-429", max_tokens=10, messages=[USER])
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "1"
    with pytest.raises(ollama.ResponseError) as ollama_error:
        clients.ollama(local_server).chat(model="fault-429", messages=[USER])
    assert ollama_error.value.status_code == 429


@pytest.mark.parametrize(
    ("mode", "openai_error", "anthropic_error", "status"),
    [
        ("401", openai.AuthenticationError, anthropic.AuthenticationError, 401),
        ("404", openai.NotFoundError, anthropic.NotFoundError, 404),
        ("500", openai.InternalServerError, anthropic.InternalServerError, 500),
        ("503", openai.InternalServerError, anthropic.ServiceUnavailableError, 503),
        ("html", openai.InternalServerError, anthropic.InternalServerError, 502),
    ],
)
def test_status_faults_raise_the_sdk_errors(
    local_server: LocalProtocolServer,
    clients: Clients,
    mode: str,
    openai_error: type[Exception],
    anthropic_error: type[Exception],
    status: int,
) -> None:
    gpt = clients.openai(local_server)
    with pytest.raises(openai_error) as from_openai:
        gpt.chat.completions.create(
            model="gpt-4o-mini", messages=[USER], extra_headers={"X-Fault": mode}
        )
    assert from_openai.value.status_code == status  # type: ignore[attr-defined]
    claude = clients.anthropic(local_server)
    with pytest.raises(anthropic_error) as from_anthropic:
        claude.messages.create(model=f"fault-{mode}", max_tokens=10, messages=[USER])
    assert from_anthropic.value.status_code == status  # type: ignore[attr-defined]
    gemini = clients.gemini(local_server)
    expected = errors.ClientError if status < 500 else errors.ServerError
    with pytest.raises(expected) as from_gemini:
        gemini.models.generate_content(model=f"fault-{mode}", contents="x")
    assert from_gemini.value.code == status
    with pytest.raises(ollama.ResponseError) as from_ollama:
        clients.ollama(local_server).chat(model=f"fault-{mode}", messages=[USER])
    assert from_ollama.value.status_code == status


def test_html_fault_is_a_proxy_page(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.openai(local_server)
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="fault-html", messages=[USER])
    response = caught.value.response
    assert response.headers["content-type"].startswith("text/html")
    assert "502 Bad Gateway" in response.text


# -- body and stream damage -----------------------------------------------------------------


def test_malformed_json_fails_to_parse(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.openai(local_server)
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="fault-malformed", messages=[USER])
    with pytest.raises(json.JSONDecodeError):
        _openai_stream_text(client, "fault-malformed")
    with pytest.raises(errors.UnknownApiResponseError):
        _gemini_stream(clients, local_server, "fault-malformed")
    with pytest.raises(json.JSONDecodeError):
        _ollama_stream(clients, local_server, "fault-malformed")


def test_truncate_is_a_connection_error(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="fault-truncate", messages=[USER])
    received: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        stream = client.chat.completions.create(
            model="fault-truncate", messages=[USER], stream=True
        )
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                received.append(chunk.choices[0].delta.content)
    assert received and "".join(received) != "Echo: hi there"
    claude = clients.anthropic(local_server)
    with pytest.raises(anthropic.APIConnectionError):
        claude.messages.create(model="fault-truncate", max_tokens=10, messages=[USER])
    with pytest.raises(httpx2.RemoteProtocolError):
        _gemini_stream(clients, local_server, "fault-truncate")
    with pytest.raises(httpx.RemoteProtocolError):
        _ollama_stream(clients, local_server, "fault-truncate")


def test_no_terminator_streams_end_without_marker(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    assert _openai_stream_text(client, "fault-no_terminator") == "Echo: hi there"
    claude = clients.anthropic(local_server)
    events = list(
        claude.messages.create(
            model="fault-no_terminator", max_tokens=10, messages=[USER], stream=True
        )
    )
    assert events[-1].type == "message_delta"
    chunks = _gemini_stream(clients, local_server, "fault-no_terminator")
    assert all(chunk.candidates[0].finish_reason is None for chunk in chunks)
    parts = _ollama_stream(clients, local_server, "fault-no_terminator")
    assert parts and not any(part.done for part in parts)


def test_bad_utf8_reaches_the_client(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.openai(local_server)
    with pytest.raises(UnicodeDecodeError):
        client.chat.completions.create(model="fault-bad_utf8", messages=[USER])
    gemini = clients.gemini(local_server)
    # google-genai decodes leniently: the bytes become replacement characters.
    response = gemini.models.generate_content(model="fault-bad_utf8", contents="hi there")
    assert response.text == "Echo: \ufffd\ufffdhi there"


def test_split_utf8_is_reassembled_by_every_sdk(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    expected = "héllo → 日本"
    client = clients.openai(local_server)
    assert (
        client.chat.completions.create(model="fault-split_utf8", messages=[USER])
        .choices[0]
        .message.content
        == expected
    )
    assert _openai_stream_text(client, "fault-split_utf8") == expected
    claude = clients.anthropic(local_server)
    with claude.messages.stream(model="fault-split_utf8", max_tokens=10, messages=[USER]) as stream:
        assert "".join(stream.text_stream) == expected
    chunks = _gemini_stream(clients, local_server, "fault-split_utf8")
    assert "".join(chunk.text or "" for chunk in chunks) == expected
    parts = _ollama_stream(clients, local_server, "fault-split_utf8")
    assert "".join(part.message.content for part in parts) == expected


def test_empty_reply_has_zero_completion_tokens(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    reply = client.chat.completions.create(model="fault-empty", messages=[USER])
    assert reply.choices[0].message.content == ""
    assert reply.usage is not None and reply.usage.completion_tokens == 0
    assert reply.usage.prompt_tokens == 2
    claude = clients.anthropic(local_server)
    with claude.messages.stream(model="fault-empty", max_tokens=10, messages=[USER]) as stream:
        assert list(stream.text_stream) == []
        assert stream.get_final_message().usage.output_tokens == 0
    response = clients.ollama(local_server).chat(model="fault-empty", messages=[USER])
    assert response.message.content == "" and response.eval_count == 0


def test_empty_body_breaks_json_parsing(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(local_server)
    with pytest.raises(json.JSONDecodeError):
        client.chat.completions.create(model="fault-empty_body", messages=[USER])
    assert _openai_stream_text(client, "fault-empty_body") == ""


def test_no_usage_means_unknown_tokens(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.openai(local_server)
    reply = client.chat.completions.create(model="fault-no_usage", messages=[USER])
    assert reply.usage is None
    assert reply.choices[0].message.content == "Echo: hi there"
    chunks = list(
        client.chat.completions.create(
            model="fault-no_usage",
            messages=[USER],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert all(chunk.usage is None for chunk in chunks)
    gemini = clients.gemini(local_server)
    assert (
        gemini.models.generate_content(model="fault-no_usage", contents="x").usage_metadata is None
    )
    response = clients.ollama(local_server).chat(model="fault-no_usage", messages=[USER])
    assert response.eval_count is None and response.prompt_eval_count is None


def test_hang_times_out_on_the_client(fresh_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.openai(fresh_server, timeout=0.5)
    with pytest.raises(openai.APITimeoutError):
        client.chat.completions.create(model="fault-hang", messages=[USER])
    # the server is still fine afterwards
    assert clients.openai(fresh_server).chat.completions.create(model="m", messages=[USER]).choices


# -- choosing the fault ---------------------------------------------------------------------


def test_script_faults_fifo_then_normal(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(fresh_server)
    fresh_server.script_faults(["503", "ok", "429"])
    assert fresh_server.pending_faults() == ["503", "ok", "429"]
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="m", messages=[USER])
    assert client.chat.completions.create(model="m", messages=[USER]).choices
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="m", messages=[USER])
    assert client.chat.completions.create(model="m", messages=[USER]).choices
    assert fresh_server.pending_faults() == []


def test_script_faults_give_retries_something_to_do(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    fresh_server.script_faults(["503", "503"])
    client = clients.openai(fresh_server, max_retries=2)
    reply = client.chat.completions.create(
        model="m", messages=[USER], extra_headers={"X-Retry-After": "0"}
    )
    assert reply.choices[0].message.content == "Echo: hi there"
    assert len(fresh_server.requests) == 3


def test_header_beats_model_beats_script(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(fresh_server)
    fresh_server.script_faults(["500"])
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(
            model="fault-404", messages=[USER], extra_headers={"X-Fault": "429"}
        )
    assert fresh_server.pending_faults() == []  # the script entry was consumed anyway
    fresh_server.script_faults(["500"])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="fault-404", messages=[USER])


def test_unknown_fault_names_are_loud(fresh_server: LocalProtocolServer, clients: Clients) -> None:
    with pytest.raises(ValueError, match="unknown fault mode"):
        fresh_server.script_faults(["429", "bogus"])
    assert fresh_server.pending_faults() == []
    client = clients.openai(fresh_server)
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="m", messages=[USER], extra_headers={"X-Fault": "bogus"}
        )
    assert "unknown fault mode" in caught.value.message


def test_unknown_fault_model_with_a_header_fault_is_just_unknown(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.ollama(fresh_server, headers={"X-Fault": "no_usage"})
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="fault-bogus", messages=[USER])
    assert caught.value.status_code == 404
