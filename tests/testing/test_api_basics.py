"""The public API of `rlm_code.testing`: pure helpers, construction rules, lifecycle."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from rlm_code.testing import (
    FAULT_MODES,
    PROTOCOLS,
    LocalProtocolServer,
    count_tokens,
    echo_reply,
    run_local_server,
)
from rlm_code.testing.text import pad_reply, split_pieces, truncate_words


def test_count_tokens_and_echo_are_the_documented_functions() -> None:
    assert count_tokens("  one two\tthree\n") == 3
    assert count_tokens("") == 0
    assert echo_reply("hi there") == "Echo: hi there"


def test_pieces_join_back_to_the_reply_exactly() -> None:
    for text in ["Echo: hello  world ", "  leading", "one", "", "a\nb\tc"]:
        assert "".join(split_pieces(text)) == text
    assert split_pieces("Echo: hello world") == ["Echo: ", "hello ", "world"]


def test_padding_and_truncation_are_word_based() -> None:
    assert len(split_pieces(pad_reply("Echo: hi", 5))) == 5
    assert pad_reply("Echo: hi there", 2) == "Echo: hi there"
    assert truncate_words("Echo: one two three", 2) == ("Echo: one", True)
    assert truncate_words("Echo: one", 5) == ("Echo: one", False)


def test_constants_list_every_protocol_and_fault() -> None:
    assert PROTOCOLS == ("openai", "anthropic", "gemini", "ollama", "tgi", "llamacpp")
    expected = {
        "429",
        "401",
        "404",
        "500",
        "503",
        "html",
        "malformed",
        "truncate",
        "no_terminator",
        "bad_utf8",
        "split_utf8",
        "empty",
        "empty_body",
        "drip",
        "hang",
        "no_usage",
        "context_length",
        "content_filter",
        "unsupported_parameter",
    }
    assert set(FAULT_MODES) == expected


def test_importing_the_package_does_not_load_aiohttp() -> None:
    probe = (
        "import sys, rlm_code.testing as t; t.count_tokens('a b'); print('aiohttp' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.com", "::"])
def test_non_loopback_hosts_are_refused_without_allow_remote(host: str) -> None:
    with pytest.raises(ValueError, match="allow_remote"):
        LocalProtocolServer(host=host)


def test_allow_remote_permits_a_wildcard_bind_reached_over_loopback() -> None:
    with run_local_server(host="0.0.0.0", allow_remote=True) as server:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        with urllib.request.urlopen(server.base_url + "/api/version", timeout=5) as response:
            assert json.load(response)["version"]


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="unknown protocol"):
        LocalProtocolServer(protocols=["openai", "cohere"])
    with pytest.raises(ValueError, match="require_key"):
        LocalProtocolServer(require_key="")


def test_addresses_and_lifecycle() -> None:
    server = LocalProtocolServer(host="localhost")
    with pytest.raises(RuntimeError):
        _ = server.port
    server.start()
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        assert server.openai_base_url == server.base_url + "/v1"
        assert not server.base_url.endswith("/")
        assert server.base_urls["openai"] == server.openai_base_url
        assert server.base_urls["anthropic"] == server.base_url
    finally:
        server.stop()
        server.stop()  # idempotent
    with pytest.raises(OSError), urllib.request.urlopen(server.base_url + "/", timeout=2):
        pass


def test_recorded_requests_are_copies_with_lower_case_headers(
    fresh_server: LocalProtocolServer,
) -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    request = urllib.request.Request(
        fresh_server.openai_base_url + "/chat/completions?trace=1",
        data=body.encode(),
        headers={"Content-Type": "application/json", "Authorization": "Bearer sk-test-123"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.load(response)["choices"][0]["message"]["content"] == "Echo: x"
    snapshot = fresh_server.requests
    assert len(snapshot) == 1
    recorded = snapshot[0]
    assert (recorded.method, recorded.path, recorded.query) == (
        "POST",
        "/v1/chat/completions",
        {"trace": "1"},
    )
    assert recorded.headers["authorization"] == "Bearer sk-test-123"
    assert recorded.json["model"] == "gpt-4o-mini"
    assert recorded.body == body.encode()
    assert "sk-test-123" not in repr(recorded)  # keys stay out of assertion output
    snapshot.clear()
    assert len(fresh_server.requests) == 1
    fresh_server.clear_requests()
    assert fresh_server.requests == []


def test_disabled_protocols_answer_plain_404() -> None:
    with run_local_server(protocols=["ollama"]) as server:
        for path in ("/v1/models", "/v1beta/models", "/info", "/props", "/health"):
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(server.base_url + path, timeout=5)
            assert caught.value.code == 404
            assert caught.value.headers.get_content_type() == "text/plain"
        with urllib.request.urlopen(server.base_url + "/api/tags", timeout=5) as response:
            assert response.status == 200
