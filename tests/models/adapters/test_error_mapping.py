"""Provider error bodies -> the typed errors an agent can act on, at the boundary (issue 13).

Every body here is one a provider really sent (quoted in public issue threads or taken from
the server's source), so the regexes are held to the real strings, not to our guess of them.
The same errors through the connector against the local server's fault modes, for all five
adapters, are in `test_contract.py`'s fault table and `tests/testing/test_error_faults.py`.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from rlm_code.core.exceptions import (
    ContentFilterError,
    ContextLengthExceededError,
    InvalidInputError,
    ModelError,
    ProviderError,
    RateLimitError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._error_bodies import body_error
from rlm_code.models.adapters._gemini_errors import blocked_prompt
from rlm_code.models.adapters.errors import error_for_status, stream_error

from .conftest import chat_requests


def openai_body(message: str, code: str | None, param: str | None = None, **extra: Any) -> str:
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    return json.dumps({"error": {**error, **extra}})


def anthropic_body(message: str, kind: str = "invalid_request_error") -> str:
    return json.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011C"}
    )


def gemini_body(message: str, status: str = "INVALID_ARGUMENT", code: int = 400) -> str:
    return json.dumps({"error": {"code": code, "message": message, "status": status}})


def llamacpp_body(message: str, prompt: int, ctx: int, code: int = 400) -> str:
    error = {
        "code": code,
        "message": message,
        "type": "exceed_context_size_error",
        "n_prompt_tokens": prompt,
        "n_ctx": ctx,
    }
    return json.dumps({"error": error})


# -- context length: (provider, status, body, limit, requested) ---------------------------------

VLLM_OBJECT_ERROR = '{"object": "error", "type": "BadRequestError", "param": null, "code": 400}'

CONTEXT_CASES: dict[str, tuple[str, int, str, int | None, int | None]] = {
    "openai messages resulted in": (
        "openai",
        400,
        openai_body(
            "This model's maximum context length is 16385 tokens. However, your messages "
            "resulted in 16468 tokens. Please reduce the length of the messages.",
            "context_length_exceeded",
            "messages",
        ),
        16385,
        16468,
    ),
    "openai requested with completion": (
        "openai",
        400,
        openai_body(
            "This model's maximum context length is 4097 tokens. However, you requested 4268 "
            "tokens (4012 in the messages, 256 in the completion). Please reduce the length of "
            "the messages or completion.",
            "context_length_exceeded",
            "messages",
        ),
        4097,
        4268,
    ),
    "vllm top-level object error": (
        "vllm",
        400,
        json.dumps(
            {
                **json.loads(VLLM_OBJECT_ERROR),
                "message": "This model's maximum context length is 262144 tokens. However, "
                "your request has 372027 input tokens. Please reduce the length of the input "
                "messages. None",
            }
        ),
        262144,
        372027,
    ),
    "vllm total with output tokens": (
        "vllm",
        400,
        openai_body(
            "This model's maximum context length is 32768 tokens. However, you requested 512 "
            "output tokens and your prompt contains 32836 input tokens, for a total of 33348 "
            "tokens (32836 + 512 = 33348 > 32768). Please reduce the length of the input prompt "
            "or the number of requested output tokens.",
            None,
        ),
        32768,
        33348,
    ),
    "vllm max_tokens too large": (
        "vllm",
        400,
        openai_body(
            "'max_tokens' or 'max_completion_tokens' is too large: 1000. This model's maximum "
            "context length is 4096 tokens and your request has 3500 input tokens "
            "(1000 > 4096 - 3500).",
            None,
        ),
        4096,
        4500,
    ),
    "anthropic prompt is too long": (
        "anthropic",
        400,
        anthropic_body("prompt is too long: 219898 tokens > 200000 maximum"),
        200000,
        219898,
    ),
    "gemini input token count": (
        "gemini",
        400,
        gemini_body(
            "The input token count (1200293) exceeds the maximum number of tokens allowed "
            "(1048576)."
        ),
        1048576,
        1200293,
    ),
    "gemini wrapped in a list": (
        "gemini",
        400,
        "["
        + gemini_body(
            "The input token count (134123) exceeds the maximum number of tokens allowed (131072)."
        )
        + "]",
        131072,
        134123,
    ),
    "llama.cpp exceed_context_size_error": (
        "llamacpp",
        400,
        llamacpp_body(
            "request (13392 tokens) exceeds the available context size (8192 tokens), try "
            "increasing it",
            13392,
            8192,
        ),
        8192,
        13392,
    ),
    "llama.cpp legacy 500": (
        "llamacpp",
        500,
        llamacpp_body(
            "the request exceeds the available context size. try increasing the context size "
            "or enable context shift",
            1407,
            256,
            code=500,
        ),
        256,
        1407,
    ),
    "ollama wrapping the runner's body": (
        "ollama",
        400,
        json.dumps(
            {
                "error": llamacpp_body(
                    "request (351 tokens) exceeds the available context size (256 tokens), "
                    "try increasing it",
                    351,
                    256,
                )
            }
        ),
        256,
        351,
    ),
    "ollama embeddings": (
        "ollama",
        400,
        json.dumps({"error": "the input length exceeds the context length"}),
        None,
        None,
    ),
    "tgi validation": (
        "tgi",
        422,
        json.dumps(
            {
                "error": "Input validation error: `inputs` tokens + `max_new_tokens` must be "
                "<= 1512. Given: 1000 `inputs` tokens and 1024 `max_new_tokens`",
                "error_type": "validation",
            }
        ),
        1512,
        2024,
    ),
}


@pytest.mark.parametrize("case", CONTEXT_CASES, ids=list(CONTEXT_CASES))
def test_a_context_length_body_is_context_length_exceeded(case: str) -> None:
    provider, status, body, limit, requested = CONTEXT_CASES[case]
    error = error_for_status(provider, status, body)
    assert type(error) is ContextLengthExceededError, repr(error)
    assert (error.limit, error.requested) == (limit, requested)
    assert error.provider == provider and error.status_code == status
    assert error.retryable is False  # the same request fails the same way (even a 500)
    assert "context" in str(error) and "Shorten" in str(error)  # says what to do next
    if limit is not None and requested is not None:
        assert f"{requested} tokens asked for, {limit} allowed" in str(error)


# -- content filter ------------------------------------------------------------------------------

AZURE_FILTER = openai_body(
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    "content_filter",
    "prompt",
    status=400,
    innererror={
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {"jailbreak": {"filtered": True, "detected": True}},
    },
)
FILTER_CASES: dict[str, tuple[str, str]] = {
    "azure content_filter": ("openai", AZURE_FILTER),
    "openai content_policy_violation": (
        "openai",
        json.dumps(
            {
                "error": {
                    "code": "content_policy_violation",
                    "message": "Your request was rejected as a result of our safety system. "
                    "Your prompt may contain text that is not allowed by our safety system.",
                    "param": None,
                    "type": "invalid_request_error",
                }
            }
        ),
    ),
    "openai invalid_prompt flagged": (
        "openai",
        openai_body(
            "Invalid prompt: your prompt was flagged as potentially violating our usage policy. "
            "Please try again with a different prompt: "
            "https://platform.openai.com/docs/guides/reasoning#advice-on-prompting",
            "invalid_prompt",
        ),
    ),
    "anthropic output blocked": (
        "anthropic",
        anthropic_body("Output blocked by content filtering policy"),
    ),
}


@pytest.mark.parametrize("case", FILTER_CASES, ids=list(FILTER_CASES))
def test_a_content_filter_body_is_content_filter_error(case: str) -> None:
    provider, body = FILTER_CASES[case]
    error = error_for_status(provider, 400, body)
    assert type(error) is ContentFilterError, repr(error)
    assert error.provider == provider and error.status_code == 400
    assert error.retryable is False
    assert "Rephrase" in str(error)


def test_an_invalid_prompt_that_is_not_about_safety_stays_a_provider_error() -> None:
    body = openai_body("Invalid prompt: the schema is not valid JSON Schema.", "invalid_prompt")
    assert type(error_for_status("openai", 400, body)) is ProviderError


# -- unsupported parameter: (provider, body, the setting's name) -------------------------------

UNSUPPORTED_CASES: dict[str, tuple[str, str, str]] = {
    "openai unsupported_parameter": (
        "openai",
        openai_body(
            "Unsupported parameter: 'temperature' is not supported with this model.",
            "unsupported_parameter",
            "temperature",
        ),
        "temperature",
    ),
    "openai unsupported parameter, code null": (
        "openai",
        openai_body(
            "Unsupported parameter: 'temperature' is not supported with this model.",
            None,
            "temperature",
        ),
        "temperature",
    ),
    "openai unsupported_value": (
        "openai",
        openai_body(
            "Unsupported value: 'temperature' does not support 0.1 with this model. Only the "
            "default (1) value is supported.",
            "unsupported_value",
            "temperature",
        ),
        "temperature",
    ),
    "openai unrecognized argument": (
        "openai",
        openai_body("Unrecognized request argument supplied: reasoning_effort", None),
        "reasoning_effort",
    ),
    "anthropic temperature and top_p": (
        "anthropic",
        anthropic_body(
            "`temperature` and `top_p` cannot both be specified for this model. Please use only "
            "one."
        ),
        "temperature",
    ),
    "anthropic extra input": (
        "anthropic",
        anthropic_body("response_format: Extra inputs are not permitted"),
        "response_format",
    ),
    "gemini feature not enabled": (
        "gemini",
        gemini_body("Function calling is not enabled for models/gemma-3-12b-it"),
        "Function calling",
    ),
    "gemini unknown field": (
        "gemini",
        gemini_body('Invalid JSON payload received. Unknown name "top_k": Cannot find field.'),
        "top_k",
    ),
    "ollama does not support thinking": (
        "ollama",
        json.dumps({"error": '"qwen3-coder:30b" does not support thinking'}),
        "thinking",
    ),
    "ollama openai-compatible route": (
        "ollama",
        openai_body('"llama3.1:8b" does not support thinking', None),
        "thinking",
    ),
    "ollama tools, older wording": (
        "ollama",
        json.dumps({"error": "registry.ollama.ai/library/gemma:2b does not support tools"}),
        "tools",
    ),
    "llama.cpp unsupported param": (
        "llamacpp",
        json.dumps(
            {
                "error": {
                    "code": 400,
                    "message": "Unsupported param: best_of",
                    "type": "invalid_request_error",
                }
            }
        ),
        "best_of",
    ),
}


@pytest.mark.parametrize("case", UNSUPPORTED_CASES, ids=list(UNSUPPORTED_CASES))
def test_an_unsupported_parameter_body_is_unsupported_parameter_error(case: str) -> None:
    provider, body, name = UNSUPPORTED_CASES[case]
    error = error_for_status(provider, 400, body)
    assert type(error) is UnsupportedParameterError, repr(error)
    assert isinstance(error, InvalidInputError)  # a bad request of ours, not the provider failing
    assert f"'{name}'" in str(error)
    assert error.provider == provider and error.status_code == 400 and error.retryable is False


# -- what keeps its old meaning -----------------------------------------------------------------

OTHER_CASES: dict[str, tuple[int, str, type[ModelError]]] = {
    "anthropic rate limit mentions prompt length": (
        429,
        anthropic_body(
            "Number of request tokens has exceeded your per-minute rate limit; please reduce the "
            "prompt length or the maximum tokens requested, or try again later.",
            "rate_limit_error",
        ),
        RateLimitError,
    ),
    "anthropic max_tokens over the output limit": (
        400,
        anthropic_body(
            "max_tokens: 10000 > 4096, which is the maximum allowed number of output tokens for "
            "claude-3-5-sonnet-20240620"
        ),
        ProviderError,
    ),
    "a malformed nested message": (
        400,
        anthropic_body("messages.65.content.1.tool_use.text: Extra inputs are not permitted"),
        ProviderError,
    ),
    "gemini schema keyword inside a tool": (
        400,
        gemini_body(
            'Invalid JSON payload received. Unknown name "const" at '
            "'tools[0].function_declarations[5].parameters.properties[8].value.any_of[0]': "
            "Cannot find field."
        ),
        ProviderError,
    ),
    "an HTML 500": (500, "<html><body>Internal Server Error</body></html>", ProviderError),
}


@pytest.mark.parametrize("case", OTHER_CASES, ids=list(OTHER_CASES))
def test_other_bodies_keep_their_meaning(case: str) -> None:
    status, body, expected = OTHER_CASES[case]
    assert type(error_for_status("p", status, body)) is expected


def test_a_500_without_a_known_body_is_still_retried() -> None:
    error = error_for_status("p", 500, openai_body("The server had an error.", None))
    assert type(error) is ProviderError and error.retryable is True


def test_a_401_naming_the_context_stays_an_authentication_error() -> None:
    body = openai_body("maximum context length is 10 tokens", "context_length_exceeded")
    assert body_error("p", 401, body, "") is None
    assert type(error_for_status("p", 401, body)).__name__ == "AuthenticationError"


# -- inside a 200: stream error events and error lines -------------------------------------------


def test_a_mid_stream_error_event_is_typed_by_its_body() -> None:
    event = {
        "type": "error",
        "error": {
            "details": None,
            "type": "invalid_request_error",
            "message": "Output blocked by content filtering policy",
        },
        "request_id": "req_011CaxpiP7NSqAVnWCHuZz1v",
    }
    error = stream_error("anthropic", json.dumps(event))
    assert type(error) is ContentFilterError and error.status_code is None
    assert "Output blocked by content filtering policy" in str(error)


def test_a_mid_stream_llamacpp_context_error_keeps_its_figures() -> None:
    frame = llamacpp_body(
        "the request exceeds the available context size. try increasing the context size or "
        "enable context shift",
        14429,
        8192,
    )
    error = stream_error("llamacpp", frame)
    assert type(error) is ContextLengthExceededError
    assert (error.limit, error.requested) == (8192, 14429)


def test_an_unknown_mid_stream_error_is_a_provider_error_saying_where() -> None:
    error = stream_error("anthropic", anthropic_body("Overloaded", "overloaded_error"))
    assert type(error) is ProviderError and "failed mid-stream: Overloaded" in str(error)
    error = stream_error("ollama", json.dumps({"error": "boom"}), "failed")
    assert str(error).startswith("ollama failed: boom")


def test_an_echoed_key_in_a_typed_error_is_redacted() -> None:
    key = "sk-test-" + "k" * 40
    body = anthropic_body(f"prompt is too long: 210000 tokens > 200000 maximum ({key})")
    error = error_for_status("anthropic", 400, body)
    assert isinstance(error, ContextLengthExceededError) and error.requested == 210000
    assert key not in str(error) and key not in repr(error)


# -- Gemini's blocked prompt: a 200 without candidates -------------------------------------------


def test_a_gemini_blocked_prompt_is_a_content_filter_error() -> None:
    feedback = SimpleNamespace(
        block_reason=SimpleNamespace(value="PROHIBITED_CONTENT"), block_reason_message=None
    )
    error = blocked_prompt("gemini", SimpleNamespace(prompt_feedback=feedback))
    assert type(error) is ContentFilterError
    assert "PROHIBITED_CONTENT" in str(error) and error.status_code is None
    assert blocked_prompt("gemini", SimpleNamespace(prompt_feedback=None)) is None
    unblocked = SimpleNamespace(block_reason=None, block_reason_message=None)
    assert blocked_prompt("gemini", SimpleNamespace(prompt_feedback=unblocked)) is None


# -- the stream parsers raise them too -----------------------------------------------------------


def test_the_parsers_type_an_error_inside_a_200() -> None:
    from rlm_code.models.adapters._anthropic_wire import failed
    from rlm_code.models.adapters._lines import SSEEvent
    from rlm_code.models.adapters._ollama_wire import ChatReader
    from rlm_code.models.adapters.openai_compatible import ChatEvents, parse_completion

    blocked = json.loads(anthropic_body("Output blocked by content filtering policy"))
    assert type(failed(blocked, "anthropic")) is ContentFilterError
    frame = llamacpp_body("request (9 tokens) exceeds the available context size (8 tokens)", 9, 8)
    with pytest.raises(ContextLengthExceededError) as caught:
        ChatEvents("llamacpp").event(SSEEvent(frame.encode()))
    assert (caught.value.limit, caught.value.requested) == (8, 9)
    with pytest.raises(ContextLengthExceededError):
        ChatEvents("llamacpp").event(SSEEvent(frame.encode(), "error"))
    with pytest.raises(UnsupportedParameterError):
        parse_completion(json.loads(UNSUPPORTED_CASES["llama.cpp unsupported param"][1]), "p")
    ollama_line = json.loads(CONTEXT_CASES["ollama wrapping the runner's body"][2])
    with pytest.raises(ContextLengthExceededError) as caught:
        ChatReader("ollama").events(ollama_line)
    assert (caught.value.limit, caught.value.requested) == (256, 351)
    with pytest.raises(ProviderError, match="ollama failed: model crashed"):
        ChatReader("ollama").events({"error": "model crashed"})


# -- through the connector: the figures reach the caller -----------------------------------------


@pytest.mark.parametrize("streamed", [False, True], ids=["generate", "stream"])
def test_the_connector_hands_the_figures_to_the_caller(target, connect, fresh_server, streamed):
    from rlm_code.testing.faults import DEFAULT_CONTEXT_LIMIT, DEFAULT_CONTEXT_REQUESTED

    connector = connect(target, fresh_server)
    fresh_server.script_faults(["context_length"])
    with pytest.raises(ContextLengthExceededError) as caught:
        if streamed:
            list(connector.stream_response("hello"))
        else:
            connector.generate_response("hello")
    error = caught.value
    assert (error.limit, error.requested) == (DEFAULT_CONTEXT_LIMIT, DEFAULT_CONTEXT_REQUESTED)
    assert error.provider == target.provider and error.status_code == 400
    assert len(chat_requests(target, fresh_server)) == 1  # not retried
