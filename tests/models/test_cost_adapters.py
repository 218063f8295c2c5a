"""Cost through the adapters and the connector: what the usage parsers read for pricing
(OpenRouter's and xAI's reported cost, xAI's reasoning counted apart, Anthropic's 1-hour cache
writes), and `Response.usage.cost_source` of real calls against 127.0.0.1 servers: the local
protocol server, and a small stub that answers with each provider's usage object."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.models.adapters._anthropic_wire import anthropic_usage
from rlm_code.models.adapters.openai_compatible import usage_counts
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.types import Usage

M = 1_000_000

# A real OpenRouter usage object (the docs' shape: cost in credits of one dollar).
OPENROUTER_USAGE = {
    "prompt_tokens": 10_427,
    "completion_tokens": 264,
    "total_tokens": 10_691,
    "cost": 0.0033789,
    "is_byok": False,
    "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0, "audio_tokens": 0},
    "cost_details": {"upstream_inference_cost": 0.0033789},
    "completion_tokens_details": {"reasoning_tokens": 0, "image_tokens": 0},
}
# xAI chat completions: reasoning apart from completion_tokens, total = all three.
XAI_USAGE = {
    "prompt_tokens": 10_120,
    "completion_tokens": 1_499,
    "total_tokens": 14_428,
    "prompt_tokens_details": {"cached_tokens": 128, "text_tokens": 10_120},
    "completion_tokens_details": {"reasoning_tokens": 2_809},
}
# Anthropic Messages with 1-hour and 5-minute cache writes.
ANTHROPIC_USAGE = {
    "input_tokens": 500,
    "cache_read_input_tokens": 2_000,
    "cache_creation_input_tokens": 10_000,
    "cache_creation": {"ephemeral_5m_input_tokens": 4_000, "ephemeral_1h_input_tokens": 6_000},
    "output_tokens": 200,
}
ANTHROPIC_BILL = (500 * 1 + 2_000 * 0.1 + 4_000 * 1.25 + 6_000 * 2 + 200 * 5) / M  # Haiku 4.5


# -- the parsers --------------------------------------------------------------------------------


def test_openrouter_cost_becomes_the_reported_cost():
    usage = usage_counts(OPENROUTER_USAGE)
    assert usage.reported_cost_usd == pytest.approx(0.0033789)
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens) == (10_427, 264, 0)


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"cost": True}, None),  # not a number
        ({"cost": "0.01"}, None),
        ({"cost": -1.0}, None),
        ({"cost": float("nan")}, None),
        ({"cost": 0}, 0.0),  # a free model really costs 0
        ({"cost": 0.01, "is_byok": True}, None),  # OpenRouter's fee alone is not the cost
        ({"cost_in_usd_ticks": 25_000_000}, 0.0025),
        ({"cost_in_usd_ticks": 2.5}, None),  # ticks are whole
        ({}, None),
    ],
)
def test_only_a_sane_reported_cost_is_taken(extra, expected):
    usage = usage_counts({"prompt_tokens": 10, "completion_tokens": 2, **extra})
    assert usage.reported_cost_usd == expected


def test_xai_reasoning_outside_completion_tokens_is_added_to_the_output():
    usage = usage_counts(XAI_USAGE)
    assert usage.output_tokens == 1_499 + 2_809
    assert usage.reasoning_tokens == 2_809
    assert (usage.input_tokens, usage.cache_read_tokens) == (10_120 - 128, 128)


@pytest.mark.parametrize(
    "body",
    [
        # OpenAI: reasoning inside completion_tokens, total = prompt + completion
        {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150,
         "completion_tokens_details": {"reasoning_tokens": 40}},
        # no total to tell: taken as OpenAI's convention
        {"prompt_tokens": 100, "completion_tokens": 50,
         "completion_tokens_details": {"reasoning_tokens": 40}},
    ],
)  # fmt: skip
def test_reasoning_inside_completion_tokens_is_not_counted_twice(body):
    assert usage_counts(body).output_tokens == 50


def test_anthropic_one_hour_writes_are_read():
    usage = anthropic_usage(ANTHROPIC_USAGE)
    assert usage == Usage(500, 200, 2_000, 10_000, None, 6_000)
    assert anthropic_usage({"input_tokens": 5, "output_tokens": 1}) == Usage(5, 1)
    hostile = {"input_tokens": 5, "output_tokens": 1, "cache_creation": "x"}
    assert anthropic_usage(hostile) == Usage(5, 1)


# -- through the connector ----------------------------------------------------------------------


@pytest.fixture
def connector(tmp_path: Path) -> Iterator[LLMConnector]:
    (tmp_path / "rlm_config.yaml").write_text(
        "timeouts: {connect: 2, read: 5}\nretries: {max_attempts: 1}\n"
    )
    with LLMConnector(config_manager=ConfigManager(project_root=tmp_path)) as conn:
        yield conn


def test_a_local_server_call_costs_zero_local(connector, local_server):
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    response = connector.complete("how much was this")
    assert response.usage.known
    assert response.usage.cost == (0.0, "local")
    with connector.stream("and this one") as stream:
        for _ in stream:
            pass
    assert stream.response.usage.cost == (0.0, "local")


def test_a_cloud_call_is_priced_from_the_table(connector, local_server):
    connector.connect_to_model(
        "openai/gpt-4o-mini", api_key="sk-test-cost-0001", base_url=local_server.openai_base_url
    )
    usage = connector.complete("price me please").usage
    assert usage.input_tokens and usage.output_tokens
    expected = (usage.input_tokens * 0.15 + usage.output_tokens * 0.6) / M
    assert usage.cost_source == "price-table"
    assert usage.cost_usd == pytest.approx(expected, rel=1e-3)


class UsageStub:
    """A 127.0.0.1 server answering chat completions and Messages, whole or streamed, with a
    fixed usage object: the shape each provider sends, which the local server does not."""

    def __init__(self, usage: dict[str, Any]) -> None:
        self.usage = usage
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                anthropic = self.path.endswith("/messages")
                streamed = bool(request.get("stream"))
                if anthropic:
                    body = stub.anthropic_stream() if streamed else stub.anthropic_whole()
                else:
                    body = stub.chat_stream() if streamed else stub.chat_whole()
                kind = "text/event-stream" if streamed else "application/json"
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def chat_whole(self) -> bytes:
        message = {"role": "assistant", "content": "priced"}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
        reply = {"id": "gen-1", "object": "chat.completion", "created": 0, "model": "m",
                 "choices": [choice], "usage": self.usage}  # fmt: skip
        return json.dumps(reply).encode()

    def chat_stream(self) -> bytes:
        base = {"id": "gen-1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        chunks = [
            {**base, "choices": [{"index": 0, "delta": {"content": "priced"}}]},
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            {**base, "choices": [], "usage": self.usage},
        ]
        frames = [f"data: {json.dumps(chunk)}\n\n" for chunk in chunks]
        return ("".join(frames) + "data: [DONE]\n\n").encode()

    def anthropic_whole(self) -> bytes:
        reply = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                 "content": [{"type": "text", "text": "priced"}], "stop_reason": "end_turn",
                 "stop_sequence": None, "usage": self.usage}  # fmt: skip
        return json.dumps(reply).encode()

    def anthropic_stream(self) -> bytes:
        start = {**self.usage, "output_tokens": 1}
        message = {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start,
        }
        events = [
            ("message_start", {"type": "message_start", "message": message}),
            ("content_block_start", {"type": "content_block_start", "index": 0,
                                     "content_block": {"type": "text", "text": ""}}),
            ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                     "delta": {"type": "text_delta", "text": "priced"}}),
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            ("message_delta", {"type": "message_delta",
                               "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                               "usage": {"output_tokens": self.usage["output_tokens"]}}),
            ("message_stop", {"type": "message_stop"}),
        ]  # fmt: skip
        return "".join(f"event: {e}\ndata: {json.dumps(d)}\n\n" for e, d in events).encode()


@pytest.fixture
def stub() -> Iterator[Any]:
    made: list[UsageStub] = []

    def make(usage: dict[str, Any]) -> UsageStub:
        made.append(UsageStub(usage))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _whole_and_streamed(connector: LLMConnector) -> list[Usage]:
    whole = connector.complete("what did this cost").usage
    with connector.stream("and streamed") as stream:
        for _ in stream:
            pass
    return [whole, stream.response.usage]


def test_openrouter_reported_cost_wins_whole_and_streamed(connector, stub):
    server = stub(OPENROUTER_USAGE)
    connector.connect_to_model(
        "openrouter/anthropic/claude-sonnet-4", api_key="sk-or-test-cost", base_url=server.url
    )
    for usage in _whole_and_streamed(connector):
        assert usage.cost == (pytest.approx(0.0033789), "provider")


def test_xai_reasoning_is_billed_whole_and_streamed(connector, stub):
    server = stub(XAI_USAGE)
    connector.connect_to_model("xai/grok-4", api_key="xai-test-cost", base_url=server.url)
    expected = (9_992 * 3 + 128 * 0.75 + (1_499 + 2_809) * 15) / M
    for usage in _whole_and_streamed(connector):
        assert usage.output_tokens == 1_499 + 2_809
        assert usage.cost_source == "price-table"
        assert usage.cost_usd == pytest.approx(expected, rel=1e-3)


def test_anthropic_one_hour_writes_are_billed_whole_and_streamed(connector, stub):
    server = stub(ANTHROPIC_USAGE)
    connector.connect_to_model(
        "anthropic/claude-haiku-4-5", api_key="sk-ant-test-cost", base_url=server.url
    )
    for usage in _whole_and_streamed(connector):
        assert usage.cache_write_1h_tokens == 6_000
        assert usage.cost_source == "price-table"
        assert usage.cost_usd == pytest.approx(ANTHROPIC_BILL, rel=1e-3)
