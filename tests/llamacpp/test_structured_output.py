"""`response_format` with a JSON schema on the real llama.cpp server.

The server turns the schema into a grammar and masks every token that would break it, so
even a model of random weights answers with JSON that fits. First shown with raw HTTP (the
server's behaviour, independent of our code), then through `LLMConnector.complete`.

The schema keeps every value bounded (a boolean, a one-digit integer, an enum), so the
reply always closes well inside `max_tokens`. `jsonschema` is not a dependency, so a small
validator for exactly the keywords used here stands in for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from importlib.util import find_spec
from typing import Any

import pytest

from rlm_code import LLMConnector

from . import raw
from .conftest import LlamaServer

pytestmark = pytest.mark.skipif(
    find_spec("xllamacpp") is None, reason="xllamacpp (llama.cpp's server) is not installed"
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "ok": {"type": "boolean"},
        "digit": {"type": "integer", "minimum": 0, "maximum": 9},
        "color": {"enum": ["red", "green", "blue"]},
    },
    "required": ["ok", "digit", "color"],
    "additionalProperties": False,
}
PROMPTS = ("Answer in JSON.", "Pick a colour and a digit.", "the sky is blue")
MAX_TOKENS = 200


def schema_errors(value: Any, schema: dict[str, Any], where: str = "$") -> list[str]:
    """Where `value` breaks `schema` (type, enum, minimum/maximum, required,
    additionalProperties, properties); [] when it fits."""
    errors: list[str] = []
    kind = schema.get("type")
    checks = {
        "object": lambda v: isinstance(v, dict),
        "boolean": lambda v: isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "string": lambda v: isinstance(v, str),
    }
    if kind is not None and not checks[kind](value):
        return [f"{where}: expected {kind}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value!r} < {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: {value!r} > {schema['maximum']}")
    if kind == "object":
        properties = schema.get("properties", {})
        missing = [key for key in schema.get("required", ()) if key not in value]
        errors += [f"{where}: missing {key!r}" for key in missing]
        if schema.get("additionalProperties") is False:
            errors += [f"{where}: extra {key!r}" for key in value if key not in properties]
        for key, sub in properties.items():
            if key in value:
                errors += schema_errors(value[key], sub, f"{where}.{key}")
    return errors


def test_the_validator_rejects_what_the_schema_forbids() -> None:
    assert schema_errors({"ok": True, "digit": 3, "color": "red"}, SCHEMA) == []
    assert schema_errors({"ok": 1, "digit": 3, "color": "red"}, SCHEMA)
    assert schema_errors({"ok": True, "digit": 10, "color": "red"}, SCHEMA)
    assert schema_errors({"ok": True, "digit": 3, "color": "pink"}, SCHEMA)
    assert schema_errors({"ok": True, "digit": 3}, SCHEMA)
    assert schema_errors({"ok": True, "digit": 3, "color": "red", "x": 0}, SCHEMA)
    assert schema_errors([], SCHEMA)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
def test_server_constrains_random_weights_to_the_schema(
    llama_server: LlamaServer, stream: bool
) -> None:
    extra = {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "x", "schema": SCHEMA, "strict": True},
        }
    }
    for prompt in PROMPTS:
        reply = raw.chat(llama_server.url, prompt, max_tokens=MAX_TOKENS, stream=stream, **extra)
        assert reply.finish_reason == "stop", reply.text
        assert schema_errors(json.loads(reply.text), SCHEMA) == []


def test_without_a_schema_the_same_model_does_not_answer_json(llama_server: LlamaServer) -> None:
    """The control: the JSON above comes from the constraint, not from the model."""
    reply = raw.chat(llama_server.url, PROMPTS[0], max_tokens=24, stream=False)
    with pytest.raises(ValueError):
        json.loads(reply.text)


has_complete = pytest.mark.skipif(
    not hasattr(LLMConnector, "complete"), reason="LLMConnector.complete has not landed yet"
)


def _adapter_sends_response_format() -> bool:
    """Whether the OpenAI-compatible adapter puts a `response_format` into its request body
    yet (compared with the same request without one)."""
    from rlm_code.models.adapters.openai_compatible import chat_payload
    from rlm_code.models.types import ChatRequest, Message, ResponseFormat

    plain = ChatRequest("tiny", (Message("user", "x"),))
    shaped = replace(plain, response_format=ResponseFormat("x", SCHEMA, True))
    return chat_payload(shaped, False) != chat_payload(plain, False)


@pytest.fixture
def connector(llama_server: LlamaServer) -> Iterator[LLMConnector]:
    """A `llama-cpp` connector, once the adapter sends structured output (skipped before)."""
    if not _adapter_sends_response_format():
        pytest.skip("the openai_compatible adapter does not send response_format yet")
    with LLMConnector() as conn:
        conn.connect_to_model("tiny", model_type="llama-cpp", base_url=llama_server.openai_base_url)
        yield conn


@has_complete
@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.split()[0].lower())
def test_complete_with_response_format_validates(connector: LLMConnector, prompt: str) -> None:
    response = connector.complete(
        prompt, response_format=SCHEMA, temperature=0, max_tokens=MAX_TOKENS
    )
    assert response.finish_reason == "stop", response.text
    assert schema_errors(response.json(), SCHEMA) == []
    assert response.usage.output_tokens is not None and response.usage.output_tokens > 0


@has_complete
def test_acomplete_and_stream_with_response_format_validate(
    llama_server: LlamaServer, connector: LLMConnector
) -> None:
    prompt = PROMPTS[1]
    raw.settled(llama_server.url, prompt, 4)  # the same cached prefix for the three calls
    whole = connector.complete(prompt, response_format=SCHEMA, temperature=0, max_tokens=MAX_TOKENS)
    with connector.stream(
        prompt, response_format=SCHEMA, temperature=0, max_tokens=MAX_TOKENS
    ) as stream:
        for _event in stream:
            pass
    streamed = stream.response
    result = asyncio.run(
        connector.acomplete(prompt, response_format=SCHEMA, temperature=0, max_tokens=MAX_TOKENS)
    )
    for response in (whole, streamed, result):
        assert response.finish_reason == "stop", response.text
        assert schema_errors(response.json(), SCHEMA) == []
    assert streamed.text == whole.text == result.text
