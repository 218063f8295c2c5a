"""The gemini adapter beyond text: tool calls with thought signatures, reasoning (thought
parts), structured output, images, tool results, finish reasons, plain and streamed, sync and
async, through the real connector, google-genai and the local protocol server (strict); and
the SDK's stream read at any chunk boundary from a loopback socket.

The five-adapter contract suite (`test_beyond_text_contract`) checks what every provider
shares; this file checks Gemini's own shapes and choices (see `_gemini_wire`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
import time
import urllib.request
from dataclasses import replace
from typing import Any

import jsonschema
import pytest
from google.genai import types
from hypothesis import given, settings
from hypothesis import strategies as st

from rlm_code import Response
from rlm_code.core.config import RetrySettings, TimeoutSettings
from rlm_code.core.exceptions import (
    ModelError,
    ProviderError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._gemini_wire import parse_reply, request_contents
from rlm_code.models.adapters.base import Endpoint, load_adapter
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.prompting import build_chat_request
from rlm_code.models.providers.registry import ProviderRegistry
from rlm_code.models.streaming import ResponseStream
from rlm_code.models.types import (
    ChatRequest,
    GenerationParams,
    Message,
    ToolCall,
    ToolCallDelta,
    ToolCallDone,
)
from rlm_code.testing import LocalProtocolServer, ScriptedReply, count_tokens
from rlm_code.testing.scripted import signature_of

from .beyond_text import (
    ARGUMENTS,
    EVALUATE,
    MODES,
    PNG,
    READ_FILE,
    REASONING,
    REPLY,
    call,
    call_with_events,
    strict_server,
    tool_loop,
    without_ids,
)
from .beyond_text import last_body as shared_last_body
from .conftest import Connect, Target, chat_requests, cut_at, serve_each

pytestmark = [
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

GEMINI = Target("gemini", "gemini", "gemini-2.5-flash", "AIzaTestGeminiBeyondText", False)
TOOLS = [
    {
        **READ_FILE,
        "parameters": {
            "type": "object",
            "properties": {"path": {"type": "string"}, "lines": {"type": "array"}},
            "required": ["path"],
        },
    },
    EVALUATE,
]
server = strict_server()


def last_body(server: LocalProtocolServer) -> dict[str, Any]:
    return shared_last_body(GEMINI, server)


def camel(value: Any) -> Any:
    """A request body with every key in camelCase: google-genai writes the objects inside a
    part by their proto names (`mime_type`), the API reads both spellings."""
    if isinstance(value, list):
        return [camel(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        head, *rest = key.split("_")
        out[head + "".join(word.title() for word in rest)] = camel(item)
    return out


# -- tool calls and reasoning ------------------------------------------------------------------


def test_tool_calls_with_reasoning_and_text_are_the_same_in_every_mode(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    signature = signature_of(REASONING)
    seen = []
    for mode in MODES:
        server.queue_replies([REPLY])
        response, events = call_with_events(
            connector, mode, "read it", tools=TOOLS, reasoning="low"
        )
        first, second = response.tool_calls
        assert (first.name, first.arguments, second.name) == ("read_file", ARGUMENTS, "evaluate")
        assert first.arguments_json == json.dumps(ARGUMENTS, ensure_ascii=False)
        assert second.arguments_json == '{"expression": "6 * 7"}'
        assert first.id != second.id and first.id.startswith("call_")
        # Parallel calls: Gemini signs the first one only.
        assert first.extra == {"google": {"thought_signature": signature}}
        assert second.extra is None
        assert (response.text, response.reasoning) == (REPLY.text, REASONING)
        assert (response.finish_reason, response.raw_finish_reason) == ("tool_calls", "STOP")
        arguments = count_tokens(first.arguments_json) + count_tokens(second.arguments_json)
        thinking = count_tokens(REASONING)
        assert response.usage.reasoning_tokens == thinking
        assert response.usage.output_tokens == count_tokens(REPLY.text) + thinking + arguments
        assert response.reasoning_details == []
        assert response.message["tool_calls"][0]["extra_content"] == first.extra
        if events:  # each call arrives whole: one delta with all of it, then its done
            calls = [e for e in events if isinstance(e, (ToolCallDelta, ToolCallDone))]
            assert calls == [
                ToolCallDelta(0, first.id, "read_file", first.arguments_json),
                ToolCallDone(first),
                ToolCallDelta(1, second.id, "evaluate", second.arguments_json),
                ToolCallDone(second),
            ]
        seen.append(without_ids(response))
    assert all(response == seen[0] for response in seen[1:]), "streamed and plain differ"


def test_a_text_reply_keeps_the_signature_of_its_last_part_for_the_next_turn(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    replies = []
    for mode in MODES:
        response = call(connector, mode, "hello there", reasoning=2048)
        replies.append(response)
    detail = {"type": "gemini.thought_signature", "signature": signature_of(replies[0].reasoning)}
    assert all(r == replies[0] for r in replies[1:])
    assert replies[0].reasoning == "Thinking about: hello there"
    assert replies[0].reasoning_details == [detail]
    assert camel(last_body(server)["generationConfig"]["thinkingConfig"]) == {
        "includeThoughts": True,
        "thinkingBudget": 2048,
    }
    messages = [{"role": "user", "content": "hello there"}, replies[0].message]
    connector.complete(messages=[*messages, {"role": "user", "content": "more"}])
    model_turn = last_body(server)["contents"][1]
    [part] = model_turn["parts"]
    assert part["text"] == "Echo: hello there"
    # The same bytes (google-genai writes bytes as URL-safe base64).
    sent = base64.urlsafe_b64decode(part["thoughtSignature"])
    assert sent == base64.b64decode(detail["signature"])


def gemini_result(tool_call: ToolCall) -> str:
    """A JSON object for `evaluate` (sent as the response itself), text for `read_file`."""
    return '{"ok": true}' if tool_call.name == "evaluate" else "file text"


@pytest.mark.parametrize("mode", MODES)
def test_a_three_turn_tool_loop_with_reasoning_passes_the_strict_server(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    messages: list[dict[str, Any]] = []
    for question in ('call read_file {"path": "a.txt"}', 'call evaluate {"expression": "1+1"}'):
        messages.append({"role": "user", "content": question})
        replies = tool_loop(
            connector, mode, messages, gemini_result, most=2, tools=TOOLS, reasoning="low"
        )
        assert all(r.reasoning for r in replies)
    assert [m["content"] for m in messages if m["role"] == "assistant" and m["content"]] == [
        "Tool result: file text",
        'Tool result: {"ok": true}',
    ]
    contents = last_body(server)["contents"]
    assert [c["role"] for c in contents] == [
        "user",
        "model",
        "user",
        "model",
        "user",
        "model",
        "user",
    ]
    call_part = contents[5]["parts"][0]
    assert set(call_part) == {"functionCall", "thoughtSignature"}  # no made-up id is sent
    assert call_part["functionCall"] == {"name": "evaluate", "args": {"expression": "1+1"}}
    answer = contents[6]["parts"]
    assert answer == [{"functionResponse": {"name": "evaluate", "response": {"ok": True}}}]
    assert contents[2]["parts"][0]["functionResponse"]["response"] == {"result": "file text"}
    assert all("thought" not in part for c in contents for part in c["parts"])


def loop_until_the_result(connector: LLMConnector) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": 'call read_file {"path": "x"}'}]
    response = connector.complete(messages=messages, tools=TOOLS, reasoning="low")
    [tool_call] = response.tool_calls
    messages.append(response.message)
    messages.append({"role": "tool", "tool_call_id": tool_call.id, "content": "data"})
    return messages


@pytest.mark.parametrize("mode", ["complete", "astream"])
def test_a_tool_loop_that_drops_the_signature_is_refused_as_gemini_does(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    messages = loop_until_the_result(connector)
    del messages[1]["tool_calls"][0]["extra_content"]
    with pytest.raises(ProviderError) as caught:
        call(connector, mode, messages=messages, tools=TOOLS, reasoning="low")
    assert caught.value.status_code == 400
    # Gemini's message (checked whole in tests/testing/test_gemini_tools_wire.py), shortened.
    assert str(caught.value).startswith(
        "gemini answered HTTP 400: Function call is missing a thought_signature in functionCall "
        "parts. This is required for tools to work correctly"
    )
    # Without thinking Gemini does not ask for signatures.
    assert call(connector, mode, messages=messages, tools=TOOLS).text == "Tool result: data"


def test_a_dropped_tool_result_or_a_changed_signature_is_refused(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    messages = loop_until_the_result(connector)
    with pytest.raises(ProviderError, match="number of function response parts is equal"):
        connector.complete(messages=[*messages[:-1], {"role": "user", "content": "go on"}])
    changed = json.loads(json.dumps(messages))
    changed[1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"] = "AAAA"
    with pytest.raises(ProviderError, match=r"Corrupted thought signature\."):
        connector.complete(messages=changed, tools=TOOLS, reasoning="low")
    changed[1]["tool_calls"][0]["extra_content"]["google"]["thought_signature"] = "no base64!"
    with pytest.raises(ModelError, match="base64"):
        connector.complete(messages=changed, tools=TOOLS, reasoning="low")


def test_gemini_call_ids_are_kept_and_sent_back_but_made_up_ones_are_not() -> None:
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"id": "fc-7", "name": "f", "args": {"a": 1}}}],
                },
                "finishReason": "STOP",
            }
        ]
    }
    reply = parse_reply(
        "gemini", types.GenerateContentResponse._from_response(response=answer, kwargs={})
    )
    assert reply is not None
    [kept] = reply.tool_calls
    assert (kept.id, kept.arguments_json, kept.extra) == ("fc-7", '{"a": 1}', None)
    made_up = replace(kept, id="call_" + "0" * 24)
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [kept.to_message(), made_up.to_message()],
        },
        {"role": "tool", "tool_call_id": "fc-7", "content": "1"},
        {"role": "tool", "tool_call_id": made_up.id, "content": "[2]"},
    ]
    request = build_chat_request("m", None, messages, None, GenerationParams())
    contents = request_contents(request, "gemini")
    assert isinstance(contents, list)
    assert contents[1]["parts"] == [
        {"function_call": {"name": "f", "args": {"a": 1}, "id": "fc-7"}},
        {"function_call": {"name": "f", "args": {"a": 1}}},
    ]
    assert contents[2] == {  # consecutive tool turns: one user content
        "role": "user",
        "parts": [
            {"function_response": {"name": "f", "response": {"result": "1"}, "id": "fc-7"}},
            {"function_response": {"name": "f", "response": {"result": "[2]"}}},
        ],
    }


@pytest.mark.parametrize("mode", MODES)
def test_a_malformed_function_call_is_a_typed_error(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    server.queue_replies([ScriptedReply(tool_calls=[("read_file", '{"path": "cut')])])
    with pytest.raises(ResponseFormatError, match="MALFORMED_FUNCTION_CALL"):
        call(connector, mode, "x", tools=TOOLS)


# -- the other settings -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "config", "called"),
    [
        ("auto", {"mode": "AUTO"}, ["read_file"]),
        ("none", {"mode": "NONE"}, []),
        ("required", {"mode": "ANY"}, ["read_file"]),
        ({"name": "evaluate"}, {"mode": "ANY", "allowedFunctionNames": ["evaluate"]}, ["evaluate"]),
    ],
)
def test_tools_and_tool_choice_go_out_as_declarations_and_a_calling_mode(
    choice: Any,
    config: dict[str, Any],
    called: list[str],
    server: LocalProtocolServer,
    connect: Connect,
) -> None:
    connector = connect(GEMINI, server)
    response = connector.complete('call read_file {"path": "p"}', tools=TOOLS, tool_choice=choice)
    assert [c.name for c in response.tool_calls] == called
    body = camel(last_body(server))
    assert body["toolConfig"] == {"functionCallingConfig": config}
    declarations = body["tools"][0]["functionDeclarations"]
    assert declarations[0] == {
        "name": "read_file",
        "description": "Read a text file.",
        "parametersJsonSchema": TOOLS[0]["parameters"],
    }


SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "integer"}},
    },
    "required": ["title", "tags"],
}


@pytest.mark.parametrize("mode", MODES)
def test_a_json_schema_reply_validates(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    response = call(connector, mode, "describe it", response_format=SCHEMA)
    jsonschema.validate(response.json(), SCHEMA)
    config = last_body(server)["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == SCHEMA


def test_images_go_inline_or_by_https_url_and_the_rest_is_refused_before_io(
    server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)

    def ask(url: str) -> Response:
        image = {"type": "image_url", "image_url": {"url": url}}
        text = {"type": "text", "text": "see"}
        return connector.complete(messages=[{"role": "user", "content": [text, image]}])

    assert ask(f"data:image/png;base64,{PNG}").text == "Echo: see"
    parts = camel(last_body(server))["contents"][0]["parts"]
    assert parts == [{"text": "see"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}]
    ask("https://example.com/shots/a%20b.JPEG?X-Signature=abc")
    parts = camel(last_body(server))["contents"][0]["parts"]
    url = "https://example.com/shots/a%20b.JPEG?X-Signature=abc"
    assert parts[1] == {"fileData": {"fileUri": url, "mimeType": "image/jpeg"}}
    before = len(chat_requests(GEMINI, server))
    for bad in ("http://example.com/a.png", "https://example.com/image", "https://x.org/a.svg"):
        with pytest.raises(UnsupportedParameterError, match="gemini"):
            ask(bad)
    assert len(chat_requests(GEMINI, server)) == before


@pytest.mark.parametrize("mode", MODES)
def test_max_tokens_cutting_a_reply_is_length(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    response = call(connector, mode, "one two three four five", max_tokens=2)
    assert (response.finish_reason, response.raw_finish_reason) == ("length", "MAX_TOKENS")
    assert response.text == "Echo: one"


# -- cut streams and bodies ---------------------------------------------------------------------

BIG = {"text": "é" + "word " * 600 + "€ end"}


@pytest.mark.parametrize("mode", ["complete", "acomplete"])
def test_a_whole_reply_cut_inside_tool_arguments_is_a_typed_error(
    mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    server.queue_replies([ScriptedReply(tool_calls=[("read_file", BIG)])])
    server.script_faults(["truncate"])
    with pytest.raises(ModelError):
        call(connector, mode, "x", tools=TOOLS)


@pytest.mark.parametrize("fault", ["truncate", "no_terminator"])
@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_a_stream_cut_around_its_tool_call_is_a_typed_error_never_a_reply(
    fault: str, mode: str, server: LocalProtocolServer, connect: Connect
) -> None:
    connector = connect(GEMINI, server)
    server.queue_replies([ScriptedReply(tool_calls=[("read_file", BIG)], reasoning=REASONING)])
    server.script_faults([fault])
    with pytest.raises(ProviderError, match=r"closed the connection|end marker|finish_reason"):
        call(connector, mode, "x", tools=TOOLS, reasoning="low")


def recorded_stream() -> bytes:
    """The local server's stream of `REPLY` (thoughts, text, two calls), as raw bytes."""
    body = {
        "contents": [{"role": "user", "parts": [{"text": "go"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }
    with LocalProtocolServer() as local:
        local.queue_replies([REPLY])
        url = f"{local.base_url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
        headers = {"x-goog-api-key": "AIzaTest", "Content-Type": "application/json"}
        request = urllib.request.Request(url, json.dumps(body).encode(), headers)
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bytes(answer.read())


class Replay:
    """A loopback server that answers every request with `stream`, written in `segments`."""

    def __init__(self) -> None:
        self.stream = recorded_stream()
        self.segments: list[bytes] = [self.stream]
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        threading.Thread(target=serve_each, args=(self._sock, self._one), daemon=True).start()

    def _one(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(
                next(
                    (
                        line.split(b":")[1]
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    b"0",
                )
            )
            while len(body) < length:
                body += conn.recv(65536)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
            )
            pause = 0.0005 if len(self.segments) < 100 else 0.0
            for segment in self.segments:
                conn.sendall(segment)
                time.sleep(pause)

    def close(self) -> None:
        self._sock.close()


@pytest.fixture(scope="module")
def replay() -> Any:
    server = Replay()
    endpoint = Endpoint(
        ProviderRegistry.default().get("gemini"), "gemini-2.5-flash", server.url, "AIzaTestReplay",
        TimeoutSettings(connect=5, read=10), RetrySettings(max_attempts=1),
    )  # fmt: skip
    adapter = load_adapter("gemini")(endpoint)
    yield server, adapter
    adapter.close()
    server.close()


REQUEST = ChatRequest("gemini-2.5-flash", (Message("user", "go"),))


def events_of(adapter: Any, asynchronous: bool = False) -> tuple[list[Any], Response]:
    """The adapter's events (made-up ids blanked) and the `Response` they build."""
    if asynchronous:

        async def collect() -> list[Any]:
            return [event async for event in adapter.astream(REQUEST)]

        events = asyncio.run(collect())
    else:
        events = list(adapter.stream(REQUEST))
    stream = ResponseStream(iter(events), "gemini", "gemini-2.5-flash")
    list(stream)
    blank = [
        replace(e, id=None) if isinstance(e, ToolCallDelta)
        else ToolCallDone(replace(e.tool_call, id="")) if isinstance(e, ToolCallDone)
        else e
        for e in events
    ]  # fmt: skip
    return blank, without_ids(stream.response)


def test_the_recorded_stream_reads_as_the_plain_reply(replay: Any) -> None:
    server, adapter = replay
    server.segments = [server.stream]
    events, response = events_of(adapter)
    assert response.text == REPLY.text and response.reasoning == REASONING
    assert [c.arguments for c in response.tool_calls] == [ARGUMENTS, {"expression": "6 * 7"}]
    assert response.finish_reason == "tool_calls" and response.complete
    server.segments = [bytes([b]) for b in server.stream]  # a write per byte
    assert events_of(adapter) == (events, response)
    assert events_of(adapter, asynchronous=True) == (events, response)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_chunk_boundaries_anywhere_change_nothing(replay: Any, data: st.DataObject) -> None:
    server, adapter = replay
    body = server.stream
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=len(body)), max_size=30))
    server.segments = [body]
    whole = events_of(adapter)
    server.segments = cut_at(body, sorted(cuts))
    assert events_of(adapter) == whole


def test_cuts_inside_every_multibyte_character_change_nothing(replay: Any) -> None:
    server, adapter = replay
    server.segments = [server.stream]
    whole = events_of(adapter)
    text = server.stream.decode("utf-8")
    cuts, offset = [], 0
    for char in text:
        size = len(char.encode("utf-8"))
        cuts += range(offset + 1, offset + size)
        offset += size
    assert len(cuts) >= 8  # inside 2-, 3- and 4-byte characters
    server.segments = cut_at(server.stream, cuts)
    assert events_of(adapter) == whole
    assert events_of(adapter, asynchronous=True) == whole
