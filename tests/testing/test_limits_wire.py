"""The local server's load counters and simulated rate limits (`rlm_code.testing.limits`),
seen with a plain HTTP client."""

from __future__ import annotations

import threading
import time

import httpx2
import pytest

from rlm_code.testing import LocalProtocolServer, run_local_server

BODY = {"model": "test-model", "messages": [{"role": "user", "content": "hi"}]}


def test_counters_see_requests_in_flight_and_connections() -> None:
    with run_local_server(latency_ms=300) as server:
        url = server.openai_base_url + "/chat/completions"
        with httpx2.Client(timeout=10) as client:
            for _ in range(3):
                assert client.post(url, json=BODY).status_code == 200
        assert server.connections_opened == 1 and server.max_in_flight == 1
        server.reset_counters()

        def one() -> None:
            with httpx2.Client(timeout=10) as own:
                own.post(url, json=BODY)

        threads = [threading.Thread(target=one) for _ in range(5)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 5
        while server.in_flight == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        assert server.in_flight >= 1
        for t in threads:
            t.join(10)
        assert server.connections_opened == 5
        assert server.max_in_flight == 5 and server.in_flight == 0


def test_streamed_answers_count_until_their_last_byte() -> None:
    with run_local_server() as server:
        url = server.openai_base_url + "/chat/completions"
        with (
            httpx2.Client(timeout=10) as client,
            client.stream(
                "POST", url, json={**BODY, "stream": True}, headers={"X-Fault": "drip"}
            ) as response,
        ):
            chunks = response.iter_bytes()
            assert next(chunks) and server.in_flight == 1
            for _ in chunks:
                pass
        assert server.in_flight == 0


def test_ratelimit_headers_and_the_429_beyond_the_limit() -> None:
    with run_local_server(ratelimit=(2, 5.0)) as server:
        url = server.openai_base_url + "/chat/completions"
        with httpx2.Client(timeout=10) as client:
            first = client.post(url, json=BODY)
            second = client.post(url, json={**BODY, "stream": True})
            third = client.post(url, json=BODY)
            models = client.get(server.openai_base_url + "/models")
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"  # streamed answers too
    assert second.headers["x-ratelimit-reset-requests"].endswith("s")
    assert third.status_code == 429 and third.json()["error"]["code"] == "rate_limit_exceeded"
    assert 1 <= int(third.headers["Retry-After"]) <= 5
    assert models.status_code == 200 and "x-ratelimit-limit-requests" not in models.headers


def test_no_ratelimit_headers_unless_asked(local_server: LocalProtocolServer) -> None:
    with httpx2.Client(timeout=10) as client:
        answer = client.post(local_server.openai_base_url + "/chat/completions", json=BODY)
    assert "x-ratelimit-remaining-requests" not in answer.headers


@pytest.mark.parametrize("bad", [(0, 1.0), (1, 0.0)])
def test_a_bad_ratelimit_is_refused(bad: tuple[int, float]) -> None:
    with pytest.raises(ValueError, match="ratelimit"):
        LocalProtocolServer(ratelimit=bad)
