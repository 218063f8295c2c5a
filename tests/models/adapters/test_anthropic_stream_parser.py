"""The anthropic stream parser (`anthropic_sdk.MessageEvents`) and whole-reply parser on the
local server's own bytes: chunk boundaries anywhere (inside JSON strings and multi-byte UTF-8)
change nothing, the stream builds the same `Response` as the whole reply, redacted thinking and
calls without input deltas are kept, and hostile events end in a typed error or nothing.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from rlm_code.core.exceptions import ModelError
from rlm_code.models.adapters._anthropic_wire import parse_message
from rlm_code.models.adapters._lines import SSEEvent, iter_sse
from rlm_code.models.adapters.anthropic_sdk import MessageEvents
from rlm_code.models.streaming import ResponseStream
from rlm_code.models.types import Response, final_finish_reason, normalize_finish_reason
from rlm_code.testing.formats.anthropic import AnthropicFormat
from rlm_code.testing.scripted import wire_call
from rlm_code.testing.wire import WireReply, WireRequest

from .conftest import cut_at

ARGS = {"q": 'say "hi" — café 日本 \\ back', "n": 3}  # unicode, escaped quotes, a backslash


# -- the stream parser on bytes cut anywhere ----------------------------------------------------


def _reply() -> WireReply:
    request = WireRequest(model="claude-x", texts=("hi",), last_user_text="hi", reasoning=True)
    calls = (wire_call("lookup", ARGS), wire_call("lookup", '{"q":"\\u00e9 \\"x\\""}'))
    return WireReply(
        request=request,
        text='Voilà — 日本語 "quoted"',
        prompt_tokens=3,
        completion_tokens=20,
        tool_calls=calls,
        reasoning="Pensée: ça 🤔 marche",
    )


REPLY = _reply()
FORMAT = AnthropicFormat()
PLAN = FORMAT.stream(REPLY, terminate=True)
STREAM_BYTES = b"".join([*PLAN.head, *PLAN.content, *PLAN.tail])
WHOLE = parse_message(FORMAT.render(REPLY), "anthropic")


def _events(chunks: list[bytes]) -> list[Any]:
    parser = MessageEvents("anthropic")
    return [event for sse in iter_sse(chunks, "anthropic") for event in parser.event(sse)]


EVENTS = _events([STREAM_BYTES])


def _streamed(events: list[Any]) -> Response:
    stream = ResponseStream(iter(events), "anthropic", "claude-x")
    list(stream)
    return stream.response


def test_the_parsed_stream_builds_the_whole_reply() -> None:
    expected = Response(
        text=WHOLE.text,
        usage=WHOLE.usage,
        finish_reason=final_finish_reason(normalize_finish_reason(WHOLE.stop_reason), True),
        provider="anthropic",
        model="claude-x",
        raw_finish_reason=WHOLE.stop_reason,
        reasoning=WHOLE.reasoning,
        tool_calls=WHOLE.tool_calls,
        reasoning_details=WHOLE.details,
    )
    assert _streamed(EVENTS) == expected
    assert WHOLE.tool_calls[1].arguments_json == '{"q": "é \\"x\\""}'
    assert WHOLE.details == [
        {"type": "thinking", "thinking": REPLY.reasoning, "signature": REPLY.signature}
    ]
    assert _events([bytes([b]) for b in STREAM_BYTES]) == EVENTS  # a chunk per byte


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM_BYTES)), max_size=40))
def test_chunk_boundaries_anywhere_change_nothing(cuts: list[int]) -> None:
    assert _events(cut_at(STREAM_BYTES, sorted(cuts))) == EVENTS


REDACTED_STREAM = (
    b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
    b'{"input_tokens":5,"cache_read_input_tokens":7,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"redacted_thinking","data":"b3BhcXVl"}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":1,'
    b'"content_block":{"type":"tool_use","id":"toolu_9","name":"noop","input":{}}}\n\n'
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":1}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use"},'
    b'"usage":{"output_tokens":4}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def test_redacted_thinking_and_a_call_without_input_deltas() -> None:
    response = _streamed(_events([REDACTED_STREAM]))
    assert response.reasoning_details == [{"type": "redacted_thinking", "data": "b3BhcXVl"}]
    assert response.reasoning is None
    [call] = response.tool_calls
    assert (call.id, call.name, call.arguments, call.arguments_json) == (
        "toolu_9",
        "noop",
        {},
        "{}",
    )
    assert response.finish_reason == "tool_calls"
    assert (response.usage.input_tokens, response.usage.cache_read_tokens) == (5, 7)
    whole = parse_message(
        {
            "content": [
                {"type": "redacted_thinking", "data": "b3BhcXVl"},
                {"type": "tool_use", "id": "toolu_9", "name": "noop", "input": {}},
            ],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "cache_read_input_tokens": 7, "output_tokens": 4},
        },
        "anthropic",
    )
    assert (whole.tool_calls, whole.details, whole.usage) == (
        response.tool_calls,
        response.reasoning_details,
        response.usage,
    )


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 3), st.text(max_size=6))
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_KINDS = ["message_start", "content_block_start", "content_block_delta", "content_block_stop"]
_KINDS += ["message_delta", "message_stop", "ping", "error", "other"]
_BLOCK_KEYS = ["type", "text", "thinking", "signature", "data", "id", "name", "input"]
_DELTA_KEYS = ["type", "text", "thinking", "signature", "partial_json"]
_BLOCK_TYPES = ["text", "thinking", "redacted_thinking", "tool_use", "x"]
_DELTA_TYPES = ["text_delta", "thinking_delta", "signature_delta", "input_json_delta", "x"]


def _part(keys: list[str], types: list[str]) -> Any:
    fields = st.fixed_dictionaries(
        {},
        optional={key: _VALUES for key in keys if key != "type"} | {"type": st.sampled_from(types)},
    )
    return st.one_of(fields, _VALUES)


_EVENT = st.fixed_dictionaries(
    {"type": st.sampled_from(_KINDS)},
    optional={
        "index": st.one_of(st.integers(-1, 3), _VALUES),
        "content_block": _part(_BLOCK_KEYS, _BLOCK_TYPES),
        "delta": _part(_DELTA_KEYS, _DELTA_TYPES),
        "message": _VALUES,
        "usage": _VALUES,
    },
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_EVENT, max_size=12))
def test_hostile_stream_events_give_events_or_a_typed_error(events: list[dict[str, Any]]) -> None:
    parser = MessageEvents("anthropic")
    with contextlib.suppress(ModelError):  # a typed error is the only way out
        for event in events:
            parser.event(SSEEvent(json.dumps(event).encode()))


@settings(max_examples=200, deadline=None)
@given(st.lists(_part(_BLOCK_KEYS, _BLOCK_TYPES), max_size=5), _VALUES)
def test_hostile_whole_replies_give_a_reply_or_a_typed_error(
    content: list[Any], usage: Any
) -> None:
    with contextlib.suppress(ModelError):  # a typed error is the only way out
        parse_message({"content": content, "usage": usage, "stop_reason": "end_turn"}, "anthropic")
