"""Chat completions beyond text, on both adapters that speak it (`openai` through the SDK,
`openai_compatible` over raw HTTP), plain/stream x sync/async, against the local server:
tool calls, reasoning fields and their replay, inline `<think>`, structured output, images,
`length`, faults inside tool arguments, and the parsers at every chunk boundary."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rlm_code.core.exceptions import (
    ModelError,
    ProviderError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters.openai_compatible import (
    ChatStreamParser,
    chat_payload,
    parse_completion,
)
from rlm_code.models.prompting import build_chat_request
from rlm_code.models.types import (
    GenerationParams,
    ReasoningDelta,
    ReplayDetail,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
)
from rlm_code.testing import LocalProtocolServer, ScriptedReply

from .beyond_text import (
    MODES,
    PNG,
    READ_FILE,
    TOOLS,
    call,
    last_body,
    parse_chunks,
    read_into,
    strict_server,
    tool_loop,
    without_ids,
)
from .conftest import TARGETS, Connect, Target, cut_at

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

OPENAI_TARGETS = [t for t in TARGETS if t.adapter in ("openai", "openai_compatible")]
IDS = [t.adapter for t in OPENAI_TARGETS]
ARGUMENTS = {"path": 'dir/naïve "quoted" \\ file\n€ 日本 🚀.txt'}
server = strict_server()


# -- tool calls --------------------------------------------------------------------------------


@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_scripted_tool_calls_round_trip_exactly_and_streams_equal_plain(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    responses = []
    for mode in MODES:
        server.queue_replies(
            [
                ScriptedReply(
                    text="Reading two files.",
                    tool_calls=[("read_file", ARGUMENTS), ("evaluate", '{"expression":"6*7"}')],
                    reasoning="The user wants é and 🚀.",
                )
            ]
        )
        response = call(connector, mode, "read", tools=TOOLS, reasoning="low")
        first, second = response.tool_calls
        assert (first.name, first.arguments) == ("read_file", ARGUMENTS)
        assert first.arguments_json == json.dumps(ARGUMENTS, ensure_ascii=False)
        assert (second.name, second.arguments_json) == ("evaluate", '{"expression":"6*7"}')
        assert first.id != second.id and first.id.startswith("call_")
        assert response.text == "Reading two files."
        assert response.reasoning == "The user wants é and 🚀."
        assert response.reasoning_details == [
            {
                "type": "openai.reasoning_field",
                "field": "reasoning_content",
                "text": "The user wants é and 🚀.",
            }
        ]
        assert response.finish_reason == "tool_calls"
        assert response.raw_finish_reason == "tool_calls"
        assert response.usage.reasoning_tokens == 6
        responses.append(response)
    # Streamed and plain replies are the same Response (the server sends different ids per
    # reply, so those are compared apart).
    ids = [[c.id for c in r.tool_calls] for r in responses]
    assert len({i for pair in ids for i in pair}) == 8
    blank = [without_ids(r) for r in responses]
    assert all(r == blank[0] for r in blank[1:])


@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_tools_choice_and_reasoning_reach_the_server_in_chat_shape(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    response = connector.complete(
        "go", tools=TOOLS, tool_choice={"name": "evaluate"}, reasoning=20000
    )
    assert [c.name for c in response.tool_calls] == ["evaluate"]
    body = last_body(target, server)
    # name, description and parameters as given, in chat completions' function wrapper
    assert body["tools"][0] == {"type": "function", "function": READ_FILE}
    assert body["tool_choice"] == {"type": "function", "function": {"name": "evaluate"}}
    assert body["reasoning_effort"] == "high"  # a budget maps to the nearest effort word


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_a_three_turn_tool_loop_with_reasoning_passes_strict_and_replays_the_field(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    messages: list[dict[str, Any]] = []
    for question in ('call read_file {"path": "n.txt"}', "call evaluate {}", "thanks"):
        messages.append({"role": "user", "content": question})
        replies = tool_loop(connector, mode, messages, lambda c: "42", tools=TOOLS, reasoning="low")
        assert all(r.reasoning for r in replies)
    assert messages[-1]["content"] == "Echo: thanks"
    sent = last_body(target, server)
    turns = [m for m in sent["messages"] if m["role"] == "assistant"]
    assert len(turns) == 4 and all(t["reasoning_content"].startswith("Thinking") for t in turns)
    # The message's own reasoning keys are never sent: only the provider's field.
    assert not any("reasoning" in t or "reasoning_details" in t for t in turns)
    assert [t["content"] for t in turns if t.get("tool_calls")] == [None, None]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_a_loop_that_drops_reasoning_or_a_result_gets_the_providers_400(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    user = {"role": "user", "content": 'call read_file {"path": "n.txt"}'}
    first = call(connector, mode, messages=[user], tools=TOOLS, reasoning="low")
    [tool_call] = first.tool_calls
    result = {"role": "tool", "tool_call_id": tool_call.id, "content": "42"}
    forgetful = {k: v for k, v in first.message.items() if "reasoning" not in k}
    with pytest.raises(ProviderError) as dropped:
        call(connector, mode, messages=[user, forgetful, result], tools=TOOLS, reasoning="low")
    assert dropped.value.status_code == 400
    assert "Missing `reasoning_content` field in the assistant message at message index 1" in str(
        dropped.value
    )
    with pytest.raises(ProviderError) as unanswered:
        call(
            connector,
            mode,
            messages=[user, first.message, {"role": "user", "content": "and?"}],
            tools=TOOLS,
        )
    assert unanswered.value.status_code == 400
    assert "did not have response messages: " + tool_call.id in str(unanswered.value)


# -- structured output, images, length ---------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "n": {"type": "integer"}},
    "required": ["title", "n"],
    "additionalProperties": False,
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_a_json_schema_reply_validates(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    response = call(connector, mode, "describe", response_format=SCHEMA)
    jsonschema.validate(response.json(), SCHEMA)
    body = last_body(target, server)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": SCHEMA, "strict": True},
    }


@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_an_image_reaches_the_server_as_an_image_url_part(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    parts = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
    ]
    for mode in ("complete", "astream"):
        response = call(connector, mode, messages=[{"role": "user", "content": parts}])
        assert response.text == "Echo: what is this"
        body = last_body(target, server)
        assert body["messages"][-1] == {"role": "user", "content": parts}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_max_tokens_cut_is_length(
    target: Target, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    response = call(connector, mode, "one two three four", max_tokens=2)
    assert (response.finish_reason, response.text) == ("length", "Echo: one")


# -- faults inside tool arguments --------------------------------------------------------------


@pytest.mark.parametrize("fault", ["truncate", "no_terminator"])
@pytest.mark.parametrize("mode", ["stream", "astream"])
@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_a_stream_cut_inside_tool_arguments_is_a_typed_error(
    target: Target, mode: str, fault: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server, read=1.0)
    long_arguments = {"path": " ".join(f"w{i}" for i in range(40))}
    server.queue_replies([ScriptedReply(tool_calls=[("read_file", long_arguments)])])
    server.script_faults([fault])
    seen: list[Any] = []
    with pytest.raises(ModelError):
        read_into(seen, connector, mode, "x", tools=TOOLS)
    if fault == "truncate":  # cut inside the arguments: pieces seen, no call handed over
        assert any(e.type == "tool_call_delta" for e in seen)
        assert not any(e.type == "tool_call_done" for e in seen)


def test_broken_tool_arguments_are_a_typed_error_in_every_mode(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(OPENAI_TARGETS[1], server)
    for mode in MODES:
        server.queue_replies([ScriptedReply(tool_calls=[("read_file", '{"path": "a')])])
        with pytest.raises(ResponseFormatError, match="not valid JSON"):
            call(connector, mode, "x", tools=TOOLS)


# -- reasoning knobs per host ------------------------------------------------------------------


def _request(reasoning: object) -> Any:
    return build_chat_request("m", "hi", None, None, GenerationParams(), reasoning=reasoning)


@pytest.mark.parametrize(
    ("param", "reasoning", "expected"),
    [
        ("reasoning_effort", "medium", {"reasoning_effort": "medium"}),
        ("reasoning_effort", 1000, {"reasoning_effort": "low"}),
        ("reasoning", "high", {"reasoning": {"effort": "high"}}),
        ("reasoning", 3000, {"reasoning": {"max_tokens": 3000}}),
        ("thinking", "low", {"thinking": {"type": "enabled"}, "reasoning_effort": "low"}),
        ("enable_thinking", "high", {"enable_thinking": True, "thinking_budget": 16384}),
        ("enable_thinking", 512, {"enable_thinking": True, "thinking_budget": 512}),
    ],
)
def test_reasoning_goes_under_each_hosts_knob(
    param: str, reasoning: object, expected: dict[str, Any]
) -> None:
    body = chat_payload(_request(reasoning), False, "p", param)
    assert {k: body[k] for k in expected} == expected
    assert "reasoning_details" not in json.dumps(body)


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_a_choice_without_tools_is_not_sent(choice: str) -> None:
    """OpenAI answers `tool_choice` without `tools` with a 400; without tools the choice
    holds anyway."""
    request = build_chat_request("m", "hi", None, None, GenerationParams(), tool_choice=choice)
    assert "tool_choice" not in chat_payload(request, False)
    with_tools = build_chat_request(
        "m", "hi", None, None, GenerationParams(), tools=TOOLS, tool_choice=choice
    )
    assert chat_payload(with_tools, False)["tool_choice"] == choice


def test_the_registry_names_each_hosts_knob() -> None:
    from rlm_code.models.providers.registry import ProviderRegistry

    registry = ProviderRegistry.default()
    knobs = {p: registry.get(p).reasoning_param for p in ("openai", "vllm", "deepseek")}  # type: ignore[union-attr]
    assert knobs == {
        "openai": "reasoning_effort",
        "vllm": "reasoning_effort",
        "deepseek": "thinking",
    }
    assert registry.get("openrouter").reasoning_param == "reasoning"  # type: ignore[union-attr]
    assert registry.get("tgi").reasoning_param is None  # type: ignore[union-attr]


def test_a_host_without_a_reasoning_knob_refuses_before_any_request(
    server: LocalProtocolServer, connect: Connect
) -> None:
    tgi = Target("openai_compatible", "tgi", "tgi", None, True)
    connector = connect(tgi, server)
    before = len(server.requests)
    for mode in MODES:
        with pytest.raises(UnsupportedParameterError, match="reasoning is not supported by tgi"):
            call(connector, mode, "hi", reasoning="low")
    assert len(server.requests) == before


# -- inline <think> from local servers ---------------------------------------------------------


@pytest.mark.parametrize("target", OPENAI_TARGETS, ids=IDS)
def test_inline_think_is_split_only_for_local_servers(
    target: Target, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(target, server)
    content = "<think>plan: é 🚀</think>\n\nThe answer."
    for mode in MODES:
        server.queue_replies([ScriptedReply(text=content)])
        response = call(connector, mode, "q")
        if target.adapter == "openai_compatible":  # vllm: a local server
            assert (response.reasoning, response.text) == ("plan: é 🚀", "The answer.")
            assert response.reasoning_details == []  # nothing to send back
        else:
            assert (response.reasoning, response.text) == (None, content)
    server.queue_replies([ScriptedReply(text="I like the <think> tag.")])
    assert connector.complete("q").text == "I like the <think> tag."


# -- parsers at every chunk boundary -----------------------------------------------------------


def _stream_body(server: LocalProtocolServer, reply: ScriptedReply) -> bytes:
    server.queue_replies([reply])
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": TOOLS[0]}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    request = urllib.request.Request(
        server.openai_base_url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.read()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def tool_stream(server: LocalProtocolServer) -> bytes:
    return _stream_body(
        server,
        ScriptedReply(
            text="Voilà: 日本 🚀",
            tool_calls=[("read_file", ARGUMENTS), ("evaluate", {"expression": "\"1\" + '2'"})],
            reasoning='Pensée 🤔 "quoted"',
        ),
    )


def _events(chunks: list[bytes], think: bool = False) -> list[Any]:
    return parse_chunks(ChatStreamParser("p", think), chunks)


def test_the_stream_parses_to_text_reasoning_calls_replay_and_end(tool_stream: bytes) -> None:
    events = _events([tool_stream])
    kinds = [type(e) for e in events]
    assert kinds[-1] is StreamEnd and events[-1].finish_reason == "tool_calls"
    assert "".join(e.text for e in events if type(e) is TextDelta) == "Voilà: 日本 🚀"
    assert "".join(e.text for e in events if type(e) is ReasoningDelta) == 'Pensée 🤔 "quoted"'
    done = [e.tool_call for e in events if type(e) is ToolCallDone]
    assert [c.arguments for c in done] == [ARGUMENTS, {"expression": "\"1\" + '2'"}]
    assert [e.detail["field"] for e in events if type(e) is ReplayDetail] == ["reasoning_content"]
    deltas = [e for e in events if type(e) is ToolCallDelta]
    assert {d.index for d in deltas} == {0, 1}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_chunking_of_the_stream_gives_the_same_events(tool_stream: bytes, data: Any) -> None:
    cuts = data.draw(st.lists(st.integers(0, len(tool_stream)), max_size=40).map(sorted))
    merged = _merge(_events(cut_at(tool_stream, cuts)))
    assert merged == _merge(_events([tool_stream]))


def _merge(events: list[Any]) -> list[Any]:
    """Events with neighbouring text/reasoning pieces joined (a cut may split a piece only if
    the SSE decoder hands over partial frames; it does not, but joining keeps this honest)."""
    out: list[Any] = []
    for event in events:
        if out and type(event) in (TextDelta, ReasoningDelta) and type(out[-1]) is type(event):
            out[-1] = type(event)(out[-1].text + event.text)
        else:
            out.append(event)
    return out


def _sse(*deltas: dict[str, Any], finish: str | None = "stop") -> bytes:
    frames: list[dict[str, Any]] = [
        {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]} for delta in deltas
    ]
    frames.append({"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    body = b"".join(b"data: " + json.dumps(f).encode() + b"\n\n" for f in frames)
    return body + b"data: [DONE]\n\n"


THINK_BODY = _sse(
    {"role": "assistant", "content": ""},
    {"content": " <thi"},
    {"content": "nk>plan ü"},
    {"content": "</th"},
    {"content": "ink>\n\n"},
    {"content": "answer 日本"},
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, len(THINK_BODY)), max_size=40).map(sorted))
def test_inline_think_survives_any_chunking(cuts: list[int]) -> None:
    events = _events(cut_at(THINK_BODY, cuts), think=True)
    reasoning = "".join(e.text for e in events if type(e) is ReasoningDelta)
    text = "".join(e.text for e in events if type(e) is TextDelta)
    assert (reasoning, text) == ("plan ü", "answer 日本")
    whole = {"choices": [{"message": {"content": " <think>plan ü</think>\n\nanswer 日本"}}]}
    parsed = parse_completion(whole, "p", think=True)
    assert (parsed.reasoning, parsed.text) == ("plan ü", "answer 日本")


# -- tolerance of servers' tool-call streams ---------------------------------------------------


def _calls(body: bytes) -> list[Any]:
    return [e.tool_call for e in _events([body]) if type(e) is ToolCallDone]


def test_a_call_sent_whole_in_one_delta() -> None:
    piece = {
        "index": 0,
        "id": "c1",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a": 1}'},
    }
    [done] = _calls(_sse({"tool_calls": [piece]}, finish="tool_calls"))
    assert (done.id, done.name, done.arguments) == ("c1", "f", {"a": 1})


def test_repeated_ids_type_only_pieces_object_arguments_and_no_index() -> None:
    body = _sse(
        {"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": "f"}}]},
        {"tool_calls": [{"index": 0, "type": "function"}]},
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": '{"a": '}}]},
        {"tool_calls": [{"index": 0, "id": "c1", "function": {"arguments": "1}"}}]},
        {"tool_calls": [{"id": "c2", "function": {"name": "g", "arguments": {"b": "ü"}}}]},
        finish="tool_calls",
    )
    calls = _calls(body)
    assert [(c.id, c.name, c.arguments_json) for c in calls] == [
        ("c1", "f", '{"a": 1}'),
        ("c2", "g", '{"b": "ü"}'),
    ]


def test_calls_close_at_done_when_no_finish_reason_came() -> None:
    piece = {"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{}"}}
    body = _sse({"tool_calls": [piece]}, finish=None)
    events = _events([body])
    assert [type(e) for e in events[-2:]] == [ToolCallDone, StreamEnd]


def test_a_reasoning_field_named_reasoning_is_replayed_under_that_name() -> None:
    body = _sse({"reasoning": "thought"}, {"content": "hi"})
    events = _events([body])
    assert [e.detail for e in events if type(e) is ReplayDetail] == [
        {"type": "openai.reasoning_field", "field": "reasoning", "text": "thought"}
    ]
    whole = {"choices": [{"message": {"content": "hi", "reasoning": "thought"}}]}
    parsed = parse_completion(whole, "p")
    assert parsed.reasoning == "thought"
    assert parsed.reasoning_details == (
        {"type": "openai.reasoning_field", "field": "reasoning", "text": "thought"},
    )
