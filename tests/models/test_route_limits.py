"""Route limits: the concurrency ceiling (sync and async at once), request and token pacing
(measured), learning the provider's x-ratelimit headers, and the parts (`Gate`, buckets)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.models.limits import Gate, Limits, TokenBucket, reset_seconds
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.types import Usage
from rlm_code.testing import LocalProtocolServer, run_local_server


def _connector(tmp_path: Path, extra: str = "") -> LLMConnector:
    (tmp_path / "rlm_config.yaml").write_text(
        "timeouts: {connect: 2, read: 20}\n"
        "retries: {max_attempts: 1, backoff_base: 0.01, backoff_max: 0.5}\n" + extra
    )
    return LLMConnector(config_manager=ConfigManager(project_root=tmp_path))


@pytest.fixture
def slow_server() -> Iterator[LocalProtocolServer]:
    with run_local_server(latency_ms=30) as running:
        yield running


def test_two_hundred_concurrent_calls_never_exceed_eight_in_flight(
    tmp_path: Path, slow_server: LocalProtocolServer
) -> None:
    """100 threads and 100 tasks at once on a route limited to 8: the server never sees more
    than 8 in flight, and every call succeeds."""
    connector = _connector(tmp_path)
    route = connector.route(
        "vllm/test-model", base_url=slow_server.openai_base_url, max_concurrency=8
    )
    slow_server.reset_counters()
    results: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(i: int) -> None:
        try:
            text = (
                route.generate_response(f"t{i}")
                if i % 2
                else "".join(route.stream_response(f"t{i}"))
            )
            with lock:
                results.append(text)
        except BaseException as exc:
            with lock:
                errors.append(exc)

    async def tasks() -> list[str]:
        async def one(i: int) -> str:
            if i % 2:
                return await route.agenerate_response(f"a{i}")
            return "".join([p async for p in route.astream_response(f"a{i}")])

        return await asyncio.gather(*(one(i) for i in range(100)))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(100)]
    for t in threads:
        t.start()
    async_results = asyncio.run(tasks())
    for t in threads:
        t.join(60)
    assert not errors
    assert len(results) == 100 and len(async_results) == 100
    assert all(r.startswith("Echo: ") for r in results + async_results)
    assert 2 <= slow_server.max_in_flight <= 8
    assert route.limits is not None and route.limits.gate is not None
    assert route.limits.gate.in_use == 0  # every slot was given back
    connector.close()


def test_requests_per_minute_paces_calls_within_ten_percent(tmp_path: Path) -> None:
    """1,200 a minute = 20 a second with a burst of 20: 60 calls from 8 threads take
    (60 - 20) / 20 = 2.0 s."""
    with run_local_server() as server:
        connector = _connector(tmp_path)
        route = connector.route(
            "vllm/test-model", base_url=server.openai_base_url, requests_per_minute=1200
        )
        route.generate_response("warm")  # opens the connection; takes 1 of the burst
        time.sleep(0.1)  # refills it
        n, threads = 60, 8
        started = time.monotonic()

        def worker(k: int) -> None:
            for i in range(k, n, threads):
                route.generate_response(f"r{i}")

        pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join(30)
        elapsed = time.monotonic() - started
        expected = (n - 20) / 20
        assert expected * 0.9 <= elapsed <= expected * 1.1, elapsed
        connector.close()


def test_tokens_per_minute_paces_calls_within_ten_percent(tmp_path: Path) -> None:
    """Tokens are taken from each Response.usage after the call; a call waits while the bucket
    is in debt. 12,000 a minute = 200 a second, burst 200."""
    with run_local_server() as server:
        connector = _connector(tmp_path)
        route = connector.route(
            "vllm/test-model", base_url=server.openai_base_url, tokens_per_minute=12000
        )
        prompt = " ".join(["word"] * 20)
        used: list[int] = []
        started = time.monotonic()
        for _ in range(15):
            usage = route.complete(prompt).usage
            used.append((usage.input_tokens or 0) + (usage.output_tokens or 0))
        elapsed = time.monotonic() - started
        assert len(set(used)) == 1 and used[0] > 20
        # The last call may start once all but its own tokens are paid back, beyond the burst.
        expected = (sum(used[:-1]) - 200) / 200
        assert expected * 0.9 <= elapsed <= expected * 1.1 + 0.05, (elapsed, expected)
        connector.close()


@pytest.mark.parametrize(
    "model",
    ["vllm/test-model", "openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5-20250929"],
)
def test_the_provider_ratelimit_headers_are_learned(tmp_path: Path, model: str) -> None:
    """A server allowing 5 requests a 0.5 s window: the route pauses when the headers say
    none remain, so 12 calls never meet a 429 (the retries are off). Raw HTTP and the SDKs."""
    with run_local_server(ratelimit=(5, 0.5)) as server:
        connector = _connector(tmp_path)
        url = server.base_url if model.startswith("anthropic") else server.openai_base_url
        key = "sk-ant-test-learn-0123456789" if model.startswith("anthropic") else None
        route = connector.route(model, api_key=key or "sk-test-learn-0123456789", base_url=url)
        started = time.monotonic()
        for i in range(12):
            assert route.generate_response(f"x{i}") == f"Echo: x{i}"
        assert time.monotonic() - started >= 0.9  # two windows waited out
        assert route.targets[0].provider_limits is not None
        connector.close()


def test_provider_limits_from_the_config_are_shared_by_its_routes(tmp_path: Path) -> None:
    connector = _connector(tmp_path, "providers: {vllm: {max_concurrency: 3}}\n")
    a = connector.route("vllm/model-a", base_url="http://127.0.0.1:9/v1")
    b = connector.route("vllm/model-b", base_url="http://127.0.0.1:9/v1")
    shared = a.targets[0].provider_limits
    assert shared is not None and shared is b.targets[0].provider_limits
    assert shared.gate is not None and shared.gate.size == 3
    connector.close()


# -- the parts -----------------------------------------------------------------------------


def test_the_gate_is_shared_by_threads_and_tasks() -> None:
    gate = Gate(3)
    inside = peak = 0
    lock = threading.Lock()

    def enter() -> None:
        nonlocal inside, peak
        with lock:
            inside += 1
            peak = max(peak, inside)

    def leave() -> None:
        nonlocal inside
        with lock:
            inside -= 1

    def thread_work() -> None:
        for _ in range(20):
            gate.acquire()
            enter()
            time.sleep(0.001)
            leave()
            gate.release()

    async def task_work() -> None:
        for _ in range(20):
            await gate.aacquire()
            enter()
            await asyncio.sleep(0.001)
            leave()
            gate.release()

    async def tasks() -> None:
        await asyncio.gather(*(task_work() for _ in range(10)))

    threads = [threading.Thread(target=thread_work) for _ in range(10)]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join(30)
    assert peak == 3 and gate.in_use == 0


def test_a_cancelled_waiter_gives_its_slot_back() -> None:
    gate = Gate(1)

    async def main() -> None:
        await gate.aacquire()
        waiter = asyncio.ensure_future(gate.aacquire())
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.release()
        await asyncio.wait_for(gate.aacquire(), 1)  # the slot is free again
        gate.release()

    asyncio.run(main())
    assert gate.in_use == 0


def test_token_bucket_reservations() -> None:
    bucket = TokenBucket(60, burst=2)  # one a second
    assert bucket.reserve(1) == 0 and bucket.reserve(1) == 0
    assert 0.9 < bucket.reserve(1) <= 1.0
    assert 1.9 < bucket.reserve(1) <= 2.0
    bucket.pause(5)
    assert bucket.reserve(0) >= 4.9


def test_limits_take_tokens_from_usage() -> None:
    limits = Limits(tokens_per_minute=600)  # 10 a second, burst 10
    limits.enter()
    limits.exit(Usage(input_tokens=25, output_tokens=5))
    assert limits.tokens is not None
    assert 1.9 < limits.tokens.reserve(0) <= 2.0


def test_headers_pause_only_when_nothing_remains() -> None:
    limits = Limits()
    limits.learn({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "2s"})
    assert limits.requests is None
    limits.learn(
        {
            "x-ratelimit-remaining-requests": "0",
            "x-ratelimit-reset-requests": "1m0s",
            "x-ratelimit-limit-requests": "60",
        }
    )
    assert limits.requests is not None and limits.requests.reserve(0) > 59
    limits.learn(
        {
            "anthropic-ratelimit-tokens-remaining": "0",
            "anthropic-ratelimit-tokens-reset": "2099-01-01T00:00:00Z",
        }
    )
    assert limits.tokens is not None and limits.tokens.reserve(0) == pytest.approx(300, abs=1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.250s", 0.25),
        ("7", 7.0),
        ("soon", None),
    ],
)
def test_reset_seconds(text: str, seconds: float | None) -> None:
    assert reset_seconds(text) == (pytest.approx(seconds) if seconds is not None else None)
