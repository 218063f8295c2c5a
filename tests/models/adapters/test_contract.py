"""The adapter contract, run against all five adapter types through the real connector.

Every case connects an `LLMConnector` to the local protocol server with one adapter type
(openai, anthropic and gemini through their official SDKs; ollama and openai_compatible over
raw HTTP) and checks what reaches the wire and what comes back: replies, exact usage, where the
system prompt and history go, parameter names, early stream exits, retries, and every fault mode
of the server against the table in `rlm_code.models.adapters` (repeated below as data).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest

from rlm_code.core.exceptions import (
    AuthenticationError,
    ContentFilterError,
    ContextLengthExceededError,
    ModelError,
    ModelNotFoundError,
    ModelTimeoutError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.testing import FAULT_MODES, LocalProtocolServer, count_tokens, echo_reply

from .conftest import (
    FAULT_READ_TIMEOUT,
    READ_TIMEOUT,
    TARGET_IDS,
    TARGETS,
    Connect,
    Target,
    assert_one_call_of_unknown_usage,
    chat_requests,
    model_key,
)

pytestmark = [
    # Third-party notices that say nothing about our code.
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

PROMPT = "hello there friend"
SYSTEM = "You are terse."
REPLY = echo_reply(PROMPT)
MODES = ("generate", "stream", "agenerate", "astream")
STREAMED = ("stream", "astream")


def run(connector: LLMConnector, mode: str, prompt: str = PROMPT, **kwargs: Any) -> str:
    """One call in `mode`; streams are joined."""
    return "".join(chunks(connector, mode, prompt, **kwargs))


def chunks(connector: LLMConnector, mode: str, prompt: str = PROMPT, **kwargs: Any) -> list[str]:
    if mode == "generate":
        return [connector.generate_response(prompt, **kwargs)]
    if mode == "stream":
        return list(connector.stream_response(prompt, **kwargs))
    if mode == "agenerate":
        return [asyncio.run(connector.agenerate_response(prompt, **kwargs))]

    async def collect() -> list[str]:
        return [chunk async for chunk in connector.astream_response(prompt, **kwargs)]

    return asyncio.run(collect())


def last_chat_body(target: Target, server: LocalProtocolServer) -> dict[str, Any]:
    requests = chat_requests(target, server)
    assert requests, "no generation request reached the server"
    body = requests[-1].json
    assert isinstance(body, dict)
    return body


# -- replies and usage ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_reply_and_exact_usage(target, connect, local_server, mode):
    connector = connect(target, local_server)
    before = connector.usage_snapshot()
    summary_before = connector.get_usage_summary()["by_model"].get(model_key(connector), {})

    pieces = chunks(connector, mode, system_prompt=SYSTEM)

    assert "".join(pieces) == REPLY
    if mode in STREAMED:
        assert pieces == ["Echo: ", "hello ", "there ", "friend"]  # one chunk per word piece
    prompt_tokens = count_tokens(SYSTEM) + count_tokens(PROMPT)
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    assert delta == {
        "total_calls": 1,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": count_tokens(REPLY),
    }
    entry = connector.get_usage_summary()["by_model"][model_key(connector)]
    assert entry["calls"] - summary_before.get("calls", 0) == 1
    assert entry["prompt_tokens"] - summary_before.get("prompt_tokens", 0) == prompt_tokens
    assert entry["unknown_usage_calls"] == summary_before.get("unknown_usage_calls", 0)
    last = connector.get_usage_summary()["last_call"]
    assert last["streamed"] is (mode in STREAMED)
    assert last["interrupted"] is False


def test_list_models_comes_from_the_provider(target, connect, local_server):
    connector = connect(target, local_server)
    models = connector.list_models()
    assert connector.get_connection_status()["model"] in models or target.model in models
    # The server's list, as each API names it (Gemini's `models/` prefix stripped).
    wanted = "gemini-2.5-flash:latest" if target.adapter == "ollama" else "gemini-2.5-flash"
    assert wanted in models


# -- what reaches the wire --------------------------------------------------------------------

CHAT_PATHS = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "ollama": "/api/chat",
    "openai_compatible": "/v1/chat/completions",
}


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_system_prompt_reaches_the_providers_own_field(target, connect, fresh_server, mode):
    connector = connect(target, fresh_server)
    run(connector, mode, system_prompt=SYSTEM)
    request = chat_requests(target, fresh_server)[-1]
    body = request.json
    if target.adapter == "gemini":
        method = ":streamGenerateContent" if mode == "stream" else ":generateContent"
        assert request.path.endswith(f"/models/{target.model}{method}")
        assert {c["role"] for c in body["contents"]} == {"user"}
    else:
        assert request.path == CHAT_PATHS[target.adapter]
    if target.adapter == "anthropic":
        assert all(m["role"] != "system" for m in body["messages"])
    assert target.system_of(body) == SYSTEM
    assert target.turns_of(body) == [("user", PROMPT)]


def test_conversation_history_is_sent_as_real_turns(target, connect, fresh_server):
    connector = connect(target, fresh_server)
    history = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
    ]
    before = connector.usage_snapshot()
    reply = connector.generate_response(
        PROMPT, system_prompt=SYSTEM, context={"conversation_history": history}
    )
    assert reply == REPLY
    body = last_chat_body(target, fresh_server)
    assert target.turns_of(body) == [
        ("user", "first question"),
        ("assistant", "first answer"),
        ("user", PROMPT),
    ]
    assert target.system_of(body) == SYSTEM
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    assert delta["prompt_tokens"] == sum(
        count_tokens(t) for t in (SYSTEM, "first question", "first answer", PROMPT)
    )


@pytest.mark.parametrize("mode", ["generate", "astream"])
def test_generation_params_use_the_providers_names(target, connect, fresh_server, mode):
    connector = connect(target, fresh_server)
    before = connector.usage_snapshot()
    reply = run(connector, mode, max_tokens=2, temperature=0.5, stop=["END"])
    assert reply == "Echo: hello"  # the server cuts the reply to max_tokens words
    params = target.params_of(last_chat_body(target, fresh_server))
    assert params == {"max_tokens": 2, "temperature": 0.5, "stop": ["END"], "absent": True}
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    assert delta["completion_tokens"] == 2


def test_anthropic_sends_a_default_max_tokens(connect, fresh_server):
    from rlm_code.models.adapters.anthropic_sdk import DEFAULT_MAX_TOKENS

    target = TARGETS[TARGET_IDS.index("anthropic")]
    connector = connect(target, fresh_server)
    connector.generate_response(PROMPT)
    assert last_chat_body(target, fresh_server)["max_tokens"] == DEFAULT_MAX_TOKENS == 4096


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_unset_params_are_not_sent(target, connect, fresh_server, mode):
    connector = connect(target, fresh_server)
    run(connector, mode)
    params = target.params_of(last_chat_body(target, fresh_server))
    assert params["temperature"] is None
    assert params["stop"] is None
    if target.adapter != "anthropic":  # Anthropic requires max_tokens
        assert params["max_tokens"] is None


# -- usage edge cases -------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_missing_usage_counts_the_call_as_unknown(target, connect, fresh_server, mode):
    connector = connect(target, fresh_server)
    before = connector.usage_snapshot()
    fresh_server.script_faults(["no_usage"])
    assert run(connector, mode) == REPLY
    assert_one_call_of_unknown_usage(connector, before)
    entry = connector.get_usage_summary()["by_model"][model_key(connector)]
    assert entry["unknown_usage_calls"] == 1
    assert entry["prompt_tokens"] == 0


# What each provider has reported after the first content chunk of a stream: OpenAI-style
# and Ollama streams report usage at the end (so: unknown), Anthropic the input tokens in
# message_start, Gemini cumulative counts on every event.
LONG_REPLY = " ".join(f"word{i}" for i in range(40))
EARLY_USAGE = {
    "openai": {"prompt_tokens": 0, "completion_tokens": 0, "unknown_usage_calls": 1},
    "openai_compatible": {"prompt_tokens": 0, "completion_tokens": 0, "unknown_usage_calls": 1},
    "ollama": {"prompt_tokens": 0, "completion_tokens": 0, "unknown_usage_calls": 1},
    # Anthropic sends input tokens at message_start and the output count only at the end:
    # a stream left before the end has an unknown output count, flagged, never 0.
    "anthropic": {
        "prompt_tokens": count_tokens(PROMPT),
        "completion_tokens": 0,
        "unknown_usage_calls": 1,
    },
    "gemini": {"prompt_tokens": count_tokens(PROMPT), "completion_tokens": 1},
}


@pytest.mark.parametrize("mode", STREAMED)
def test_breaking_a_stream_records_usage_so_far_and_connection_survives(
    target, connect, fresh_server, mode
):
    connector = connect(target, fresh_server)
    fresh_server.set_reply(connector.get_connection_status()["model"], LONG_REPLY)
    before = connector.usage_snapshot()

    received: list[str] = []
    if mode == "stream":
        with contextlib.closing(connector.stream_response(PROMPT)) as stream:
            for chunk in stream:
                received.append(chunk)
                break
    else:

        async def first_chunk() -> None:
            stream = connector.astream_response(PROMPT)
            try:
                async for chunk in stream:
                    received.append(chunk)
                    break
            finally:
                await stream.aclose()  # type: ignore[attr-defined]

        asyncio.run(first_chunk())

    assert received == ["word0 "]
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    assert delta == {"total_calls": 1, **EARLY_USAGE[target.adapter]}
    assert connector.get_usage_summary()["last_call"]["interrupted"] is True

    # The connection still works, both ways.
    assert connector.generate_response(PROMPT) == LONG_REPLY
    assert run(connector, mode) == LONG_REPLY


# -- retries ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["generate", "astream"])
def test_retry_after_is_honoured(target, connect, fresh_server, mode):
    # The server answers 429 with `Retry-After: 1` (its default; a per-request value needs an
    # `X-Retry-After` request header, which the connector does not send).
    connector = connect(target, fresh_server)
    fresh_server.script_faults(["429", "ok"])
    before = connector.usage_snapshot()
    started = time.monotonic()
    assert run(connector, mode) == REPLY
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 2.5
    assert len(chat_requests(target, fresh_server)) == 2
    assert LLMConnector.usage_delta(before, connector.usage_snapshot())["total_calls"] == 1


def test_server_errors_are_retried_until_success(target, connect, fresh_server):
    connector = connect(target, fresh_server)
    fresh_server.script_faults(["503", "500", "ok"])
    assert connector.generate_response(PROMPT) == REPLY
    assert len(chat_requests(target, fresh_server)) == 3


def test_a_rejected_key_is_never_retried(target, connect, fresh_server):
    connector = connect(target, fresh_server)
    fresh_server.script_faults(["401", "ok", "ok"])
    with pytest.raises(AuthenticationError) as info:
        connector.generate_response(PROMPT)
    assert info.value.status_code == 401
    assert len(chat_requests(target, fresh_server)) == 1
    assert fresh_server.pending_faults() == ["ok", "ok"]


def test_a_call_timeout_overrides_the_read_timeout(target, connect, fresh_server):
    connector = connect(target, fresh_server)
    fresh_server.script_faults(["hang"])
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        connector.generate_response(PROMPT, timeout=0.3)
    assert time.monotonic() - started < READ_TIMEOUT


# -- the fault table --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a fault must give: the exact error type (None: a reply), attempts, details."""

    error: type[ModelError] | None
    attempts: int = 1
    status: int | None = None
    text: str | None = None


# The table of `rlm_code.models.adapters` (module docstring), with max_attempts 3 and
# backoff_max 0.5 s, so the server's `Retry-After: 1` is not slept through.
FAULT_TABLE: dict[str, Outcome] = {
    "429": Outcome(RateLimitError, 1, status=429),
    "401": Outcome(AuthenticationError, 1, status=401),
    "404": Outcome(ModelNotFoundError, 1, status=404),
    "500": Outcome(ProviderError, 3, status=500),
    "503": Outcome(ProviderError, 3, status=503),
    "html": Outcome(ProviderError, 3, status=502),
    "malformed": Outcome(ResponseFormatError),
    "truncate": Outcome(ProviderError),
    "no_terminator": Outcome(None, text=REPLY),
    "bad_utf8": Outcome(ResponseFormatError),
    "split_utf8": Outcome(None, text="héllo → 日本"),
    "empty": Outcome(None, text=""),
    "empty_body": Outcome(ResponseFormatError),
    "drip": Outcome(None, text=REPLY),
    "hang": Outcome(ModelTimeoutError),
    "no_usage": Outcome(None, text=REPLY),
    # The provider's own 400 for each (issue 13), never retried: the request would fail again.
    "context_length": Outcome(ContextLengthExceededError, 1, status=400),
    "content_filter": Outcome(ContentFilterError, 1, status=400),
    "unsupported_parameter": Outcome(UnsupportedParameterError, 1, status=400),
}
# Streams have end markers, so a stream that ends cleanly without one is an error.
STREAM_TABLE: dict[str, Outcome] = {
    "no_terminator": Outcome(ProviderError),
    "empty_body": Outcome(ProviderError),
}
# google-genai decodes blocking answers leniently: invalid UTF-8 arrives as U+FFFD.
LENIENT = Outcome(None, text="Echo: \ufffd\ufffdhello there friend")
ADAPTER_TABLE: dict[tuple[str, str, str], Outcome] = {
    ("gemini", "bad_utf8", "generate"): LENIENT,
    ("gemini", "bad_utf8", "stream"): LENIENT,
    # Gemini blocks a prompt with a 200 without candidates; Anthropic's filter stops a stream
    # that has begun (an `error` event); Ollama has no content filter.
    **{("gemini", "content_filter", mode): Outcome(ContentFilterError) for mode in MODES},
    **{("anthropic", "content_filter", mode): Outcome(ContentFilterError) for mode in STREAMED},
    **{("ollama", "content_filter", mode): Outcome(None, text=REPLY) for mode in MODES},
}
# Seconds a fault case may take: drips pause 200 ms per frame; a hang waits for the read
# timeout (Gemini's async path: read + connect, capped by read).
TIME_LIMIT = {"drip": 4.0, "hang": 2 * FAULT_READ_TIMEOUT + 1.5}


def expected_outcome(adapter: str, fault: str, mode: str) -> Outcome:
    outcome = FAULT_TABLE[fault]
    if mode in STREAMED:
        outcome = STREAM_TABLE.get(fault, outcome)
    return ADAPTER_TABLE.get((adapter, fault, mode), outcome)


def test_the_table_covers_every_fault_mode():
    assert set(FAULT_TABLE) == set(FAULT_MODES)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", FAULT_MODES)
@pytest.mark.parametrize("target", TARGETS, ids=TARGET_IDS)
def test_fault(target: Target, fault: str, mode: str, connect: Connect, fresh_server):
    connector = connect(target, fresh_server, read=FAULT_READ_TIMEOUT, backoff_max=0.5)
    expected = expected_outcome(target.adapter, fault, mode)
    fresh_server.script_faults([fault] * 3)
    before = connector.usage_snapshot()
    started = time.monotonic()

    if expected.error is None:
        assert run(connector, mode) == expected.text
    else:
        with pytest.raises(ModelError) as info:
            run(connector, mode)
        error = info.value
        assert type(error) is expected.error, repr(error)
        assert error.provider == target.provider
        if expected.status is not None:
            assert error.status_code == expected.status
        if fault == "429":
            assert error.retry_after == 1.0
        assert str(error)  # every message says something (and what to do next)

    elapsed = time.monotonic() - started
    assert elapsed < TIME_LIMIT.get(fault, 1.5)
    if fault == "hang":
        assert elapsed >= FAULT_READ_TIMEOUT * 0.9
    assert len(chat_requests(target, fresh_server)) == expected.attempts
    if fault == "no_usage":
        assert_one_call_of_unknown_usage(connector, before)


# -- no server --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["generate", "astream"])
def test_a_stopped_server_is_a_connection_error(target, connect, mode):
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stopped = _StoppedServer(f"http://127.0.0.1:{port}")
    started = time.monotonic()
    with pytest.raises(ProviderConnectionError) as info:
        if target.adapter == "ollama":  # checked at connect time: fails there
            connect(target, stopped)
        run(connect(target, stopped), mode)
    assert info.value.provider == target.provider
    assert info.value.retryable is True
    assert time.monotonic() - started < 2.0


@dataclass(frozen=True)
class _StoppedServer:
    base_url: str

    @property
    def openai_base_url(self) -> str:
        return self.base_url + "/v1"
