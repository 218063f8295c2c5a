"""`messages=`, tools, tool choice, structured output and reasoning: checked before any I/O,
and `Response.message` reads back as the same turn."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from rlm_code import LLMConnector, ToolCall
from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.call_options import (
    check_reasoning,
    check_response_format,
    check_tool_choice,
    check_tools,
)
from rlm_code.models.messages import parse_messages
from rlm_code.models.prompting import build_chat_request
from rlm_code.models.streaming import ResponseStream
from rlm_code.models.types import (
    AdapterEvent,
    GenerationParams,
    ImagePart,
    ReasoningDelta,
    ReplayDetail,
    Response,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
    ToolCallDone,
    Usage,
    UsageReport,
)
from rlm_code.testing import run_local_server

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def _call(call_id: str = "call_1", name: str = "read_file", args: str = '{"path": "a"}') -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def test_a_full_conversation_parses_with_every_role() -> None:
    turns, system = parse_messages(
        [
            {"role": "system", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is "},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "text", "text": "this?"},
                ],
            },
            {"role": "assistant", "content": None, "tool_calls": [_call()], "reasoning": "hm"},
            {"role": "tool", "tool_call_id": "call_1", "content": "file text"},
        ]
    )
    assert system == ["be brief"]
    user, assistant, tool = turns
    assert user.content == "what is this?"
    assert user.parts is not None and user.parts[1] == ImagePart(media_type="image/png", data=PNG)
    assert assistant.tool_calls[0].arguments == {"path": "a"}
    assert assistant.tool_calls[0].arguments_json == '{"path": "a"}'
    assert assistant.reasoning == "hm"
    assert (tool.role, tool.tool_call_id, tool.name, tool.content) == (
        "tool",
        "call_1",
        "read_file",
        "file text",
    )


def test_https_images_stay_urls_and_text_only_turns_have_no_parts() -> None:
    turns, _ = parse_messages(
        [
            {
                "role": "user",
                "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}],
            },
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        ]
    )
    assert turns[0].parts == (ImagePart(url="https://x.test/a.png"),)
    assert turns[1].parts is None and turns[1].content == "hi"


def test_a_dumped_openai_sdk_message_is_accepted() -> None:
    turns, _ = parse_messages(
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": "hello",
                "refusal": None,
                "annotations": [],
                "audio": None,
                "function_call": None,
            },
        ]
    )
    assert turns[1].content == "hello"


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ("hi", "must be a list"),
        ([], "messages is empty"),
        ([{"role": "robot", "content": "x"}], "role 'robot'"),
        ([{"role": "user", "content": "x", "colour": "red"}], "unknown key(s) 'colour'"),
        ([{"role": "user"}], "needs 'content'"),
        ([{"role": "system", "content": "only"}], "only system turns"),
        ([{"role": "user", "content": [{"type": "audio"}]}], "unknown content part type"),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
            "https:// URL or a data:image",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@"}}
                    ],
                }
            ],
            "not valid base64",
        ),
        (
            [
                {
                    "role": "assistant",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a"}}],
                }
            ],
            "user turns only",
        ),
        ([{"role": "tool", "tool_call_id": "nope", "content": "r"}], "tool_call_id"),
        (
            [{"role": "assistant", "content": "", "tool_calls": [_call(args="{oops")]}],
            "not valid JSON",
        ),
        (
            [{"role": "assistant", "content": "", "tool_calls": [_call(args="[1]")]}],
            "must be a JSON object",
        ),
        ([{"role": "assistant", "content": "", "tool_calls": [{"id": "c"}]}], "tool_calls[0]"),
    ],
)
def test_bad_messages_are_refused_with_the_turn_named(messages: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_messages(messages)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value).splitlines()[0]


def test_response_message_reads_back_as_the_same_turn() -> None:
    call = ToolCall(
        "call_9",
        "lookup",
        {"q": 'naïve "quoted"'},
        '{"q": "naïve \\"quoted\\""}',
        {"google": {"thought_signature": "c2ln"}},
    )
    detail = {"type": "thinking", "thinking": "let me see", "signature": "sig"}
    response = Response(
        text="",
        tool_calls=[call],
        reasoning="let me see",
        reasoning_details=[detail],
        finish_reason="tool_calls",
    )
    message = response.message
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": "c2ln"}}
    json.dumps(message)  # plain JSON: a caller can store the conversation
    turns, _ = parse_messages([{"role": "user", "content": "q"}, message])
    replayed = turns[1]
    assert replayed.tool_calls == (call,)
    assert replayed.reasoning == "let me see"
    assert replayed.reasoning_details == (detail,)


def test_tools_in_three_forms() -> None:
    def add(a: int, b: int = 2) -> int:
        """Add two numbers."""
        return a + b

    specs = check_tools(
        [
            {"name": "plain", "description": "d", "parameters": {"type": "object"}},
            {"type": "function", "function": {"name": "openai_form"}},
            add,
        ]
    )
    assert [s.name for s in specs] == ["plain", "openai_form", "add"]
    assert specs[1].parameters == {"type": "object", "properties": {}}
    assert specs[2].description == "Add two numbers."
    assert specs[2].parameters["required"] == ["a"]


@pytest.mark.parametrize(
    ("tools", "fragment"),
    [
        ("x", "must be a list"),
        ([{"name": "bad name"}], "the name must be"),
        ([{"name": "a"}, {"name": "a"}], "duplicate name(s): a"),
        ([{"name": "a", "parameters": {"type": "array"}}], "of type 'object'"),
        ([42], "must be a dict or a Python function"),
    ],
)
def test_bad_tools_are_refused(tools: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=None) as info:
        check_tools(tools)
    assert fragment in str(info.value)


def test_tool_choice_rules() -> None:
    tools = check_tools([{"name": "a"}, {"name": "b"}])
    assert check_tool_choice(None, tools) == (None, None)
    assert check_tool_choice("required", tools) == ("required", None)
    assert check_tool_choice({"name": "b"}, tools) == ("tool", "b")
    assert check_tool_choice({"type": "function", "function": {"name": "a"}}, tools) == (
        "tool",
        "a",
    )
    for bad, fragment in (
        ("always", "tool_choice must be"),
        ({"name": "c"}, "not among the tools"),
        ({"nom": "a"}, 'must be {"name"'),
    ):
        with pytest.raises(InvalidInputError, match=None) as info:
            check_tool_choice(bad, tools)
        assert fragment in str(info.value)
    with pytest.raises(InvalidInputError, match="needs tools"):
        check_tool_choice("required", ())


def test_response_format_forms() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert check_response_format(schema).schema == schema  # type: ignore[union-attr]
    wrapped = check_response_format(
        {"type": "json_schema", "json_schema": {"name": "my thing!", "schema": schema}}
    )
    assert wrapped is not None and wrapped.name == "my_thing_" and wrapped.strict
    pydantic = pytest.importorskip("pydantic")

    class Answer(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        n: int

    from_model = check_response_format(Answer)
    assert from_model is not None and from_model.name == "Answer"
    assert from_model.schema["properties"]["n"]["type"] == "integer"
    for bad in ({"type": "json_object"}, {"hello": 1}, "x"):
        with pytest.raises(InvalidInputError):
            check_response_format(bad)


def test_reasoning_words_and_budgets() -> None:
    assert check_reasoning("high").effort == "high"  # type: ignore[union-attr]
    budget = check_reasoning(3000)
    assert budget is not None and budget.budget() == 3000 and budget.effort_word() == "medium"
    assert check_reasoning("low").budget() == 1024  # type: ignore[union-attr]
    for bad in (True, 0, "max", 1.5):
        with pytest.raises(InvalidInputError):
            check_reasoning(bad)


def test_exactly_one_of_prompt_or_messages_and_system_turns_join() -> None:
    params = GenerationParams()
    with pytest.raises(InvalidInputError, match="exactly one"):
        build_chat_request("m", None, None, None, params)
    with pytest.raises(InvalidInputError, match="exactly one"):
        build_chat_request("m", "hi", [{"role": "user", "content": "hi"}], None, params)
    request = build_chat_request(
        "m",
        None,
        [{"role": "system", "content": "turn rule"}, {"role": "user", "content": "hi"}],
        "argument rule",
        params,
    )
    assert request.system == "argument rule\n\nturn rule"
    assert [m.role for m in request.messages] == ["user"]


def _stream(events: list[AdapterEvent]) -> ResponseStream:
    return ResponseStream(iter(events), "p", "m")


def test_a_stream_assembles_reasoning_tool_calls_and_replay_details() -> None:
    call = ToolCall("c1", "f", {"x": 1}, '{"x": 1}')
    events: list[AdapterEvent] = [
        ReasoningDelta("think "),
        ReasoningDelta("hard"),
        ReplayDetail({"type": "thinking", "thinking": "think hard", "signature": "s"}),
        TextDelta("ok"),
        ToolCallDelta(0, "c1", "f", '{"x": '),
        ToolCallDelta(0, None, None, "1}"),
        ToolCallDone(call),
        UsageReport(Usage(3, 4, reasoning_tokens=2)),
        StreamEnd("stop", "STOP"),
    ]
    with _stream(events) as stream:
        seen = [type(event).__name__ for event in stream]
    assert "ReplayDetail" not in seen and "StreamEnd" not in seen
    assert seen[-1] == "Finished"
    response = stream.response
    assert response.reasoning == "think hard"
    assert response.tool_calls == [call]
    assert response.reasoning_details == [
        {"type": "thinking", "thinking": "think hard", "signature": "s"}
    ]
    # Gemini says STOP for a tool call: the reply still finished for "tool_calls".
    assert response.finish_reason == "tool_calls" and response.raw_finish_reason == "STOP"
    assert response.usage.reasoning_tokens == 2


def test_a_reply_without_reasoning_has_none_not_an_empty_string() -> None:
    with _stream([TextDelta("x"), StreamEnd("length", "length")]) as stream:
        list(stream)
    assert stream.response.reasoning is None
    assert stream.response.finish_reason == "length"


@pytest.fixture(scope="module")
def server() -> Any:
    with run_local_server() as running:
        yield running


@pytest.fixture
def connector(server: Any) -> Any:
    connector = LLMConnector()
    connector.connect_to_model("test-model", model_type="vllm", base_url=server.openai_base_url)
    yield connector
    connector.close()


@pytest.mark.parametrize(
    "options",
    [
        {"tools": [{"name": "a"}], "tool_choice": {"name": "b"}},
        {"messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]},
        {"response_format": {"type": "json_object"}},
        {"reasoning": "extreme"},
        {"max_tokens": 0},
    ],
)
def test_bad_options_fail_before_any_request(server: Any, connector: Any, options: Any) -> None:
    server.clear_requests()
    prompt = None if "messages" in options else "hi"
    with pytest.raises(InvalidInputError):
        connector.complete(prompt, **options)
    with pytest.raises(InvalidInputError):
        connector.stream(prompt, **options)
    assert server.requests == []
    assert connector.get_usage_summary()["totals"]["total_calls"] == 0


def test_usage_records_exactly_each_response(connector: Any) -> None:
    first = connector.complete("one two three")
    with connector.stream(messages=[{"role": "user", "content": "four five"}]) as stream:
        list(stream)
    second = stream.response
    totals = connector.get_usage_summary()["totals"]
    for bucket, attribute in (
        ("input_tokens", "input_tokens"),
        ("output_tokens", "output_tokens"),
        ("prompt_tokens", "prompt_tokens"),
    ):
        assert totals[bucket] == getattr(first.usage, attribute) + getattr(second.usage, attribute)
    last = connector.get_usage_summary()["last_call"]
    assert last["finish_reason"] == "stop" and last["streamed"] is True
    assert last["input_tokens"] == second.usage.input_tokens
    assert last["total_tokens"] == second.usage.total_tokens


def test_max_tokens_cut_is_length_through_the_connector(connector: Any) -> None:
    response = connector.complete("a b c d e f", max_tokens=2)
    assert response.finish_reason == "length"
    assert connector.get_usage_summary()["last_call"]["finish_reason"] == "length"


def test_response_json_parses_or_raises_a_typed_error() -> None:
    assert Response(text='{"a": [1]}').json() == {"a": [1]}
    from rlm_code.core.exceptions import ResponseFormatError

    with pytest.raises(ResponseFormatError, match="not valid JSON"):
        Response(text="Echo: x", provider="p").json()


def test_a_function_tool_is_read_once_and_not_kept_alive() -> None:
    """Agent loops pass the same functions on every call: the spec is made once, and the
    cache does not keep a function alive."""
    import gc
    import weakref

    def lookup(query: str) -> str:
        """Look something up."""
        return query

    first = check_tools([lookup])[0]
    assert check_tools([lookup])[0] is first
    ref = weakref.ref(lookup)
    del lookup
    gc.collect()
    assert ref() is None
