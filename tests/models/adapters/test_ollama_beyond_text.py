"""The ollama adapter beyond text: tool calls, reasoning (`think` / `thinking`), structured
output (`format`), images, finish reasons, plain and streamed, sync and async, through the real
connector and the local protocol server; and its NDJSON reader at every chunk boundary.

The five-adapter contract suite (`test_beyond_text_contract`) checks what every provider
shares; this file checks Ollama's own shapes and choices (see `_ollama_wire`).
"""

from __future__ import annotations

import base64
import json
import re
import urllib.request
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlm_code.core.exceptions import (
    InvalidInputError,
    ModelError,
    ProviderError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._ollama_wire import chat_payload, takes_think_levels
from rlm_code.models.adapters.ollama import NDJSONParser, parse_message
from rlm_code.models.prompting import build_chat_request
from rlm_code.models.streaming import ResponseStream
from rlm_code.models.types import (
    AdapterEvent,
    GenerationParams,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
)
from rlm_code.testing import LocalProtocolServer, ScriptedReply

from .beyond_text import (
    ARGUMENTS,
    MODES,
    READ_FILE,
    REPLY,
    TOOLS,
    call,
    call_with_events,
    parse_chunks,
    read_into,
    strict_server,
    without_ids,
)
from .conftest import Connect, Target, chat_requests, cut_at

OLLAMA = Target("ollama", "ollama", "llama3.2", None, False)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nnot really a png").decode()
server = strict_server(models=["gpt-oss:20b"])


def request_of(prompt: str = "hi", model: str = "llama3.2", **options: Any) -> Any:
    params = GenerationParams(
        options.pop("temperature", None), options.pop("max_tokens", None), None, None
    )
    messages = options.pop("messages", None)
    return build_chat_request(
        model, None if messages else prompt, messages, None, params, **options
    )


# -- the request --------------------------------------------------------------------------------


def test_a_conversation_goes_out_in_ollamas_shape() -> None:
    request = request_of(
        messages=[
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is "},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "text", "text": "this?"},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning": "look at it",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "read_file", "arguments": '{"path": "ä"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "file text"},
        ],
        tools=TOOLS,
        response_format={"type": "object", "properties": {"a": {"type": "string"}}},
        reasoning="high",
    )
    body = chat_payload(request, True)
    assert body["messages"] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "what is this?", "images": [PNG]},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "call_1", "function": {"name": "read_file", "arguments": {"path": "ä"}}}
            ],
            "thinking": "look at it",
        },
        {
            "role": "tool",
            "content": "file text",
            "tool_name": "read_file",
            "tool_call_id": "call_1",
        },
    ]
    # name, description and parameters as given, in chat completions' function wrapper
    assert body["tools"][0] == {"type": "function", "function": READ_FILE}
    assert body["format"] == {"type": "object", "properties": {"a": {"type": "string"}}}
    assert body["think"] is True  # llama3.2 takes a boolean, never a level
    assert body["stream"] is True


def test_a_plain_request_has_no_beyond_text_fields() -> None:
    body = chat_payload(request_of("hi", temperature=0.5, max_tokens=9), False)
    assert body == {
        "model": "llama3.2",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": False,
        "options": {"temperature": 0.5, "num_predict": 9},
    }


@pytest.mark.parametrize(
    ("reasoning", "think"), [("low", "low"), ("high", "high"), (500, "low"), (6000, "medium")]
)
def test_gpt_oss_takes_a_think_level(reasoning: object, think: str) -> None:
    assert takes_think_levels("gpt-oss:20b") and takes_think_levels("library/GPT-OSS:120b")
    assert not takes_think_levels("qwen3:8b")
    body = chat_payload(request_of(model="gpt-oss:20b", reasoning=reasoning), False)
    assert body["think"] == think
    assert chat_payload(request_of(model="qwen3:8b", reasoning=reasoning), False)["think"] is True


def test_tool_choice_none_sends_no_tools_and_auto_sends_them() -> None:
    assert "tools" not in chat_payload(request_of(tools=TOOLS, tool_choice="none"), False)
    assert len(chat_payload(request_of(tools=TOOLS, tool_choice="auto"), False)["tools"]) == 2


@pytest.mark.parametrize("choice", ["required", {"name": "evaluate"}])
def test_forcing_a_tool_is_refused_before_any_request(
    choice: object, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OLLAMA, server)
    before = len(chat_requests(OLLAMA, server))
    for mode in MODES:
        with pytest.raises(UnsupportedParameterError, match="tool_choice") as caught:
            call(connector, mode, "go", tools=TOOLS, tool_choice=choice)
        assert "ollama" in str(caught.value) and caught.value.provider == "ollama"
    assert len(chat_requests(OLLAMA, server)) == before


def test_an_image_url_is_refused_before_any_request(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OLLAMA, server)
    before = len(chat_requests(OLLAMA, server))
    messages = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}}],
        }
    ]
    for mode in MODES:
        with pytest.raises(UnsupportedParameterError, match="base64") as caught:
            call(connector, mode, messages=messages)
        assert isinstance(caught.value, InvalidInputError)
    assert len(chat_requests(OLLAMA, server)) == before


def test_an_image_reaches_the_server_as_base64_beside_the_text(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OLLAMA, server)
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "see"}, image]}]
    for mode in MODES:
        response = call(connector, mode, messages=messages)
        assert response.text == "Echo: see"
        body = server.requests[-1].json
        assert body is not None and body["messages"][-1] == {
            "role": "user",
            "content": "see",
            "images": [PNG],
        }


# -- replies through the connector ----------------------------------------------------------------


def test_tool_calls_with_reasoning_and_text_are_the_same_in_every_mode(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OLLAMA, server)
    responses = []
    for mode in MODES:
        server.queue_replies([REPLY])
        response, events = call_with_events(
            connector, mode, "read it", tools=TOOLS, reasoning="low"
        )
        assert response.text == "Let me read ünïcode first."
        assert response.reasoning == "The user wants → the file; I'll read it."
        first, second = response.tool_calls
        assert (first.name, first.arguments, first.arguments_json) == (
            "read_file",
            ARGUMENTS,
            json.dumps(ARGUMENTS, ensure_ascii=False),
        )
        assert (second.name, second.arguments_json) == ("evaluate", '{"expression": "6 * 7"}')
        assert re.fullmatch(r"call_[0-9a-f]{8}", first.id), "the server's id is used as given"
        assert response.finish_reason == "tool_calls" and response.raw_finish_reason == "stop"
        assert response.usage.input_tokens is not None and response.usage.output_tokens
        assert response.message["tool_calls"][0]["function"]["arguments"] == first.arguments_json
        if events:
            kinds = [e.type for e in events]
            assert kinds.index("reasoning_delta") < kinds.index("text_delta")
            assert kinds.index("text_delta") < kinds.index("tool_call_delta")
            deltas = [e for e in events if e.type == "tool_call_delta"]
            assert [(d.index, d.name) for d in deltas] == [(0, "read_file"), (1, "evaluate")]
            assert deltas[0].arguments_fragment == first.arguments_json
            assert [e.tool_call for e in events if e.type == "tool_call_done"] == [first, second]
        responses.append(without_ids(response))
    assert all(r == responses[0] for r in responses[1:]), "streamed and plain replies differ"


def test_the_three_turn_tool_loop_sends_thinking_and_tool_results_back(
    server: LocalProtocolServer, connect: Connect
) -> None:
    """The caller appends `resp.message` and the results; the next request carries the
    assistant's `thinking` and `tool_calls` (arguments as an object) and `tool_name`."""
    connector = connect(OLLAMA, server)
    for mode in MODES:
        messages: list[dict[str, Any]] = []
        for question in ('call read_file {"path": "notes.txt"}', "thanks"):
            messages.append({"role": "user", "content": question})
            response = call(connector, mode, messages=messages, tools=TOOLS, reasoning="low")
            assert response.reasoning
            messages.append(response.message)
            for tool_call in response.tool_calls:
                content = f"result of {tool_call.name}"
                messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": content})
                response = call(connector, mode, messages=messages, tools=TOOLS, reasoning="low")
                assert response.text == "Tool result: result of read_file"
                messages.append(response.message)
                body = server.requests[-1].json
                assert body is not None
                assistant, tool = body["messages"][1], body["messages"][2]
                assert (
                    assistant["thinking"] == 'Thinking about: call read_file {"path": "notes.txt"}'
                )
                assert assistant["tool_calls"] == [
                    {
                        "id": tool_call.id,
                        "function": {"name": "read_file", "arguments": {"path": "notes.txt"}},
                    }
                ]
                assert tool == {
                    "role": "tool",
                    "content": "result of read_file",
                    "tool_name": "read_file",
                    "tool_call_id": tool_call.id,
                }
        assert messages[-1]["content"] == "Echo: thanks"
        assert len(messages) == 6


def test_ollama_refuses_no_conversation_that_drops_reasoning_or_a_result(
    server: LocalProtocolServer, connect: Connect
) -> None:
    """Ollama checks neither: even the strict server answers (no fake strictness)."""
    connector = connect(OLLAMA, server)
    call_turn = {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "read_file", "arguments": "{}"}}
        ],
    }
    messages = [{"role": "user", "content": "call read_file"}, call_turn]
    messages.append({"role": "user", "content": "and now?"})
    response = call(connector, "complete", messages=messages, tools=TOOLS, reasoning="low")
    assert response.text == "Echo: and now?"


@pytest.mark.parametrize("mode", MODES)
def test_a_json_schema_reply_validates(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    schema = {
        "type": "object",
        "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["title", "n"],
    }
    connector = connect(OLLAMA, server)
    response = call(connector, mode, "name it", response_format=schema)
    jsonschema.validate(response.json(), schema)
    assert response.json()["title"] == "Echo: name it"
    body = server.requests[-1].json
    assert body is not None and body["format"] == schema


@pytest.mark.parametrize("mode", MODES)
def test_gpt_oss_gets_a_level_and_other_models_a_boolean(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    """The server answers a level sent to any other model with Ollama's 400."""
    for model, think in (("gpt-oss:20b", "high"), ("llama3.2", True)):
        connector = connect(replace(OLLAMA, model=model), server)
        response = call(connector, mode, "why", reasoning="high")
        assert response.reasoning == "Thinking about: why"
        body = server.requests[-1].json
        assert body is not None and body["think"] == think


@pytest.mark.parametrize("mode", MODES)
def test_max_tokens_cutting_a_reply_is_length(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OLLAMA, server)
    response = call(connector, mode, "one two three four", max_tokens=3, reasoning="low")
    assert (response.text, response.finish_reason) == ("Echo: one two", "length")
    assert response.raw_finish_reason == "length"


@pytest.mark.parametrize("fault", ["truncate", "no_terminator"])
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_cut_inside_tool_arguments_is_a_typed_error(
    fault: str, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    """No finished call is ever handed over from a stream that did not end."""
    connector = connect(OLLAMA, server)
    server.queue_replies([ScriptedReply(tool_calls=[("read_file", ARGUMENTS)])])
    server.script_faults([fault])
    seen: list[Any] = []
    with pytest.raises(ModelError) as caught:
        read_into(seen, connector, mode, "x", tools=TOOLS)
    assert isinstance(caught.value, ProviderError)
    expected = "end marker" if fault == "no_terminator" else "closed the connection"
    assert expected in str(caught.value)
    assert not any(isinstance(e, ToolCallDone) for e in seen)
    assert server.pending_faults() == []


def test_a_whole_reply_cut_inside_tool_arguments_is_a_typed_error(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OLLAMA, server)
    for mode in ("complete", "acomplete"):
        server.queue_replies([ScriptedReply(tool_calls=[("read_file", ARGUMENTS)])])
        server.script_faults(["truncate"])
        with pytest.raises(ProviderError, match="closed the connection"):
            call(connector, mode, "x", tools=TOOLS)


# -- the reader ---------------------------------------------------------------------------------


def test_calls_without_ids_get_unique_ones_and_bad_arguments_are_typed() -> None:
    data = {
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "f", "arguments": {"a": 1}}},
                {"function": {"name": "f", "arguments": {}}},
            ],
        },
        "done": True,
        "done_reason": "stop",
    }
    events = parse_message(data, "ollama")
    done = [e.tool_call for e in events if isinstance(e, ToolCallDone)]
    assert [c.arguments_json for c in done] == ['{"a": 1}', "{}"]
    assert len({c.id for c in done}) == 2 and all(c.id.startswith("call_") for c in done)
    for bad in ([1, 2], "not json", None):
        broken = json.loads(json.dumps(data))
        broken["message"]["tool_calls"] = [{"function": {"name": "f", "arguments": bad}}]
        if bad is None:
            del broken["message"]["tool_calls"][0]["function"]["arguments"]
            assert parse_message(broken, "o")[1].tool_call.arguments == {}  # type: ignore[union-attr]
            continue
        with pytest.raises(ResponseFormatError, match="'f'"):
            parse_message(broken, "o")
    bad_calls: object
    for bad_calls in ({"x": 1}, [{"function": "f"}], [{"function": {"arguments": {}}}]):
        broken = {"message": {"role": "assistant", "content": "", "tool_calls": bad_calls}}
        with pytest.raises(ResponseFormatError):
            parse_message(broken, "o")
    with pytest.raises(ResponseFormatError, match="thinking"):
        parse_message({"message": {"role": "assistant", "content": "", "thinking": 3}}, "o")


def test_tool_calls_finish_only_with_the_done_object() -> None:
    parser = NDJSONParser("ollama")
    line = {
        "message": {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"id": "call_x", "function": {"name": "f", "arguments": {"k": "v"}}}],
        },
        "done": False,
    }
    events = parser.feed(json.dumps(line).encode() + b"\n")
    assert events == [ToolCallDelta(0, "call_x", "f", '{"k": "v"}')]
    end = parser.feed(b'{"message":{"role":"assistant","content":""},"done":true}\n')
    assert [type(e) for e in end] == [ToolCallDone, StreamEnd]


def _stream_body(server: LocalProtocolServer) -> bytes:
    server.queue_replies([REPLY])
    body = json.dumps(
        {"model": "llama3.2", "messages": [{"role": "user", "content": "x"}], "think": True}
    ).encode()
    request = urllib.request.Request(f"{server.base_url}/api/chat", data=body)
    with urllib.request.urlopen(request, timeout=5) as answer:
        data: bytes = answer.read()
    return data


def _events(chunks: list[bytes]) -> list[AdapterEvent]:
    return parse_chunks(NDJSONParser("ollama"), chunks)


@pytest.fixture(scope="module")
def stream_body(server: LocalProtocolServer) -> bytes:
    return _stream_body(server)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_chunking_of_a_stream_gives_the_same_events(stream_body: bytes, data: Any) -> None:
    """Cuts anywhere: inside JSON strings, escapes, multi-byte UTF-8 and the arguments."""
    whole = _events([stream_body])
    assert [type(e) for e in whole].count(ToolCallDone) == 2
    assert any(isinstance(e, ReasoningDelta) for e in whole)
    assert any(isinstance(e, TextDelta) for e in whole)
    cuts = data.draw(
        st.lists(st.integers(0, len(stream_body)), max_size=12).map(sorted), label="cuts"
    )
    assert _events(cut_at(stream_body, cuts)) == whole


def test_every_single_byte_cut_gives_the_same_response(stream_body: bytes) -> None:
    whole = _events([stream_body])
    stream = ResponseStream(iter(whole), "ollama", "llama3.2")
    list(stream)
    expected = stream.response
    utf8_inside = [i for i, byte in enumerate(stream_body) if 0x80 <= byte < 0xC0]
    assert utf8_inside, "the body has multi-byte characters to cut inside"
    for cut in range(len(stream_body) + 1):
        events = _events([stream_body[:cut], stream_body[cut:]])
        assert events == whole, cut
    assert expected.complete and expected.finish_reason == "tool_calls"
    assert expected.tool_calls[0].arguments == ARGUMENTS


# -- inline <think> ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_an_inline_think_block_is_reasoning_in_every_mode(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    """A reasoning model on an Ollama that does not parse thinking: the same split whole and
    streamed (the stream cuts the block into several lines)."""
    connector = connect(OLLAMA, server)
    server.queue_replies([ScriptedReply(text="<think>I weigh ✓ it\ntwice</think>\n\nThe answer.")])
    response, events = call_with_events(connector, mode, "q")
    assert (response.reasoning, response.text) == ("I weigh ✓ it\ntwice", "The answer.")
    if events:
        assert len([e for e in events if e.type == "reasoning_delta"]) > 1
    server.queue_replies([ScriptedReply(text="Use <think> tags </think> like this.")])
    response = call(connector, mode, "q")
    assert (response.reasoning, response.text) == (None, "Use <think> tags </think> like this.")


def test_content_that_only_might_open_a_tag_is_text_at_the_end() -> None:
    parser = NDJSONParser("ollama")
    events = parser.feed(b'{"message":{"role":"assistant","content":" <thi"},"done":false}\n')
    assert events == []
    end = parser.feed(b'{"message":{"role":"assistant","content":""},"done":true}\n')
    assert end == [TextDelta(" <thi"), StreamEnd(None, None)]
    cut = parse_message({"message": {"role": "assistant", "content": "<think>cut off"}}, "o")
    assert cut == [ReasoningDelta("cut off")]


THINK_BODY = (
    b"".join(
        json.dumps({"message": {"role": "assistant", "content": piece}, "done": False}).encode()
        + b"\n"
        for piece in [
            "\n<thi",
            "nk>r\u00e9son ",
            "\u2192 \U0001f680</th",
            "ink>\n\nAnsw",
            "er \u00e9",
        ]
    )
    + b'{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}\n'
)


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(0, len(THINK_BODY)), max_size=10).map(sorted))
def test_a_think_block_splits_the_same_at_any_chunking(cuts: list[int]) -> None:
    events = _events(cut_at(THINK_BODY, cuts))
    stream = ResponseStream(iter(events), "ollama", "m")
    list(stream)
    reply = stream.response
    assert (reply.reasoning, reply.text) == ("r\u00e9son \u2192 \U0001f680", "Answer \u00e9")
