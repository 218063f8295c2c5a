"""The local server's Ollama `/api/chat` beyond text: tools, `thinking`, `format`, images and tool
turns, read back with the official `ollama` SDK and as raw NDJSON; Ollama's real 400 bodies."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from rlm_code.testing import LocalProtocolServer, ScriptedReply, run_local_server
from rlm_code.testing.completion import complete
from rlm_code.testing.formats.ollama import OllamaFormat
from rlm_code.testing.wire import WireRequest

from .conftest import Clients

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ARGS = {"city": 'São "Paulo" \\ 東京 🚀', "days": 2}
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalProtocolServer]:
    with run_local_server(strict=True, models=["gpt-oss:20b"]) as running:
        yield running


def post(server: LocalProtocolServer, body: dict[str, Any]) -> tuple[int, Any]:
    """(status, parsed body: one object, or the list of NDJSON lines of a stream)."""
    request = urllib.request.Request(f"{server.base_url}/api/chat", data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            raw = answer.read()
            status = answer.status
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    if body.get("stream") is False:
        return status, json.loads(raw)
    return status, [json.loads(line) for line in raw.splitlines()]


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "llama3.2", "messages": [{"role": "user", "content": "hi"}], **fields}


def test_a_tool_call_reads_back_through_the_sdk(
    server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.ollama(server)
    server.queue_replies([ScriptedReply(tool_calls=[("get_weather", ARGS)], reasoning="Hmm.")])
    reply = client.chat(model="llama3.2", messages=[{"role": "user", "content": "x"}], think=True)
    assert reply.message.thinking == "Hmm."
    assert reply.message.content == ""
    [call] = reply.message.tool_calls or []
    assert (call.function.name, dict(call.function.arguments)) == ("get_weather", ARGS)
    assert reply.done_reason == "stop", "Ollama says stop after tool calls"
    server.queue_replies([ScriptedReply(tool_calls=[("get_weather", ARGS)], reasoning="Hmm.")])
    parts = list(
        client.chat(
            model="llama3.2", messages=[{"role": "user", "content": "x"}], think=True, stream=True
        )
    )
    assert "".join(p.message.thinking or "" for p in parts) == "Hmm."
    calls = [c for p in parts for c in p.message.tool_calls or []]
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [("get_weather", ARGS)]
    assert parts[-1].done and parts[-1].done_reason == "stop"


def test_a_stream_sends_thinking_then_text_then_calls_whole_in_one_line(
    server: LocalProtocolServer,
) -> None:
    server.queue_replies(
        [
            ScriptedReply(
                text="Checking now.",
                tool_calls=[("get_weather", ARGS), ("get_weather", {"city": "Oslo"})],
                reasoning="Two cities.",
            )
        ]
    )
    status, lines = post(server, chat(tools=[TOOL], think=True))
    assert status == 200
    messages = [line["message"] for line in lines]
    assert [m.get("thinking") for m in messages[:2]] == ["Two ", "cities."]
    assert "".join(m["content"] for m in messages) == "Checking now."
    [call_line] = [m for m in messages if "tool_calls" in m]
    assert call_line["content"] == ""
    first, second = call_line["tool_calls"]
    assert first["function"] == {"index": 0, "name": "get_weather", "arguments": ARGS}
    assert second["function"]["index"] == 1
    assert (
        first["id"].startswith("call_") and len(first["id"]) == 13 and first["id"] != second["id"]
    )
    assert lines[-1]["done"] is True and lines[-1]["done_reason"] == "stop"
    assert messages.index(call_line) == len(lines) - 2


def test_a_whole_reply_carries_thinking_content_and_calls(server: LocalProtocolServer) -> None:
    server.queue_replies([ScriptedReply(text="ok", tool_calls=[("get_weather", ARGS)])])
    status, reply = post(server, chat(tools=[TOOL], think=True, stream=False))
    assert status == 200
    message = reply["message"]
    assert list(message) == ["role", "content", "thinking", "tool_calls"]
    assert (message["content"], message["thinking"]) == ("ok", "Thinking about: hi")
    assert message["tool_calls"][0]["function"]["arguments"] == ARGS
    assert reply["done_reason"] == "stop" and reply["eval_count"] > 1


def test_the_tool_call_line_is_written_in_pieces_cut_inside_the_arguments() -> None:
    """So the `truncate` fault (half the content writes) ends a stream inside a call."""
    request = WireRequest(model="llama3.2", texts=("x",), last_user_text="x", stream=True)
    reply = complete(request, queued=ScriptedReply(tool_calls=[("get_weather", ARGS)]))
    plan = OllamaFormat().stream(reply, terminate=True)
    frames = list(plan.content)
    assert len(frames) == plan.piece_count >= 3
    line = json.loads(b"".join(frames))
    assert line["message"]["tool_calls"][0]["function"]["arguments"] == ARGS
    cut = b"".join(frames[: plan.piece_count // 2]).decode("utf-8")
    assert '"arguments":{"city":"S' in cut and cut.endswith(" ")
    assert "days" not in cut


def test_a_tool_result_turn_is_answered_and_nothing_is_refused(server: LocalProtocolServer) -> None:
    """Ollama does not check the conversation: a dropped result is answered, even when strict."""
    turns = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": "",
            "thinking": "call it",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}],
        },
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
    ]
    status, reply = post(server, {"model": "llama3.2", "messages": turns, "stream": False})
    assert (status, reply["message"]["content"]) == (200, "Tool result: sunny")
    status, reply = post(server, {"model": "llama3.2", "messages": turns[:2], "stream": False})
    assert (status, reply["message"]["content"]) == (200, "Echo: weather?")


def test_a_tool_line_in_the_user_turn_calls_the_tool(server: LocalProtocolServer) -> None:
    body = chat(tools=[TOOL], stream=False)
    body["messages"] = [{"role": "user", "content": 'call get_weather {"city": "Rome"}'}]
    status, reply = post(server, body)
    assert status == 200
    assert reply["message"]["tool_calls"][0]["function"]["arguments"] == {"city": "Rome"}


def test_format_gets_a_valid_instance(server: LocalProtocolServer) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "n": {"type": "integer"}},
    }
    status, reply = post(server, chat(format=schema, stream=False))
    assert status == 200 and json.loads(reply["message"]["content"]) == {"name": "Echo: hi", "n": 1}
    status, reply = post(server, chat(format="json", stream=False))
    assert json.loads(reply["message"]["content"]) == {}


@pytest.mark.parametrize(
    ("think", "model", "error"),
    [
        ("low", "llama3.2", 'think value "low" is not supported for this model'),
        (
            "max",
            "gpt-oss:20b",
            'invalid think value: "max" (must be "high", "medium", "low", true, or false)',
        ),
        (
            1,
            "llama3.2",
            'think must be a boolean or string ("high", "medium", "low", true, or false)',
        ),
    ],
)
def test_think_values_ollama_refuses(
    server: LocalProtocolServer, think: object, model: str, error: str
) -> None:
    assert post(server, chat(model=model, think=think)) == (400, {"error": error})


def test_gpt_oss_takes_a_level_and_thinks(server: LocalProtocolServer) -> None:
    status, reply = post(server, chat(model="gpt-oss:20b", think="high", stream=False))
    assert (status, reply["message"]["thinking"]) == (200, "Thinking about: hi")
    status, reply = post(server, chat(think=False, stream=False))
    assert "thinking" not in reply["message"]


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (f"data:image/png;base64,{PNG}", "illegal base64 data at input byte 4"),
        ("https://example.test/cat.png", "illegal base64 data at input byte 5"),
        ("abc", "illegal base64 data at input byte 0"),
        ("ab=", "illegal base64 data at input byte 3"),
        (
            7,
            "json: cannot unmarshal number into Go struct field Message.messages.images "
            "of type api.ImageData",
        ),
    ],
)
def test_images_that_are_not_base64_get_ollamas_400(
    server: LocalProtocolServer, image: object, error: str
) -> None:
    body = chat()
    body["messages"][0]["images"] = [image]
    assert post(server, body) == (400, {"error": error})


def test_base64_images_are_accepted_and_recorded(server: LocalProtocolServer) -> None:
    body = chat(stream=False)
    body["messages"][0]["images"] = [PNG, PNG[:8] + "\n" + PNG[8:]]
    status, reply = post(server, body)
    assert (status, reply["message"]["content"]) == (200, "Echo: hi")
    recorded = server.requests[-1].json
    assert recorded is not None and recorded["messages"][0]["images"][0] == PNG


def test_generate_sends_thinking_beside_the_response(server: LocalProtocolServer) -> None:
    body = {"model": "llama3.2", "prompt": "why", "think": True, "stream": False}
    request = urllib.request.Request(
        f"{server.base_url}/api/generate", data=json.dumps(body).encode()
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        reply = json.load(answer)
    assert (reply["response"], reply["thinking"]) == ("Echo: why", "Thinking about: why")
    bad = {"model": "llama3.2", "prompt": "why", "images": ["!!"]}
    request = urllib.request.Request(
        f"{server.base_url}/api/generate", data=json.dumps(bad).encode()
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert json.loads(caught.value.read()) == {"error": "illegal base64 data at input byte 0"}
