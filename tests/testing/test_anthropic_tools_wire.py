"""The Anthropic Messages wire format beyond text, driven with the official `anthropic` SDK:
tools and tool choice, thinking blocks with signatures, structured output, tool results,
images, the stream frames of each block, and the API's real 400s (always, and in strict mode).
"""

from __future__ import annotations

import json
import socket
from typing import Any

import anthropic
import pytest

from rlm_code.testing import LocalProtocolServer, ScriptedReply, run_local_server
from rlm_code.testing.scripted import signature_of

from .conftest import Clients

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's model notices

MODEL = "claude-sonnet-4-5-20250929"
TOOL = {
    "name": "lookup",
    "description": "Look a thing up.",
    "input_schema": {
        "type": "object",
        "properties": {"q": {"type": "string"}, "n": {"type": "integer"}},
        "required": ["q"],
    },
}
ARGS = {"q": 'naïve "quoted" \\ 日本 🚀', "n": 2}
THINKING = {"type": "enabled", "budget_tokens": 1024}
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)


@pytest.fixture
def strict_server() -> Any:
    with run_local_server(strict=True) as server:
        yield server


def create(client: Any, **kwargs: Any) -> Any:
    options = {"model": MODEL, "max_tokens": 2048, **kwargs}
    return client.messages.create(**options)


def refused(client: Any, **kwargs: Any) -> str:
    """The message of the 400 the request gets (its body has Anthropic's error shape)."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        create(client, **kwargs)
    body = caught.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert body["request_id"].startswith("req_")
    return str(body["error"]["message"])


# -- replies ------------------------------------------------------------------------------------


def test_a_tool_call_with_thinking_as_content_blocks(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(fresh_server)
    fresh_server.queue_replies([ScriptedReply(text="Looking.", tool_calls=[("lookup", ARGS)])])

    message = create(
        client, tools=[TOOL], thinking=THINKING, messages=[{"role": "user", "content": "go"}]
    )

    assert [block.type for block in message.content] == ["thinking", "text", "tool_use"]
    thinking, text, call = message.content
    assert thinking.thinking == "Thinking about: go"
    assert thinking.signature == signature_of("Thinking about: go")
    assert text.text == "Looking."
    assert call.id.startswith("toolu_") and call.name == "lookup" and call.input == ARGS
    assert message.stop_reason == "tool_use"
    request = fresh_server.requests[-1].json
    assert request["thinking"] == THINKING


def test_the_stream_sends_each_block_as_the_api_does(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(fresh_server)
    scripted = ScriptedReply(text="Looking.", tool_calls=[("lookup", ARGS)], reasoning="a b c")
    fresh_server.queue_replies([scripted, scripted])
    options: dict[str, Any] = {
        "tools": [TOOL],
        "thinking": THINKING,
        "messages": [{"role": "user", "content": "go"}],
    }

    whole = create(client, **options)
    events = list(create(client, stream=True, **options))

    def kind(event: Any) -> tuple[str, Any]:
        if event.type == "content_block_delta":
            return event.type, event.delta.type
        return event.type, getattr(event, "index", None)

    pieces = [e.delta.partial_json for e in events if kind(e)[1] == "input_json_delta"]
    assert [kind(e) for e in events] == [
        ("message_start", None),
        ("content_block_start", 0),
        *[("content_block_delta", "thinking_delta")] * 3,
        ("content_block_delta", "signature_delta"),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", "text_delta"),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        *[("content_block_delta", "input_json_delta")] * len(pieces),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    thinking_start, call_start = events[1].content_block, events[10].content_block
    assert (thinking_start.thinking, thinking_start.signature) == ("", "")
    assert (call_start.type, call_start.name, call_start.input) == ("tool_use", "lookup", {})
    assert call_start.id.startswith("toolu_")
    assert pieces[0] == "" and len(pieces) > 2  # as the API: an empty first piece
    assert "".join(pieces) == json.dumps(ARGS, ensure_ascii=False)
    assert events[5].delta.signature == signature_of("a b c")
    assert events[-2].delta.stop_reason == "tool_use"

    fresh_server.queue_replies([scripted])
    with client.messages.stream(model=MODEL, max_tokens=2048, **options) as stream:
        final = stream.get_final_message()  # the SDK's own accumulation of the deltas
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature == whole.content[0].signature
    assert final.content[2].input == whole.content[2].input == ARGS


def test_tool_choice_any_and_named_use_the_conventions(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(fresh_server)
    other = {**TOOL, "name": "other"}
    user = [{"role": "user", "content": "no call line here"}]

    forced = create(client, tools=[TOOL, other], tool_choice={"type": "any"}, messages=user)
    named = create(
        client, tools=[TOOL, other], tool_choice={"type": "tool", "name": "other"}, messages=user
    )
    none = create(client, tools=[TOOL], tool_choice={"type": "none"}, messages=user)

    assert [(b.type, b.name, b.input) for b in forced.content] == [
        ("tool_use", "lookup", {"q": "text", "n": 1})
    ]
    assert [(b.type, b.name) for b in named.content] == [("tool_use", "other")]
    assert [b.type for b in none.content] == ["text"] and none.stop_reason == "end_turn"


def test_tool_results_and_structured_output(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(fresh_server)
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", {"q": "a"})] * 2)])
    first = create(client, tools=[TOOL], messages=[{"role": "user", "content": "go"}])
    results = [
        {"type": "tool_result", "tool_use_id": block.id, "content": text}
        for block, text in zip(
            first.content, ["one", [{"type": "text", "text": "two"}]], strict=True
        )
    ]
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": results},
    ]
    answer = create(client, tools=[TOOL], messages=history)
    assert answer.content[0].text == "Tool result: one; two"

    schema = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    user = [{"role": "user", "content": "name it"}]
    native = create(
        client, messages=user, output_config={"format": {"type": "json_schema", "schema": schema}}
    )
    assert json.loads(native.content[0].text) == {"title": "Echo: name it"}
    beta = create(
        client,
        messages=user,
        extra_body={"output_format": {"type": "json_schema", "schema": schema}},
    )
    assert json.loads(beta.content[0].text) == {"title": "Echo: name it"}


def test_images_are_accepted_and_recorded(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(fresh_server)
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "describe"},
    ]
    message = create(client, messages=[{"role": "user", "content": content}])
    assert message.content[0].text == "Echo: describe"
    assert fresh_server.requests[-1].json["messages"][0]["content"] == content


# -- the API's 400s ---------------------------------------------------------------------------

BAD_IMAGES = [
    (
        {"type": "base64", "media_type": "image/bmp", "data": PNG},
        "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', "
        "'image/png', 'image/gif' or 'image/webp'",
    ),
    (
        {"type": "base64", "media_type": "image/png", "data": ""},
        "messages.0.content.0.image.source.base64: image cannot be empty",
    ),
    (
        {"type": "base64", "media_type": "image/png", "data": "not base64!"},
        "messages.0.content.0.image.source.base64: invalid base64 data",
    ),
    ({"type": "url"}, "messages.0.content.0.image.source.url.url: Field required"),
    (
        {"type": "path", "path": "/etc/passwd"},
        "messages.0.content.0.image.source: Input tag 'path' found using 'type' does not match "
        "any of the expected tags: 'base64', 'file', 'url'",
    ),
]


@pytest.mark.parametrize("source, message", BAD_IMAGES)
def test_a_malformed_image_is_refused_like_the_api(
    source: dict[str, Any], message: str, local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    content = [{"type": "image", "source": source}, {"type": "text", "text": "hi"}]
    assert refused(client, messages=[{"role": "user", "content": content}]) == message


def test_thinking_settings_the_api_refuses(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    user = [{"role": "user", "content": "hi"}]
    small = {"type": "enabled", "budget_tokens": 1000}
    assert refused(client, messages=user, thinking=small) == (
        "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
    )
    assert refused(client, messages=user, thinking=THINKING, max_tokens=1024).startswith(
        "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
        "documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    )
    assert refused(
        client, messages=user, thinking=THINKING, extra_body={"temperature": 0.5}
    ).startswith("`temperature` may only be set to 1 when thinking is enabled.")
    forced = {"type": "any"}
    assert refused(client, messages=user, thinking=THINKING, tools=[TOOL], tool_choice=forced) == (
        "Thinking may not be enabled when tool_choice forces tool use."
    )


def _turn(server: LocalProtocolServer, client: Any, **options: Any) -> Any:
    server.queue_replies([ScriptedReply(tool_calls=[("lookup", {"q": "a"})])])
    return create(client, tools=[TOOL], messages=[{"role": "user", "content": "go"}], **options)


def test_strict_mode_refuses_a_tool_use_without_its_result(
    strict_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(strict_server)
    first = _turn(strict_server, client)
    [call] = first.content
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [call.model_dump()]},
        {"role": "user", "content": "what did you find?"},
    ]
    assert refused(client, tools=[TOOL], messages=history) == (
        f"messages.2: `tool_use` ids were found without `tool_result` blocks immediately after: "
        f"{call.id}. Each `tool_use` block must have a corresponding `tool_result` block in the "
        "next message."
    )
    orphan = [{"type": "tool_result", "tool_use_id": "toolu_nope", "content": "x"}]
    assert refused(client, tools=[TOOL], messages=[{"role": "user", "content": orphan}]) == (
        "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_nope. "
        "Each `tool_result` block must have a corresponding `tool_use` block in the previous "
        "message."
    )


def test_strict_mode_refuses_a_thinking_tool_loop_without_its_thinking(
    strict_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(strict_server)
    first = _turn(strict_server, client, thinking=THINKING)
    thinking, call = first.content
    result = [{"type": "tool_result", "tool_use_id": call.id, "content": "found"}]

    def history(*blocks: Any) -> list[dict[str, Any]]:
        return [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": [b if isinstance(b, dict) else b.model_dump() for b in blocks],
            },
            {"role": "user", "content": result},
        ]

    message = refused(client, tools=[TOOL], thinking=THINKING, messages=history(call))
    assert message == (
        "messages.1.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        "`tool_use`. When `thinking` is enabled, a final `assistant` message must start with a "
        "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
        "We recommend you include thinking blocks from previous turns. To avoid this "
        "requirement, disable `thinking`. Please consult our documentation at "
        "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
    )
    forged = {**thinking.model_dump(), "signature": "Zm9yZ2Vk"}
    assert refused(client, tools=[TOOL], thinking=THINKING, messages=history(forged, call)) == (
        "messages.1.content.0: Invalid `signature` in `thinking` block"
    )
    ok = create(client, tools=[TOOL], thinking=THINKING, messages=history(thinking, call))
    assert ok.content[-1].text == "Tool result: found"
    redacted = {"type": "redacted_thinking", "data": "b3BhcXVl"}
    assert create(client, tools=[TOOL], thinking=THINKING, messages=history(redacted, call))


def test_without_strict_mode_the_same_conversations_are_answered(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(fresh_server)
    first = _turn(fresh_server, client, thinking=THINKING)
    call = first.content[1]
    history = [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [call.model_dump()]},
        {"role": "user", "content": "what did you find?"},
    ]
    assert create(client, tools=[TOOL], thinking=THINKING, messages=history).content


# -- faults inside a call's arguments -----------------------------------------------------------


def _raw_stream(server: LocalProtocolServer, body: dict[str, Any], fault: str) -> bytes:
    payload = json.dumps(body).encode()
    head = (
        f"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"x-api-key: sk-ant-test-1\r\nX-Fault: {fault}\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    received = b""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(head.encode() + payload)
        while chunk := sock.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize("fault", ["truncate", "no_terminator"])
def test_stream_faults_cut_inside_a_calls_arguments(
    fault: str, fresh_server: LocalProtocolServer
) -> None:
    long_args = {"q": " ".join(f"w{i}" for i in range(20))}
    fresh_server.queue_replies([ScriptedReply(tool_calls=[("lookup", long_args)])])
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "stream": True,
        "tools": [TOOL],
        "messages": [{"role": "user", "content": "go"}],
    }

    raw = _raw_stream(fresh_server, body, fault)

    assert b'"input_json_delta"' in raw
    assert b"message_stop" not in raw
    if fault == "truncate":  # cut in the middle of the arguments: the call never closes
        assert b'"content_block_stop"' not in raw
    else:  # whole blocks, but no end marker
        assert raw.count(b'"content_block_stop"') == 1
