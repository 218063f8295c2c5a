"""The OpenAI wire format beyond text: tool calls, reasoning, structured output, images and the
strict-mode refusals, checked on the raw bytes the local server sends (and through the
official `openai` SDK where it parses them)."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from rlm_code.testing import LocalProtocolServer, ScriptedReply, run_local_server
from rlm_code.testing.formats.openai import OpenAIFormat
from rlm_code.testing.scripted import wire_call
from rlm_code.testing.wire import WireReply, WireRequest

from .conftest import Clients

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def strict() -> Iterator[LocalProtocolServer]:
    with run_local_server(strict=True) as server:
        yield server


def post(
    server: LocalProtocolServer, body: dict[str, Any], **headers: str
) -> tuple[int, Any, bytes]:
    """(status, parsed JSON or None, raw bytes) of one chat-completions request."""
    request = urllib.request.Request(
        server.openai_base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status = answer.status
            try:
                raw = answer.read()
            except http.client.IncompleteRead as cut:  # the truncate fault
                raw = cut.partial
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw), raw
    except ValueError:
        return status, None, raw


def sse_events(raw: bytes) -> list[Any]:
    """The data payloads of an SSE body, `[DONE]` kept as the string."""
    events: list[Any] = []
    for frame in raw.decode().split("\n\n"):
        if frame.startswith("data: "):
            data = frame[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def chat(*messages: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": list(messages), **extra}


USER_CALL = {"role": "user", "content": 'call read_file {"path": "a \\"b\\" é.txt"}'}


# -- whole replies -----------------------------------------------------------------------------


def test_a_tool_call_reply_has_openai_shape(strict: LocalProtocolServer) -> None:
    status, body, _ = post(strict, chat(USER_CALL, tools=TOOLS))
    assert status == 200
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    [call] = message["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    assert call["function"] == {"name": "read_file", "arguments": '{"path": "a \\"b\\" é.txt"}'}
    assert "reasoning_content" not in message
    assert body["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0


@pytest.mark.parametrize(
    "knob",
    [
        {"reasoning_effort": "low"},
        {"reasoning": {"effort": "high"}},
        {"reasoning": {"max_tokens": 2000}},
        {"thinking": {"type": "enabled"}},
        {"enable_thinking": True, "thinking_budget": 1024},
    ],
)
def test_every_hosts_reasoning_knob_gets_reasoning_content(
    strict: LocalProtocolServer, knob: dict[str, Any]
) -> None:
    status, body, _ = post(strict, chat({"role": "user", "content": "two words"}, **knob))
    assert status == 200
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "Thinking about: two words"
    assert message["content"] == "Echo: two words"
    usage = body["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 4
    assert usage["completion_tokens"] == 3 + 4


@pytest.mark.parametrize("knob", [{"reasoning_effort": "none"}, {"reasoning": {"effort": "none"}}])
def test_reasoning_turned_off_is_not_asked(strict: LocalProtocolServer, knob: Any) -> None:
    _, body, _ = post(strict, chat({"role": "user", "content": "hi"}, **knob))
    assert "reasoning_content" not in body["choices"][0]["message"]


def test_named_tool_choice_forces_that_tool(strict: LocalProtocolServer) -> None:
    choice = {"type": "function", "function": {"name": "read_file"}}
    _, body, _ = post(
        strict, chat({"role": "user", "content": "go"}, tools=TOOLS, tool_choice=choice)
    )
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "read_file", "arguments": '{"path": "text"}'}


def test_json_schema_reply_is_an_instance(strict: LocalProtocolServer) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}, "s": {"type": "string"}}}
    form = {"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": True}}
    _, body, _ = post(strict, chat({"role": "user", "content": "x"}, response_format=form))
    assert json.loads(body["choices"][0]["message"]["content"]) == {"n": 1, "s": "Echo: x"}
    _, body, _ = post(
        strict, chat({"role": "user", "content": "x"}, response_format={"type": "json_object"})
    )
    assert json.loads(body["choices"][0]["message"]["content"]) == {}


# -- streams -----------------------------------------------------------------------------------


def test_stream_order_reasoning_text_tool_calls_finish_usage_done(
    strict: LocalProtocolServer,
) -> None:
    arguments = {"path": "a b c d"}
    strict.queue_replies(
        [
            ScriptedReply(
                text="Let me look.",
                tool_calls=[("read_file", arguments)],
                reasoning="I should read it",
            )
        ]
    )
    body = chat(
        {"role": "user", "content": "read"},
        tools=TOOLS,
        stream=True,
        stream_options={"include_usage": True},
    )
    status, _, raw = post(strict, body)
    assert status == 200
    events = sse_events(raw)
    assert events[-1] == "[DONE]"
    usage = events[-2]
    assert (
        usage["choices"] == []
        and usage["usage"]["completion_tokens_details"]["reasoning_tokens"] == 4
    )
    finish = events[-3]["choices"][0]
    assert finish["finish_reason"] == "tool_calls" and finish["delta"] == {}
    deltas = [e["choices"][0]["delta"] for e in events[1:-3]]
    kinds = [next(iter(d)) for d in deltas]
    reasoning = kinds.count("reasoning_content")
    text = kinds.count("content")
    assert kinds == ["reasoning_content"] * reasoning + ["content"] * text + ["tool_calls"] * (
        len(kinds) - reasoning - text
    )
    assert "".join(d["reasoning_content"] for d in deltas[:reasoning]) == "I should read it"
    assert "".join(d["content"] for d in deltas[reasoning : reasoning + text]) == "Let me look."
    tool_deltas = [d["tool_calls"][0] for d in deltas[reasoning + text :]]
    first = tool_deltas[0]
    assert first["index"] == 0 and first["type"] == "function"
    assert first["id"].startswith("call_")
    assert first["function"] == {"name": "read_file", "arguments": ""}
    assert len(tool_deltas) > 2, "the arguments come in several fragments"
    assert all(set(d) == {"index", "function"} for d in tool_deltas[1:])
    joined = "".join(d["function"]["arguments"] for d in tool_deltas[1:])
    assert joined == json.dumps(arguments)


def test_the_sdk_reassembles_a_streamed_tool_call(
    strict: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.openai(strict)
    arguments = {"path": 'naïve "q" 🚀'}
    strict.queue_replies([ScriptedReply(tool_calls=[("read_file", arguments)])])
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "x"}], tools=TOOLS, stream=True
    )
    fragments, names, reasons = [], [], []
    for chunk in stream:
        for choice in chunk.choices:
            reasons.append(choice.finish_reason)
            for call in choice.delta.tool_calls or []:
                names.append(call.function.name)
                fragments.append(call.function.arguments or "")
    assert [n for n in names if n] == ["read_file"]
    assert json.loads("".join(fragments)) == arguments
    assert reasons[-1] == "tool_calls"


def test_truncate_cuts_a_tool_call_stream_inside_its_arguments(
    strict: LocalProtocolServer,
) -> None:
    arguments = {"path": "one two three four five six seven eight nine ten"}
    strict.queue_replies([ScriptedReply(tool_calls=[("read_file", arguments)])])
    _, _, raw = post(
        strict,
        chat({"role": "user", "content": "x"}, tools=TOOLS, stream=True),
        **{"X-Fault": "truncate"},
    )
    events = sse_events(raw)
    assert "[DONE]" not in events
    fragments = [
        e["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"]
        for e in events
        if e["choices"] and "tool_calls" in e["choices"][0]["delta"]
    ]
    sent = "".join(fragments)
    assert sent and sent != json.dumps(arguments), "cut inside the arguments"
    assert json.dumps(arguments).startswith(sent)


def test_piece_count_counts_every_content_delta() -> None:
    request = WireRequest(model="m", texts=("x",), last_user_text="x", stream=True)
    call = wire_call("read_file", {"path": "a b c"})
    reply = WireReply(request, "two words", 1, 2, tool_calls=(call,), reasoning="r s t")
    plan = OpenAIFormat().stream(reply, terminate=True)
    frames = list(plan.content)
    assert plan.piece_count == len(frames) == 3 + 2 + 1 + len(WireReply.argument_pieces(call))


# -- strict mode -------------------------------------------------------------------------------


def _assistant_call(call_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": "read_file", "arguments": '{"path": "a"}'},
            }
        ],
        **extra,
    }


def _error(server: LocalProtocolServer, body: dict[str, Any]) -> dict[str, Any]:
    status, answer, _ = post(server, body)
    assert status == 400, answer
    return answer["error"]  # type: ignore[no-any-return]


def test_strict_refuses_a_tool_call_without_its_result(strict: LocalProtocolServer) -> None:
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        _assistant_call("call_1"),
        {"role": "user", "content": "and?"},
    ]
    error = _error(strict, chat(*messages, tools=TOOLS))
    assert error == {
        "message": "An assistant message with 'tool_calls' must be followed by tool messages "
        "responding to each 'tool_call_id'. The following tool_call_ids did not have response "
        "messages: call_1",
        "type": "invalid_request_error",
        "param": "messages.[3].role",
        "code": None,
    }


def test_strict_refuses_a_tool_result_without_a_call(strict: LocalProtocolServer) -> None:
    messages = [
        {"role": "user", "content": "u"},
        {"role": "tool", "tool_call_id": "call_x", "content": "r"},
    ]
    error = _error(strict, chat(*messages))
    assert error["message"] == (
        "Invalid parameter: messages with role 'tool' must be a response to a preceeding "
        "message with 'tool_calls'."
    )
    assert error["param"] == "messages.[1].role"


def test_strict_refuses_a_thinking_tool_loop_without_reasoning_content(
    strict: LocalProtocolServer,
) -> None:
    messages = [
        {"role": "system", "content": "s"},
        {"role": "user", "content": "u"},
        _assistant_call("call_1"),
        {"role": "tool", "tool_call_id": "call_1", "content": "r"},
    ]
    error = _error(strict, chat(*messages, tools=TOOLS, reasoning_effort="high"))
    assert error["message"] == (
        "Missing `reasoning_content` field in the assistant message at message index 2. For "
        "more information, please refer to "
        "https://api-docs.deepseek.com/guides/thinking_mode#tool-calls"
    )
    assert error["type"] == "invalid_request_error"
    # With the reasoning sent back, or without reasoning asked for, it passes.
    messages[2] = _assistant_call("call_1", reasoning_content="thought")
    status, body, _ = post(strict, chat(*messages, tools=TOOLS, reasoning_effort="high"))
    assert status == 200
    assert body["choices"][0]["message"]["content"] == "Tool result: r"


def test_a_lenient_server_answers_what_strict_refuses(local_server: LocalProtocolServer) -> None:
    messages = [{"role": "user", "content": "u"}, _assistant_call("call_1")]
    status, _, _ = post(local_server, chat(*messages, tools=TOOLS, reasoning_effort="low"))
    assert status == 200


# -- request checks (always on) -----------------------------------------------------------------


def test_an_image_is_recorded_as_sent(fresh_server: LocalProtocolServer) -> None:
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    user = {"role": "user", "content": [{"type": "text", "text": "see"}, part]}
    status, body, _ = post(fresh_server, chat(user))
    assert status == 200 and body["choices"][0]["message"]["content"] == "Echo: see"
    assert fresh_server.requests[-1].json["messages"][0]["content"][1] == part


@pytest.mark.parametrize(
    ("image_url", "message", "param"),
    [
        (
            "https://x/y.png",
            "Invalid type for 'messages[0].content[0].image_url': expected an object, but got "
            "a string instead.",
            "messages[0].content[0].image_url",
        ),
        (
            {},
            "Missing required parameter: 'messages[0].content[0].image_url.url'.",
            "messages[0].content[0].image_url.url",
        ),
        (
            {"url": "ftp://x/y.png"},
            "Invalid image URL: 'messages[0].content[0].image_url.url'. Expected a "
            "base64-encoded data URL with an image MIME type (e.g. "
            "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a value without the "
            "'data:' prefix.",
            "messages[0].content[0].image_url.url",
        ),
        (
            {"url": "data:image/png;base64,@@not-base64@@"},
            "Invalid base64 image_url.",
            "messages[0].content[0].image_url.url",
        ),
    ],
)
def test_a_malformed_image_gets_openais_400(
    local_server: LocalProtocolServer, image_url: Any, message: str, param: str
) -> None:
    user = {"role": "user", "content": [{"type": "image_url", "image_url": image_url}]}
    status, body, _ = post(local_server, chat(user))
    assert status == 400
    assert body["error"]["message"] == message
    assert body["error"]["param"] == param


def test_an_image_outside_a_user_turn_is_refused(local_server: LocalProtocolServer) -> None:
    part = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "u"},
        {"role": "assistant", "content": [part]},
    ]
    status, body, _ = post(local_server, chat(*messages))
    assert status == 400
    assert body["error"]["message"] == (
        "Invalid 'messages[1]'. Image URLs are only allowed for messages with role 'user', but "
        "this message with role 'assistant' contains an image URL."
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"tools": []}, "Invalid 'tools': empty array."),
        ({"tools": [{"type": "function"}]}, "Missing required parameter: 'tools[0].function'."),
        (
            {"tools": [{"type": "function", "function": {}}]},
            "Missing required parameter: 'tools[0].function.name'.",
        ),
        ({"tools": [{"type": "x", "function": {}}]}, "Invalid value: 'x'."),
        ({"tool_choice": "auto"}, "'tool_choice' is only allowed when 'tools' are specified."),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "no function named 'nope'",
        ),
        (
            {"response_format": {"type": "json_schema"}},
            "Missing required parameter: 'response_format.json_schema'.",
        ),
    ],
)
def test_malformed_tools_choice_and_format_get_a_400(
    local_server: LocalProtocolServer, extra: dict[str, Any], message: str
) -> None:
    status, body, _ = post(local_server, chat({"role": "user", "content": "u"}, **extra))
    assert status == 400
    assert message in body["error"]["message"]
