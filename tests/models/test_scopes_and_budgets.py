"""Usage scopes are exact under threads and tasks; budgets refuse before any socket opens and
stop streams within one chunk; token counting for exact pre-flight checks."""

from __future__ import annotations

import asyncio
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from rlm_code import Budget, BudgetExceededError, LLMConnector, Response, Usage
from rlm_code.core.exceptions import InvalidInputError, UnsupportedParameterError
from rlm_code.models.budget import BudgetGuard, StreamWatch
from rlm_code.models.types import TextDelta, UsageReport
from rlm_code.testing import LocalProtocolServer

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalProtocolServer]:
    with LocalProtocolServer() as running:
        yield running


def connect(server: LocalProtocolServer, **kwargs: Any) -> LLMConnector:
    connector = LLMConnector(**kwargs)
    connector.connect_to_model("test-model", model_type="vllm", base_url=server.openai_base_url)
    return connector


def chats(server: LocalProtocolServer) -> int:
    """Chat requests the server received since its records were last cleared (callers clear
    them first: the server keeps only the newest 1,000)."""
    return sum(1 for r in server.requests if r.path.endswith("/chat/completions"))


BUCKETS = ("input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens")


def summed(responses: list[Response]) -> dict[str, int]:
    return {b: sum(getattr(r.usage, b) or 0 for r in responses) for b in BUCKETS}


def scope_figures(usage: Usage) -> dict[str, int]:
    return {b: getattr(usage, b) or 0 for b in BUCKETS}


def test_scopes_are_exact_with_concurrent_tasks_and_threads(server: LocalProtocolServer) -> None:
    """64 concurrent async calls and 16 threads over two scopes, 100 times: each scope's totals
    equal the sum of its own calls' `Response.usage`, with no reconciliation."""
    connector = connect(server)
    got: dict[str, list[Response]] = {"a": [], "b": []}
    lock = threading.Lock()
    for run in range(100):

        async def in_scope(name: str, words: int) -> None:
            async with connector.usage_scope(name):
                response = await connector.acomplete("w " * words)
            with lock:
                got[name].append(response)

        def thread(name: str, words: int) -> None:
            with connector.usage_scope(name):
                response = connector.complete("w " * words)
            with lock:
                got[name].append(response)

        threads = [
            threading.Thread(target=thread, args=("ab"[i % 2], 1 + i + run)) for i in range(16)
        ]
        for t in threads:
            t.start()

        async def fan_out() -> None:
            await asyncio.gather(*(in_scope("ab"[i % 2], 1 + i) for i in range(64)))

        asyncio.run(fan_out())
        for t in threads:
            t.join()
        for name in "ab":
            totals = connector.get_usage_summary(scope=name)["totals"]
            assert totals["total_calls"] == len(got[name]) == 40 * (run + 1)
            assert {b: totals[b] for b in BUCKETS} == summed(got[name]), f"run {run}"
    connector.close()


def test_a_scope_object_counts_its_calls_exactly_and_scopes_nest(
    server: LocalProtocolServer,
) -> None:
    connector = connect(server)
    with connector.usage_scope("root", run="7") as root:
        first = connector.complete("one two three")
        with connector.usage_scope("sub") as sub:
            inner = [connector.complete("x " * n) for n in range(1, 4)]

            async def from_a_task() -> Response:
                return await asyncio.create_task(connector.acomplete("in a task"))

            inner.append(asyncio.run(from_a_task()))
    outside = connector.complete("not in any scope")
    assert sub.calls == 4 and root.calls == 5
    assert scope_figures(sub.usage) == summed(inner)
    assert scope_figures(root.usage) == summed([first, *inner])
    assert sub.cost_usd == 0.0 and not sub.cost_partial  # a local server costs nothing
    everything = connector.get_usage_summary()["totals"]
    assert everything["total_calls"] == 6
    assert everything["input_tokens"] == summed([first, *inner, outside])["input_tokens"]
    assert connector.get_usage_summary(scope="sub")["totals"]["total_calls"] == 4
    assert connector.get_usage_summary(scope="nothing")["totals"]["total_calls"] == 0
    connector.close()


@pytest.mark.parametrize("attach", ["constructor", "attribute", "scope"])
def test_the_request_past_max_requests_opens_no_socket(
    server: LocalProtocolServer, attach: str
) -> None:
    budget = Budget(max_requests=3)
    connector = connect(server, budget=budget if attach == "constructor" else None)
    if attach == "attribute":
        connector.budget = budget
    scope = connector.usage_scope("capped", budget=budget) if attach == "scope" else None
    server.clear_requests()
    before = chats(server)
    if scope is not None:
        scope.__enter__()
    try:
        for _ in range(3):
            connector.generate_response("hello")
        with pytest.raises(BudgetExceededError) as info:
            connector.generate_response("one too many")
        with pytest.raises(BudgetExceededError):
            list(connector.stream_response("and streamed"))
    finally:
        if scope is not None:
            scope.__exit__(None, None, None)
    assert chats(server) - before == 3, "the refused requests must not reach the server"
    error = info.value
    assert (error.limit, error.reached, error.maximum) == ("max_requests", 3, 3)
    assert "max_requests" in str(error) and "3 of 3" in str(error)
    if attach == "scope":  # a scope's budget binds only inside it
        assert connector.generate_response("outside the scope")
    connector.close()


def test_concurrent_calls_cannot_overshoot_max_requests(server: LocalProtocolServer) -> None:
    connector = connect(server, budget=Budget(max_requests=5))
    server.clear_requests()
    before = chats(server)
    outcomes: list[str] = []

    def call() -> None:
        try:
            connector.generate_response("hi")
            outcomes.append("ok")
        except BudgetExceededError:
            outcomes.append("refused")

    threads = [threading.Thread(target=call) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 5 and outcomes.count("refused") == 15
    assert chats(server) - before == 5
    connector.close()


def test_output_and_input_token_limits(server: LocalProtocolServer) -> None:
    connector = connect(server, budget=Budget(max_output_tokens=6))
    first = connector.complete("a b c d")  # "Echo: a b c d": 5 output tokens
    assert first.usage.output_tokens == 5
    second = connector.complete("e f g h")  # 1 token left: the request's max_tokens is capped
    assert second.finish_reason == "length" and second.text == "Echo:"
    body = server.requests[-1].json
    assert body is not None and body["max_tokens"] == 1
    with pytest.raises(BudgetExceededError, match="max_output_tokens"):
        connector.complete("no more")
    connector.budget = Budget(max_input_tokens=3)  # a fresh count
    connector.complete("one two three")
    with pytest.raises(BudgetExceededError, match="max_input_tokens") as info:
        connector.complete("again")
    assert info.value.reached == 3
    connector.close()


def test_a_deadline_stops_a_stream_within_a_chunk_and_records_what_arrived(
    server: LocalProtocolServer,
) -> None:
    connector = connect(server)
    server.script_faults(["drip"])  # 200 ms between frames
    with connector.usage_scope("timed", budget=Budget(deadline_s=0.5)) as scope:
        stream = connector.stream("one two three four five six seven eight nine ten")
        seen: list[str] = []
        with pytest.raises(BudgetExceededError) as info:
            for event in stream:
                if isinstance(event, TextDelta):
                    seen.append(event.text)
    assert info.value.limit == "deadline_s"
    assert 0 < len(seen) < 11
    assert stream.response.text == "".join(seen) and not stream.response.complete
    assert scope.calls == 1, "the partial reply is recorded"
    assert connector.get_usage_summary()["last_call"]["interrupted"] is True
    with scope, pytest.raises(BudgetExceededError, match="deadline_s"):
        connector.complete("too late")  # the deadline runs from when the scope was entered
    connector.close()


def test_a_deadline_caps_a_whole_call(server: LocalProtocolServer) -> None:
    connector = connect(server, budget=Budget(deadline_s=0.4))
    server.script_faults(["hang"])
    with pytest.raises(BudgetExceededError) as info:
        connector.complete("wait for me")
    assert info.value.limit == "deadline_s"
    connector.close()


def test_the_stream_watch_counts_pieces_until_the_provider_counts() -> None:
    guard = BudgetGuard(Budget(max_output_tokens=3), "connector")
    watch = StreamWatch([(guard, *guard.admit())])
    events = iter([TextDelta("a"), TextDelta("b"), UsageReport(Usage(1, 2)), TextDelta("c")])
    assert [e.text for e in watch.sync(events) if isinstance(e, TextDelta)][:3] == ["a", "b", "c"]
    watch = StreamWatch([(guard, *guard.admit())])
    with pytest.raises(BudgetExceededError, match="max_output_tokens"):
        list(watch.sync(iter([TextDelta("x")] * 5)))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_requests": 0},
        {"max_requests": 1.5},
        {"max_output_tokens": True},
        {"max_cost_usd": -1},
        {"deadline_s": 0},
        {"max_input_tokens": "10"},
    ],
)
def test_bad_budgets_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInputError):
        Budget(**kwargs)


def test_bad_scopes_and_budget_values_are_refused(server: LocalProtocolServer) -> None:
    connector = connect(server)
    for name in ("", "a/b", 3):
        with pytest.raises(InvalidInputError):
            connector.usage_scope(name)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        connector.usage_scope("x", tag=object())
    with pytest.raises(InvalidInputError):
        connector.budget = {"max_requests": 1}  # type: ignore[assignment]
    connector.close()


@pytest.mark.parametrize(
    ("model", "model_type", "key"),
    [
        ("claude-sonnet-4-5-20250929", "anthropic", "sk-ant-test-count"),
        ("gemini-2.5-flash", "gemini", "AIzaTestCount"),
    ],
)
def test_count_tokens_asks_the_provider_and_records_no_call(
    server: LocalProtocolServer, model: str, model_type: str, key: str
) -> None:
    connector = LLMConnector()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        connector.connect_to_model(
            model, model_type=model_type, base_url=server.base_url, api_key=key
        )
    # The server counts one token per word of every message.
    assert connector.count_tokens("one two three four") == 4
    messages = [
        {"role": "user", "content": "a b"},
        {"role": "assistant", "content": "c"},
        {"role": "user", "content": "d e f"},
    ]
    assert connector.count_tokens(messages=messages) == 6
    assert connector.get_usage_summary()["totals"]["total_calls"] == 0
    connector.close()


def test_count_tokens_is_refused_where_the_provider_cannot_count(
    server: LocalProtocolServer,
) -> None:
    connector = connect(server)
    with pytest.raises(UnsupportedParameterError, match="no token-counting endpoint"):
        connector.count_tokens("hello")
    connector.close()


def cloud(server: LocalProtocolServer, model: str, **kwargs: Any) -> LLMConnector:
    connector = LLMConnector(**kwargs)
    connector.connect_to_model(
        model, model_type="openai", base_url=server.openai_base_url, api_key="sk-test-budget"
    )
    return connector


def test_max_cost_refuses_once_the_priced_calls_reach_it(server: LocalProtocolServer) -> None:
    connector = cloud(server, "gpt-4o-mini", budget=Budget(max_cost_usd=1e-6))
    first = connector.complete("a b c d e f g h i j")
    assert first.usage.cost_source == "price-table"
    cost = first.usage.cost_usd
    assert cost is not None and cost > 1e-6  # gpt-4o-mini: 10 input + 11 output tokens
    server.clear_requests()
    with pytest.raises(BudgetExceededError, match="max_cost_usd") as info:
        connector.complete("too expensive now")
    assert info.value.reached == pytest.approx(cost)
    assert chats(server) == 0
    connector.close()


def test_an_unpriced_model_makes_the_cost_partial_never_zero(server: LocalProtocolServer) -> None:
    priced = cloud(server, "gpt-4o-mini")
    unpriced = cloud(server, "no-such-model-anywhere")
    with priced.usage_scope("mixed") as scope:
        known = priced.complete("one two")
        unknown = unpriced.complete("three four")
    assert unknown.usage.cost_usd is None and unknown.usage.cost_source is None
    assert scope.cost_usd == pytest.approx(known.usage.cost_usd)
    assert scope.cost_partial is True
    totals = unpriced.get_usage_summary()["totals"]
    assert totals["cost_usd"] is None and totals["cost_partial"] is True
    assert totals["unknown_cost_calls"] == 1
    priced.close()
    unpriced.close()
