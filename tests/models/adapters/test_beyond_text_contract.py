"""Beyond text, the same on all five adapters: tool calls, reasoning, structured output, images
and finish reasons, plain and streamed, sync and async, through the real connector and the
local protocol server (openai, anthropic and gemini through their official SDKs).

Each wire format's own details (its parsers at every chunk boundary, its strict-mode error
bodies) are tested beside its adapter; this suite checks what a caller relies on whatever the
provider: the same `Response` from every mode, and a tool loop that needs no provider code.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from rlm_code.core.exceptions import ModelError
from rlm_code.testing import LocalProtocolServer, ScriptedReply

from .beyond_text import (
    AWKWARD_PATH,
    MODES,
    PNG,
    TOOLS,
    call,
    last_body,
    strict_server,
    tool_loop,
    without_ids,
)
from .conftest import TARGET_IDS, TARGETS, Connect, Target, chat_requests

pytestmark = [
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

# The shared path only: each adapter's own suite sends the arguments with more fields.
ARGUMENTS = {"path": AWKWARD_PATH}
server = strict_server()


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_a_scripted_tool_call_round_trips_the_same_in_every_mode(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    responses = []
    for mode in MODES:
        server.queue_replies([ScriptedReply(tool_calls=[("read_file", ARGUMENTS)])])
        response = call(connector, mode, "read it", tools=TOOLS)
        [tool_call] = response.tool_calls
        assert tool_call.name == "read_file"
        assert tool_call.arguments == ARGUMENTS
        assert tool_call.arguments_json == json.dumps(ARGUMENTS, ensure_ascii=False)
        assert tool_call.id
        assert response.finish_reason == "tool_calls"
        assert response.usage.output_tokens is not None
        responses.append(without_ids(response))
    assert all(r == responses[0] for r in responses[1:]), "streamed and plain replies differ"
    ids = set()
    for mode in ("complete", "stream"):
        server.queue_replies([ScriptedReply(tool_calls=[("read_file", {"path": "a"})] * 2)])
        ids |= {c.id for c in call(connector, mode, "x", tools=TOOLS).tool_calls}
    assert len(ids) == 4, "tool call ids must be unique"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_a_three_turn_tool_loop_with_reasoning_passes_strict_servers(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    """The caller appends `resp.message` and the tool results and nothing provider-specific;
    the strict server refuses any conversation that dropped reasoning or a tool result."""
    connector = connect(target, server)
    messages: list[dict[str, Any]] = []
    tools_run: list[tuple[str, dict[str, Any]]] = []
    for question in (
        'call read_file {"path": "notes.txt"}',
        'call evaluate {"expression": "6*7"}',
        "thanks",
    ):
        messages.append({"role": "user", "content": question})
        replies = tool_loop(
            connector, mode, messages, lambda c: f"result of {c.name}", tools=TOOLS, reasoning="low"
        )
        assert all(r.reasoning for r in replies), "reasoning was asked for and the server sends it"
        tools_run += [(c.name, c.arguments) for r in replies for c in r.tool_calls]
    assert tools_run == [("read_file", {"path": "notes.txt"}), ("evaluate", {"expression": "6*7"})]
    final = messages[-1]
    assert final["role"] == "assistant" and not final.get("tool_calls")
    assert [m["content"] for m in messages if m["role"] == "assistant" and m["content"]][:1] == [
        "Tool result: result of read_file"
    ]


SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "count": {"type": "integer"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "done": {"type": "boolean"},
    },
    "required": ["title", "count", "tags", "done"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_a_json_schema_reply_validates(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    response = call(connector, mode, "describe it", response_format=SCHEMA)
    jsonschema.validate(response.json(), SCHEMA)
    assert response.tool_calls == [], "structured output is the reply text, not a tool call"
    body = last_body(target, server)
    assert json.dumps(SCHEMA["properties"]) in json.dumps(body)


def image_of(adapter: str, body: dict[str, Any]) -> Any:
    """The image of the last user turn, in the provider's own shape."""
    if adapter == "anthropic":
        return next(b for b in body["messages"][-1]["content"] if b["type"] == "image")["source"]
    if adapter == "gemini":
        blob = next(p for p in body["contents"][-1]["parts"] if "inlineData" in p)["inlineData"]
        # google-genai writes the fields inside a part by their proto names (`mime_type`);
        # the API reads both spellings.
        return {"mimeType" if k == "mime_type" else k: v for k, v in blob.items()}
    if adapter == "ollama":
        return body["messages"][-1]["images"]
    parts = body["messages"][-1]["content"]
    return next(p for p in parts if p["type"] == "image_url")["image_url"]["url"]


NATIVE_IMAGE = {
    "openai": f"data:image/png;base64,{PNG}",
    "openai_compatible": f"data:image/png;base64,{PNG}",
    "anthropic": {"type": "base64", "media_type": "image/png", "data": PNG},
    "gemini": {"mimeType": "image/png", "data": PNG},
    "ollama": [PNG],
}


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_an_image_reaches_each_provider_in_its_native_shape(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        }
    ]
    for mode in ("complete", "stream"):
        response = call(connector, mode, messages=messages)
        assert response.text == "Echo: what is this"
        assert image_of(target.adapter, last_body(target, server)) == NATIVE_IMAGE[target.adapter]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_max_tokens_cutting_a_reply_is_length(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    response = call(connector, mode, "one two three four five six", max_tokens=2)
    assert response.finish_reason == "length"
    assert response.text == "Echo: one"
    assert connector.get_usage_summary()["last_call"]["finish_reason"] == "length"


@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_required_tool_choice_makes_a_call_or_is_refused_before_io(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    """A setting is honoured or refused with a typed error before any request; never dropped."""
    connector = connect(target, server)
    before = len(chat_requests(target, server))
    try:
        response = connector.complete("go", tools=TOOLS, tool_choice={"name": "evaluate"})
    except ModelError as exc:
        assert type(exc).__name__ == "UnsupportedParameterError"
        assert len(chat_requests(target, server)) == before
        return
    assert [c.name for c in response.tool_calls] == ["evaluate"]
