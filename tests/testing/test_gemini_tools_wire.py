"""The Gemini wire format beyond text: function declarations and calling modes, function call
and thought parts with their signatures, `thoughtsTokenCount`, structured output, images and
the API's 400s (always, and in strict mode), over raw HTTP and through google-genai."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from google.genai import types

from rlm_code.testing import LocalProtocolServer, ScriptedReply, count_tokens
from rlm_code.testing.scripted import signature_of

from .conftest import Clients

MODEL = "gemini-2.5-flash"
TOOL = {
    "name": "read_file",
    "description": "Read a file.",
    "parametersJsonSchema": {"type": "object", "properties": {"path": {"type": "string"}}},
}
THINK = {"thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for "
    "tools to work correctly, and missing thought_signature may lead to degraded model "
    "performance. Additional data, function call `default_api:read_file` , position 2. Please "
    "refer to https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)


@pytest.fixture(scope="module")
def strict() -> Iterator[LocalProtocolServer]:
    with LocalProtocolServer(strict=True) as server:
        yield server


@pytest.fixture(scope="module")
def lenient() -> Iterator[LocalProtocolServer]:
    with LocalProtocolServer() as server:
        yield server


def post(server: LocalProtocolServer, body: dict[str, Any], stream: bool = False) -> Any:
    """(status, the JSON answer, or the SSE events' JSON objects for a stream)."""
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    request = urllib.request.Request(
        f"{server.base_url}/v1beta/models/{MODEL}:{method}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "x-goog-api-key": "AIzaTest"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    if not stream:
        return 200, json.loads(raw)
    frames = raw.decode().split("\r\n\r\n")
    assert frames[-1] == ""
    return 200, [json.loads(frame.removeprefix("data: ")) for frame in frames[:-1]]


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def parts_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    return answer["candidates"][0]["content"]["parts"]  # type: ignore[no-any-return]


def test_a_user_line_calls_a_declared_function_and_none_mode_stops_it(
    lenient: LocalProtocolServer,
) -> None:
    body = {
        "contents": [user('call read_file {"path": "a é"}')],
        "tools": [{"functionDeclarations": [TOOL]}],
    }
    status, answer = post(lenient, body)
    assert status == 200
    assert parts_of(answer) == [{"functionCall": {"name": "read_file", "args": {"path": "a é"}}}]
    assert answer["candidates"][0]["finishReason"] == "STOP"  # Gemini says STOP for calls too
    body["toolConfig"] = {"functionCallingConfig": {"mode": "NONE"}}
    status, answer = post(lenient, body)
    assert parts_of(answer) == [{"text": 'Echo: call read_file {"path": "a é"}'}]


def test_the_sdk_forces_a_named_tool_declared_with_an_openapi_schema(
    lenient: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.gemini(lenient)
    declaration = types.FunctionDeclaration(
        name="evaluate",
        parameters=types.Schema(
            type=types.Type.OBJECT,
            properties={"expression": types.Schema(type=types.Type.STRING)},
        ),
    )
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[declaration])],
        tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(
                mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["evaluate"]
            )
        ),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    response = client.models.generate_content(model=MODEL, contents="go", config=config)
    [call] = response.function_calls
    assert (call.name, call.args, call.id) == ("evaluate", {"expression": "text"}, None)


def test_a_reasoned_reply_sends_thoughts_calls_and_one_signature(
    lenient: LocalProtocolServer,
) -> None:
    reasoning = "Two files → both."
    lenient.queue_replies(
        [
            ScriptedReply(
                "Reading.", [("read_file", {"path": "a"}), ("read_file", {"path": "b"})], reasoning
            )
        ]
    )
    tools = [{"functionDeclarations": [TOOL]}]
    status, answer = post(
        lenient, {"contents": [user("go")], "tools": tools, "generationConfig": THINK}
    )
    assert status == 200
    assert parts_of(answer) == [
        {"text": reasoning, "thought": True},
        {"text": "Reading."},
        {
            "functionCall": {"name": "read_file", "args": {"path": "a"}},
            "thoughtSignature": signature_of(reasoning),
        },
        {"functionCall": {"name": "read_file", "args": {"path": "b"}}},
    ]
    thoughts = count_tokens(reasoning)
    candidates = 1 + 2 * count_tokens('{"path": "a"}')
    usage = answer["usageMetadata"]
    assert (usage["thoughtsTokenCount"], usage["candidatesTokenCount"]) == (thoughts, candidates)
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + thoughts + candidates


def test_without_include_thoughts_there_are_no_thought_parts_but_a_signature(
    lenient: LocalProtocolServer,
) -> None:
    config = {"thinkingConfig": {"thinkingBudget": 512}}
    status, answer = post(lenient, {"contents": [user("hi")], "generationConfig": config})
    assert parts_of(answer) == [
        {"text": "Echo: hi", "thoughtSignature": signature_of("Thinking about: hi")}
    ]
    assert answer["usageMetadata"]["thoughtsTokenCount"] == 3
    config = {"thinkingConfig": {"thinkingBudget": 0}}  # thinking off
    status, answer = post(lenient, {"contents": [user("hi")], "generationConfig": config})
    assert (status, parts_of(answer)) == (200, [{"text": "Echo: hi"}])
    assert "thoughtsTokenCount" not in answer["usageMetadata"]


def test_a_stream_sends_thought_pieces_then_each_call_whole(lenient: LocalProtocolServer) -> None:
    reasoning = "Plan it now"
    lenient.queue_replies([ScriptedReply("", [("read_file", {"path": "ü"})], reasoning)])
    body = {
        "contents": [user("go")],
        "tools": [{"functionDeclarations": [TOOL]}],
        "generationConfig": THINK,
    }
    status, events = post(lenient, body, stream=True)
    assert status == 200
    assert [parts_of(event) for event in events] == [
        [{"text": "Plan ", "thought": True}],
        [{"text": "it ", "thought": True}],
        [{"text": "now", "thought": True}],
        [
            {
                "functionCall": {"name": "read_file", "args": {"path": "ü"}},
                "thoughtSignature": signature_of(reasoning),
            }
        ],
    ]
    assert [e["candidates"][0].get("finishReason") for e in events] == [None, None, None, "STOP"]
    assert [e["usageMetadata"].get("thoughtsTokenCount") for e in events] == [1, 2, 3, 3]
    assert events[-1]["usageMetadata"]["candidatesTokenCount"] == count_tokens('{"path": "ü"}')


def test_a_text_stream_with_reasoning_signs_its_last_part(lenient: LocalProtocolServer) -> None:
    status, events = post(
        lenient, {"contents": [user("a b")], "generationConfig": THINK}, stream=True
    )
    assert status == 200
    parts = [part for event in events for part in parts_of(event)]
    assert [p["text"] for p in parts if p.get("thought")] == ["Thinking ", "about: ", "a ", "b"]
    assert [p["text"] for p in parts if not p.get("thought")] == ["Echo: ", "a ", "b"]
    assert [p.get("thoughtSignature") for p in parts][-1] == signature_of("Thinking about: a b")
    assert sum("thoughtSignature" in p for p in parts) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_arguments_that_are_no_object_end_the_reply_malformed(
    lenient: LocalProtocolServer, stream: bool
) -> None:
    lenient.queue_replies([ScriptedReply("Hm.", [("read_file", '{"path": ')])])
    status, answer = post(lenient, {"contents": [user("go")]}, stream=stream)
    assert status == 200
    last = answer[-1] if stream else answer
    candidate = last["candidates"][0]
    assert candidate["finishReason"] == "MALFORMED_FUNCTION_CALL"
    assert candidate["content"]["parts"] == []
    assert candidate["finishMessage"] == 'Malformed function call: {"path": '


@pytest.mark.parametrize(
    "config",
    [
        {"responseJsonSchema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
        {"responseSchema": {"type": "OBJECT", "properties": {"n": {"type": "INTEGER"}}}},
        {"response_json_schema": {"type": "object", "properties": {"n": {"type": "integer"}}}},
    ],
)
def test_structured_output_answers_an_instance_of_the_schema(
    lenient: LocalProtocolServer, config: dict[str, Any]
) -> None:
    config = {"responseMimeType": "application/json", **config}
    status, answer = post(lenient, {"contents": [user("x")], "generationConfig": config})
    assert status == 200
    assert json.loads(parts_of(answer)[0]["text"]) == {"n": 1}
    del config["responseMimeType"]  # a schema without the JSON type constrains nothing
    assert parts_of(post(lenient, {"contents": [user("x")], "generationConfig": config})[1]) == [
        {"text": "Echo: x"}
    ]


def test_images_are_accepted_and_malformed_ones_refused_like_the_api(
    lenient: LocalProtocolServer,
) -> None:
    png = base64.b64encode(b"\x89PNG").decode()
    image = {"inline_data": {"mime_type": "image/png", "data": png}}  # the SDK's spelling
    url = {"fileData": {"fileUri": "https://x.org/a.png", "mimeType": "image/png"}}
    status, answer = post(lenient, {"contents": [{"parts": [{"text": "see"}, image, url]}]})
    assert (status, parts_of(answer)) == (200, [{"text": "Echo: see"}])
    bad_data = {"inlineData": {"mimeType": "image/png", "data": "not base64!"}}
    status, error = post(lenient, {"contents": [{"parts": [{"text": "see"}, bad_data]}]})
    assert (status, error["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert error["error"]["message"] == (
        "Invalid value at 'contents[0].parts[1].inline_data.data' (TYPE_BYTES), "
        'Base64 decoding failed for "not base64!"'
    )
    for part in (
        {"inlineData": "x"},
        {"inlineData": {"data": png}},
        {"fileData": {"mimeType": "image/png"}},
    ):
        status, error = post(lenient, {"contents": [{"parts": [part]}]})
        assert status == 400, part
    status, error = post(lenient, {"contents": [{"parts": [{"inlineData": "x"}]}]})
    assert error["error"]["message"] == (
        "Invalid value at 'contents[0].parts[0].inline_data' "
        '(type.googleapis.com/google.ai.generativelanguage.v1beta.Blob), "x"'
    )


def history(signature: str | None = None, results: int = 1) -> list[dict[str, Any]]:
    """A user turn, a model turn calling read_file, then `results` function responses."""
    call: dict[str, Any] = {"functionCall": {"name": "read_file", "args": {"path": "a"}}}
    if signature is not None:
        call["thoughtSignature"] = signature
    response = {"functionResponse": {"name": "read_file", "response": {"result": "data"}}}
    contents = [user("go"), {"role": "model", "parts": [call]}]
    if results:
        contents.append({"role": "user", "parts": [response] * results})
    return contents


CONVERSATIONS = {
    "missing signature": (history(), MISSING_SIGNATURE),
    "corrupted signature": (
        history(base64.b64encode(b"other").decode()),
        "Corrupted thought signature.",
    ),
    "no function response": (
        [*history(signature_of("x"), results=0), user("go on")],
        "Please ensure that the number of function response parts is equal to the number of "
        "function call parts of the function call turn.",
    ),
    "two responses to one call": (
        history(signature_of("x"), results=2),
        "Please ensure that the number of function response parts is equal to the number of "
        "function call parts of the function call turn.",
    ),
    "a response without a call": (
        [user("go"), history()[2]],
        "Please ensure that function response turn comes immediately after a function call turn.",
    ),
    "a call first": (
        history(signature_of("x"))[1:],
        "Please ensure that function call turn comes immediately after a user turn or after a "
        "function response turn.",
    ),
}


@pytest.mark.parametrize("case", list(CONVERSATIONS))
def test_strict_mode_refuses_what_gemini_refuses(
    case: str, strict: LocalProtocolServer, lenient: LocalProtocolServer
) -> None:
    contents, message = CONVERSATIONS[case]
    body = {"contents": contents, "generationConfig": THINK}
    status, error = post(strict, body)
    assert status == 400
    assert error == {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}}
    assert post(lenient, body)[0] == 200


def test_signatures_are_checked_in_the_current_turn_only_and_only_with_thinking(
    strict: LocalProtocolServer,
) -> None:
    signed = history(signature_of("x"))
    later = [*history(), {"role": "model", "parts": [{"text": "done"}]}, user("next")]
    for contents, config in ((signed, THINK), (history(), {}), (later, THINK)):
        status, answer = post(strict, {"contents": contents, "generationConfig": config})
        assert status == 200, answer
    # In the current turn the first call part of each step is checked, not the parallel ones.
    parallel = history(signature_of("x"))
    parallel[1]["parts"].append({"functionCall": {"name": "read_file", "args": {}}})
    parallel[2]["parts"] *= 2
    assert post(strict, {"contents": parallel, "generationConfig": THINK})[0] == 200
    step = [*parallel, {"role": "model", "parts": history()[1]["parts"]}, history()[2]]
    status, error = post(strict, {"contents": step, "generationConfig": THINK})
    assert status == 400
    assert "`default_api:read_file` , position 4." in error["error"]["message"]


def test_a_signature_that_is_not_base64_is_refused_even_without_strict_mode(
    lenient: LocalProtocolServer,
) -> None:
    status, error = post(lenient, {"contents": history("%%%")})
    assert status == 400
    assert error["error"]["message"] == (
        "Invalid value at 'contents[1].parts[0].thought_signature' (TYPE_BYTES), "
        'Base64 decoding failed for "%%%"'
    )
    urlsafe = base64.urlsafe_b64encode(base64.b64decode(signature_of("x"))).decode()
    strict_body = {"contents": history(urlsafe), "generationConfig": THINK}
    assert post(lenient, strict_body)[0] == 200  # the API reads URL-safe base64 too


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
            "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/"
            'google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "SOMETIMES"',
        ),
        (
            {"generationConfig": {"thinkingConfig": {"thinkingBudget": "lots"}}},
            "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
            '"lots"',
        ),
        (
            {"tools": [{"functionDeclarations": [{"description": "no name"}]}]},
            "* GenerateContentRequest.tools[0].function_declarations[0].name: Name cannot be "
            "empty.\n",
        ),
    ],
)
def test_bad_settings_are_refused(
    lenient: LocalProtocolServer, body: dict[str, Any], message: str
) -> None:
    status, error = post(lenient, {"contents": [user("x")], **body})
    assert (status, error["error"]["message"]) == (400, message)


def test_truncate_cuts_a_reasoned_tool_call_stream_before_its_call(
    lenient: LocalProtocolServer,
) -> None:
    lenient.queue_replies([ScriptedReply("", [("read_file", {"path": "a"})], "one two three")])
    lenient.script_faults(["truncate"])
    body = {"contents": [user("go")], "generationConfig": THINK}
    request = urllib.request.Request(
        f"{lenient.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse",
        json.dumps(body).encode(),
        {"Content-Type": "application/json"},
    )
    received = b""
    with urllib.request.urlopen(request, timeout=10) as answer:
        try:
            while chunk := answer.read(1):
                received += chunk
        except Exception:  # the server aborts the connection: that is the fault
            pass
    assert b'"thought":true' in received
    assert b"functionCall" not in received and b"finishReason" not in received
