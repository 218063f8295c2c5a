"""The Anthropic Messages wire format, driven with the official `anthropic` SDK."""

from __future__ import annotations

import warnings

import anthropic
import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

from .conftest import Clients

MODEL = "claude-sonnet-4-5-20250929"
USER = {"role": "user", "content": "hello from claude"}  # 3 tokens

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK's model notices


def test_plain_reply_with_string_system(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    message = client.messages.create(
        model=MODEL, max_tokens=100, system="Be brief please.", messages=[USER]
    )
    assert message.type == "message"
    assert message.role == "assistant"
    assert message.model == MODEL
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == "Echo: hello from claude"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (3 + 3, 4)


def test_system_blocks_and_content_blocks(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    message = client.messages.create(
        model=MODEL,
        max_tokens=100,
        system=[{"type": "text", "text": "one two"}, {"type": "text", "text": " three"}],
        messages=[
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "latest words"}]},
        ],
    )
    assert message.content[0].text == "Echo: latest words"
    assert message.usage.input_tokens == 3 + 1 + 1 + 2


def test_stream_events_text_and_usage(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.anthropic(local_server)
    with client.messages.stream(
        model=MODEL, max_tokens=100, system="Be brief please.", messages=[USER]
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["Echo: ", "hello ", "from ", "claude"]
    assert final.content[0].text == "Echo: hello from claude"
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (6, 4)


def test_raw_stream_event_order(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.anthropic(local_server)
    events = list(client.messages.create(model=MODEL, max_tokens=100, messages=[USER], stream=True))
    types = [event.type for event in events]
    assert types == [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start, delta = events[0], events[-2]
    assert start.message.usage.input_tokens == 3
    assert start.message.usage.output_tokens == 1
    assert delta.usage.output_tokens == 4
    assert delta.delta.stop_reason == "end_turn"


def test_max_tokens_truncates_and_is_required(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    message = client.messages.create(model=MODEL, max_tokens=2, messages=[USER])
    assert message.content[0].text == "Echo: hello"
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.post(
            "/v1/messages",
            body={"model": MODEL, "messages": [USER]},
            cast_to=object,
        )
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in caught.value.body["error"]["message"]


def test_models_list_uses_anthropic_shape(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    page = client.models.list()
    ids = [model.id for model in page.data]
    assert MODEL in ids
    assert all(model.type == "model" for model in page.data)
    assert page.has_more is False
    assert page.first_id == ids[0] and page.last_id == ids[-1]
    assert client.models.retrieve(MODEL).id == MODEL


def test_count_tokens(local_server: LocalProtocolServer, clients: Clients) -> None:
    client = clients.anthropic(local_server)
    counted = client.messages.count_tokens(model=MODEL, system="a b", messages=[USER])
    assert counted.input_tokens == 5


def test_require_key_missing_and_wrong(clients: Clients) -> None:
    with run_local_server(require_key="sk-ant-test-right") as server:
        wrong = clients.anthropic(server, api_key="sk-ant-test-bad")
        right = clients.anthropic(server, api_key="sk-ant-test-right")
        with pytest.raises(anthropic.AuthenticationError) as caught:
            wrong.messages.create(model=MODEL, max_tokens=10, messages=[USER])
        assert caught.value.body["error"]["type"] == "authentication_error"
        assert "sk-ant-test-bad" not in caught.value.response.text
        message = right.messages.create(model=MODEL, max_tokens=10, messages=[USER])
        assert message.content[0].text.startswith("Echo:")
        classic = right.messages.create(
            model=MODEL,
            max_tokens=10,
            messages=[USER],
            extra_headers={"Authorization": anthropic.omit, "x-api-key": "sk-ant-test-right"},
        )
        assert classic.content[0].text.startswith("Echo:")
        with pytest.raises(anthropic.AuthenticationError) as missing:
            right.messages.create(
                model=MODEL,
                max_tokens=10,
                messages=[USER],
                extra_headers={"Authorization": anthropic.omit},
            )
        assert "x-api-key header is required" in missing.value.message


def test_no_usage_leaves_usage_out_of_raw_events(
    local_server: LocalProtocolServer, clients: Clients
) -> None:
    client = clients.anthropic(local_server)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = list(
            client.messages.create(
                model="fault-no_usage", max_tokens=10, messages=[USER], stream=True
            )
        )
    start = events[0].message.to_dict()
    assert "usage" not in start
    assert "usage" not in events[-2].to_dict()
    message = client.messages.create(model="fault-no_usage", max_tokens=10, messages=[USER])
    assert "usage" not in message.to_dict()
    assert message.content[0].text == "Echo: hello from claude"
