"""`response_format` with a JSON schema on the real llama.cpp server.

The server turns the schema into a grammar and masks every token that would break it, so
even a model of random weights answers with JSON that fits. First shown with raw HTTP (the
server's behaviour, independent of our code), then through `LLMConnector.complete`.

The schema keeps every value bounded (a boolean, a one-digit integer, an enum), so the
reply always closes well inside `max_tokens`. Replies are checked with `jsonschema`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from importlib.util import find_spec
from typing import Any

import jsonschema
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


def schema_errors(value: Any, schema: dict[str, Any]) -> list[str]:
    """Where `value` breaks `schema`; [] when it fits."""
    return [error.message for error in jsonschema.Draft202012Validator(schema).iter_errors(value)]


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


@pytest.fixture
def connector(llama_server: LlamaServer) -> Iterator[LLMConnector]:
    """A `llama-cpp` connector to the real server."""
    with LLMConnector() as conn:
        conn.connect_to_model("tiny", model_type="llama-cpp", base_url=llama_server.openai_base_url)
        yield conn


@pytest.mark.parametrize("prompt", PROMPTS, ids=lambda p: p.split()[0].lower())
def test_complete_with_response_format_validates(connector: LLMConnector, prompt: str) -> None:
    response = connector.complete(
        prompt, response_format=SCHEMA, temperature=0, max_tokens=MAX_TOKENS
    )
    assert response.finish_reason == "stop", response.text
    assert schema_errors(response.json(), SCHEMA) == []
    assert response.usage.output_tokens is not None and response.usage.output_tokens > 0


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
