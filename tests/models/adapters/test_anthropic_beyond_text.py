"""The anthropic adapter beyond text, end to end: tool calls, thinking with signatures,
structured output, images and finish reasons, plain and streamed, sync and async, through the
connector against the local server speaking the Messages API (strict where it matters).

The stream parser on bytes cut at arbitrary places is in `test_anthropic_stream_parser`.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from rlm_code.core.exceptions import (
    ModelError,
    ProviderError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._tool_calls import canonical_json
from rlm_code.models.types import (
    ReasoningDelta,
    ToolCallDelta,
    ToolCallDone,
)
from rlm_code.testing import LocalProtocolServer, ScriptedReply, run_local_server

from .beyond_text import MODES, call, call_with_events, read_into, tool_loop, without_ids
from .beyond_text import last_body as shared_last_body
from .conftest import TARGET_IDS, TARGETS, Connect, chat_requests

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SDK model notices

TARGET = TARGETS[TARGET_IDS.index("anthropic")]
TOOLS = [
    {
        "name": "lookup",
        "description": "Look a thing up.",
        "parameters": {
            "type": "object",
            "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
            "required": ["q"],
        },
    }
]
ARGS = {"q": 'say "hi" — café 日本 \\ back', "n": 3}  # unicode, escaped quotes, a backslash
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "score": {"type": "integer"}},
    "required": ["answer", "score"],
}


@pytest.fixture
def strict_server() -> Any:
    with run_local_server(strict=True) as server:
        yield server


def last_body(server: LocalProtocolServer) -> dict[str, Any]:
    return shared_last_body(TARGET, server)


# -- tool calls ---------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_tool_call_round_trips_with_its_exact_name_and_arguments(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    compact = '{"q":"a \\"quoted\\" wörd","n":1}'  # the API sends objects: re-written canonically
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", ARGS), ("lookup", compact)])])

    response, events = call_with_events(
        connector, mode, prompt="look it up", tools=TOOLS, verbatim=False
    )

    assert response.finish_reason == "tool_calls"
    assert response.raw_finish_reason == "tool_use"
    assert response.text == ""
    first, second = response.tool_calls
    assert (first.name, first.arguments) == ("lookup", ARGS)
    assert first.arguments_json == canonical_json(ARGS) == json.dumps(ARGS, ensure_ascii=False)
    assert second.arguments == json.loads(compact)
    assert second.arguments_json == '{"q": "a \\"quoted\\" wörd", "n": 1}'
    assert first.id.startswith("toolu_") and first.id != second.id
    tool = last_body(fresh_server)["tools"][0]
    assert tool == {
        "name": "lookup",
        "description": "Look a thing up.",
        "input_schema": TOOLS[0]["parameters"],
    }
    if mode in ("stream", "astream"):
        deltas = [e for e in events if isinstance(e, ToolCallDelta)]
        assert [(d.index, d.id, d.name) for d in deltas if d.id] == [
            (0, first.id, "lookup"),
            (1, second.id, "lookup"),
        ]
        joined = "".join(d.arguments_fragment for d in deltas if d.index == 0)
        assert json.loads(joined) == ARGS
        assert [e.tool_call for e in events if isinstance(e, ToolCallDone)] == [first, second]
    assert response.message["tool_calls"][0]["function"] == {
        "name": "lookup",
        "arguments": first.arguments_json,
    }


@pytest.mark.parametrize("streamed, plain", [("stream", "complete"), ("astream", "acomplete")])
def test_a_streamed_reply_equals_the_plain_one(
    streamed: str, plain: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    scripted = ScriptedReply(
        text="Let me look — ça va 日本.",
        tool_calls=[("lookup", ARGS), ("lookup", {})],
        reasoning="I should call «lookup» twice.",
    )
    fresh_server.queue_replies([scripted, scripted])
    options: dict[str, Any] = {"prompt": "go", "tools": TOOLS, "reasoning": "low"}

    whole = call(connector, plain, **options)
    streamed_response, events = call_with_events(connector, streamed, **options)

    assert without_ids(streamed_response) == without_ids(whole)
    assert whole.reasoning == "I should call «lookup» twice."
    assert whole.tool_calls[1].arguments_json == "{}"
    [detail] = whole.reasoning_details
    assert detail["type"] == "thinking" and detail["signature"]
    assert "".join(e.text for e in events if isinstance(e, ReasoningDelta)) == whole.reasoning
    assert whole.usage.input_tokens is not None and whole.usage.output_tokens is not None


# -- a tool loop with thinking against strict mode ------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_three_turn_tool_loop_with_thinking_passes_strict_mode(
    mode: str, connect: Connect, strict_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, strict_server)
    strict_server.queue_replies(
        [
            ScriptedReply(tool_calls=[("lookup", {"q": "a"})]),
            ScriptedReply(text="Now b.", tool_calls=[("lookup", {"q": "b"})]),
        ]
    )

    messages: list[dict[str, Any]] = [{"role": "user", "content": "find a then b"}]
    replies = tool_loop(
        connector,
        mode,
        messages,
        lambda c: f"result for {c.arguments['q']}",
        tools=TOOLS,
        reasoning="low",
    )

    assert len(replies) == 3  # two tool calls, then the answer
    final = replies[-1]
    assert final.text == "Tool result: result for b"
    assert final.finish_reason == "stop"
    assert final.reasoning == "Thinking about: result for b"
    body = last_body(strict_server)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 1024}
    assert body["max_tokens"] == 1024 + 4096
    replayed = body["messages"][3]  # the second assistant turn: thinking, text, tool_use
    assert [block["type"] for block in replayed["content"]] == ["thinking", "text", "tool_use"]
    assert replayed["content"][0]["thinking"] == "Thinking about: result for a"
    results = body["messages"][4]
    assert results["role"] == "user"
    assert results["content"][0]["type"] == "tool_result"
    assert results["content"][0]["content"] == "result for b"


def _drop_reasoning(messages: list[dict[str, Any]]) -> None:
    messages[1].pop("reasoning_details")


def _drop_result(messages: list[dict[str, Any]]) -> None:
    messages[2] = {"role": "user", "content": "and now?"}


def _forge_signature(messages: list[dict[str, Any]]) -> None:
    messages[1]["reasoning_details"][0]["signature"] = "Zm9yZ2Vk"


BREAKAGES = {
    "dropped_reasoning": (
        _drop_reasoning,
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        "`tool_use`. When `thinking` is enabled, a final `assistant` message must start with a "
        "thinking block",
    ),
    "dropped_tool_result": (
        _drop_result,
        "messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: ",
    ),
    "forged_signature": (_forge_signature, "messages.1.content.0: Invalid `signature` in"),
}


@pytest.mark.parametrize("broken", sorted(BREAKAGES))
@pytest.mark.parametrize("mode", MODES)
def test_a_tool_loop_that_drops_what_the_api_needs_fails_like_the_api(
    mode: str, broken: str, connect: Connect, strict_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, strict_server)
    strict_server.queue_replies([ScriptedReply(tool_calls=[("lookup", {"q": "a"})])])
    first = call(connector, "complete", prompt="find a", tools=TOOLS, reasoning="low")
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "find a"},
        first.message,
        {"role": "tool", "tool_call_id": first.tool_calls[0].id, "content": "found"},
    ]
    spoil, said = BREAKAGES[broken]
    spoil(messages)
    sent = len(chat_requests(TARGET, strict_server))

    with pytest.raises(ProviderError) as info:
        call(connector, mode, messages=messages, tools=TOOLS, reasoning="low")

    assert info.value.status_code == 400
    assert said in str(info.value)
    assert len(chat_requests(TARGET, strict_server)) == sent + 1  # a 400 is not retried


# -- structured output, images, finish reasons --------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_json_schema_reply_validates(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)

    response = call(connector, mode, prompt="rate this", response_format=SCHEMA)

    jsonschema.validate(response.json(), SCHEMA)
    output = last_body(fresh_server)["output_config"]["format"]
    assert output["type"] == "json_schema"
    assert output["schema"]["additionalProperties"] is False  # the SDK's own transform
    assert output["schema"]["properties"] == SCHEMA["properties"]


@pytest.mark.parametrize("mode", ["complete", "astream"])
def test_images_reach_the_server_as_image_blocks(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        }
    ]

    response = call(connector, mode, messages=messages)

    assert response.text == "Echo: what is in"
    assert last_body(fresh_server)["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is in"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            ],
        }
    ]


@pytest.mark.parametrize("mode", MODES)
def test_a_reply_cut_by_max_tokens_finishes_for_length(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)

    response = call(connector, mode, prompt="one two three four", max_tokens=2)

    assert response.text == "Echo: one"
    assert (response.finish_reason, response.raw_finish_reason) == ("length", "max_tokens")


# -- broken tool calls -------------------------------------------------------------------------

LONG_ARGS = {"q": " ".join(f'wörd{i} "q"' for i in range(12))}


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_cut_inside_a_calls_arguments_is_a_typed_error(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", LONG_ARGS)])] * 3)
    fresh_server.script_faults(["truncate"] * 3)
    seen: list[Any] = []

    with pytest.raises(ProviderError):
        read_into(seen, connector, mode, "go", tools=TOOLS)

    fragments = [e for e in seen if isinstance(e, ToolCallDelta)]
    assert fragments, "the cut should come after the call started"
    assert json.dumps(LONG_ARGS, ensure_ascii=False) != "".join(
        f.arguments_fragment for f in fragments
    )
    assert not [e for e in seen if isinstance(e, ToolCallDone)]  # never a half-parsed call


@pytest.mark.parametrize("mode", ["complete", "acomplete"])
def test_a_whole_reply_cut_inside_a_call_is_a_typed_error(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", LONG_ARGS)])] * 3)
    fresh_server.script_faults(["truncate"] * 3)
    with pytest.raises(ModelError):
        call(connector, mode, prompt="go", tools=TOOLS)


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_without_its_end_marker_after_a_call_is_a_typed_error(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", LONG_ARGS)])])
    fresh_server.script_faults(["no_terminator"])
    with pytest.raises(ProviderError, match="message_stop"):
        call(connector, mode, prompt="go", tools=TOOLS)


@pytest.mark.parametrize("mode", MODES)
def test_arguments_that_are_not_json_are_a_typed_error(
    mode: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", '{"q": "unterminated')])])
    with pytest.raises(ResponseFormatError, match="lookup"):
        call(connector, mode, prompt="go", tools=TOOLS)


# -- refused before any I/O, and what goes on the wire -------------------------------------------


@pytest.mark.parametrize(
    "options, setting",
    [
        ({"temperature": 0.2}, "temperature"),
        ({"tool_choice": "required"}, 'tool_choice "required"'),
        ({"tool_choice": {"name": "lookup"}}, 'tool_choice "tool"'),
        ({"max_tokens": 1024}, "max_tokens=1024"),
    ],
)
def test_what_the_api_refuses_with_thinking_is_refused_before_sending(
    options: dict[str, Any], setting: str, connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    sent = len(chat_requests(TARGET, fresh_server))
    with pytest.raises(UnsupportedParameterError, match="anthropic") as info:
        connector.complete("go", tools=TOOLS, reasoning="low", **options)
    assert setting in str(info.value)
    assert len(chat_requests(TARGET, fresh_server)) == sent


@pytest.mark.parametrize(
    "choice, sent",
    [
        ("auto", {"type": "auto"}),
        ("none", {"type": "none"}),
        ("required", {"type": "any"}),
        ({"name": "lookup"}, {"type": "tool", "name": "lookup"}),
    ],
)
def test_tool_choice_in_the_apis_words(
    choice: Any, sent: dict[str, Any], connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    connector.complete("hello", tools=TOOLS, tool_choice=choice)
    assert last_body(fresh_server)["tool_choice"] == sent


def test_a_tool_turn_batch_is_one_user_message_and_thinking_is_replayed_verbatim(
    connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    call = {"id": "toolu_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}
    other = {**call, "id": "toolu_2", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
    thinking = {"type": "thinking", "thinking": "hm", "signature": "c2ln", "extra": 1}
    redacted = {"type": "redacted_thinking", "data": "b3BhcXVl"}
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "two calls",
            "tool_calls": [call, other],
            "reasoning_details": [thinking, {"type": "reasoning.text", "text": "x"}, redacted],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "one"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "two"},
    ]

    response = connector.complete(messages=messages, tools=TOOLS, max_tokens=50)

    assert response.text == "Tool result: one; two"
    sent = last_body(fresh_server)["messages"]
    assert sent[1]["content"] == [
        thinking,  # verbatim, extra keys included; another provider's detail is not sent
        redacted,
        {"type": "text", "text": "two calls"},
        {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"q": "x"}},
    ]
    assert sent[2:] == [
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "one"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "two"},
            ],
        }
    ]


def test_reasoning_maps_to_a_thinking_budget(
    connect: Connect, fresh_server: LocalProtocolServer
) -> None:
    connector = connect(TARGET, fresh_server)
    connector.complete("go", reasoning=2000, max_tokens=3000)
    assert last_body(fresh_server)["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert last_body(fresh_server)["max_tokens"] == 3000
    connector.complete("go", reasoning=10)  # raised to the API's minimum
    assert last_body(fresh_server)["thinking"]["budget_tokens"] == 1024
    connector.complete("go", tool_choice="auto")  # no tools: nothing to choose among
    assert "tool_choice" not in last_body(fresh_server)
