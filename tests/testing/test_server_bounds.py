"""The server stays bounded and responsive under abuse (issue 10, item 20).

A long-running ``serve-local`` used to keep every request body it ever received (+416 MB after
25 requests of 8 MB), and a Gemini stream of many chunks was encoded in one block (quadratic in
the chunk count) before its first byte, stalling every other request on the event loop. These
tests read the server's own recorded state for the memory bound, and for the loop show a second
request answered while a 100,000-chunk Gemini stream is still being sent.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx2
import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server
from rlm_code.testing.state import DEFAULT_MAX_RECORDED_BODY, DEFAULT_MAX_RECORDED_REQUESTS

_BIG = 8 * 1024 * 1024
_CHUNKS = 100_000


def _chat_body(content: str) -> bytes:
    message = {"role": "user", "content": content}
    return json.dumps({"model": "gpt-4o-mini", "messages": [message], "max_tokens": 1}).encode()


def test_large_request_bodies_are_not_kept(fresh_server: LocalProtocolServer) -> None:
    body = _chat_body("x" * _BIG)
    url = fresh_server.openai_base_url + "/chat/completions"
    with httpx2.Client(timeout=60) as client:
        for _ in range(25):
            response = client.post(url, content=body, headers={"Content-Type": "application/json"})
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"] == "Echo:"
    recorded = fresh_server.requests
    assert len(recorded) == 25
    kept = sum(len(request.body) for request in recorded)
    assert kept <= 25 * DEFAULT_MAX_RECORDED_BODY  # 200 MB before the bound
    assert fresh_server.recorded_bytes == kept
    for request in recorded:
        assert request.truncated
        assert request.json is None  # the parsed 8 MB is not kept alive either
        assert request.body_size == len(body)
        assert request.body == body[:DEFAULT_MAX_RECORDED_BODY]


def test_small_bodies_are_kept_whole_with_their_json(fresh_server: LocalProtocolServer) -> None:
    body = _chat_body("hello there")
    with httpx2.Client(timeout=10) as client:
        client.post(fresh_server.openai_base_url + "/chat/completions", content=body)
    (request,) = fresh_server.requests
    assert not request.truncated
    assert request.body == body
    assert request.body_size == len(body)
    assert request.json["messages"][0]["content"] == "hello there"


def test_only_the_newest_requests_are_kept() -> None:
    with run_local_server(max_recorded_requests=3, max_recorded_body=10) as server:
        with httpx2.Client(timeout=10) as client:
            for index in range(5):
                client.post(
                    server.openai_base_url + f"/chat/completions?n={index}",
                    content=_chat_body(f"message {index}"),
                )
        recorded = server.requests
        assert [request.query["n"] for request in recorded] == ["2", "3", "4"]
        assert all(len(request.body) == 10 and request.truncated for request in recorded)
        assert server.recorded_bytes == 30


def test_the_default_limits_are_the_documented_ones() -> None:
    import rlm_code.testing

    assert DEFAULT_MAX_RECORDED_REQUESTS == 1000
    assert DEFAULT_MAX_RECORDED_BODY == 64 * 1024
    doc = rlm_code.testing.__doc__ or ""
    assert "default 1000" in doc and "default 64 KiB" in doc


@pytest.mark.parametrize("option", ["max_recorded_requests", "max_recorded_body"])
def test_negative_limits_are_refused(option: str) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        options: dict[str, Any] = {option: -1}
        LocalProtocolServer(**options)


def test_a_long_gemini_stream_does_not_block_other_requests(
    fresh_server: LocalProtocolServer,
) -> None:
    url = fresh_server.base_url + "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    payload = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    first_event = threading.Event()
    finished = threading.Event()
    outcome: dict[str, Any] = {"events": 0, "bad_counts": 0}

    def read_stream() -> None:
        try:
            with httpx2.Client(timeout=120) as client:
                headers = {"X-Stream-Chunks": str(_CHUNKS)}
                with client.stream("POST", url, json=payload, headers=headers) as response:
                    for line in response.iter_lines():
                        if not line.startswith("data: "):
                            continue
                        event = json.loads(line[6:])
                        outcome["events"] += 1
                        count = event["usageMetadata"]["candidatesTokenCount"]
                        if count != outcome["events"]:  # cumulative: one word per event
                            outcome["bad_counts"] += 1
                        outcome["last"] = event
                        first_event.set()
        except Exception as exc:  # reported by the assertions below
            outcome["error"] = repr(exc)
        finally:
            finished.set()
            first_event.set()

    reader = threading.Thread(target=read_stream, daemon=True)
    reader.start()
    assert first_event.wait(60), "the stream's first event never came"
    assert "error" not in outcome, outcome.get("error")
    with httpx2.Client(timeout=30) as client:
        version = client.get(fresh_server.base_url + "/api/version")
    answered_during_stream = not finished.is_set()
    reader.join(120)
    assert version.status_code == 200 and "version" in version.json()
    assert answered_during_stream, "the second request waited for the whole stream"
    assert "error" not in outcome, outcome.get("error")
    assert outcome["events"] == _CHUNKS
    assert outcome["bad_counts"] == 0
    assert outcome["last"]["candidates"][0]["finishReason"] == "STOP"
    assert outcome["last"]["usageMetadata"]["candidatesTokenCount"] == _CHUNKS
