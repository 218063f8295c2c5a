"""Routes: pooled connections, caching, fallbacks (each error kind, before and after the first
streamed event), cooldowns, and which target served (Response and ledger)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import (
    AuthenticationError,
    ContextLengthExceededError,
    InvalidInputError,
    NotConnectedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
)
from rlm_code.models import fallback, route_api
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.resolve import resolve
from rlm_code.models.types import TextDelta
from rlm_code.testing import LocalProtocolServer, run_local_server

KEY = "sk-test-routes-0123456789"
DEAD = "http://127.0.0.1:9/v1"  # discard port: nothing listens, the connection is refused


def _connector(tmp_path: Path, extra: str = "", backoff_max: float = 0.5) -> LLMConnector:
    (tmp_path / "rlm_config.yaml").write_text(
        "timeouts: {connect: 2, read: 10}\n"
        f"retries: {{max_attempts: 1, backoff_base: 0.01, backoff_max: {backoff_max}}}\n" + extra
    )
    return LLMConnector(config_manager=ConfigManager(project_root=tmp_path))


@pytest.fixture
def server() -> Iterator[LocalProtocolServer]:
    with run_local_server() as running:
        yield running


def _models_asked(server: LocalProtocolServer) -> list[str]:
    return [r.json["model"] for r in server.requests if r.method == "POST" and r.json]


# -- pooling and caching ---------------------------------------------------------------------


def test_a_thousand_sub_model_calls_open_one_connection(
    tmp_path: Path, server: LocalProtocolServer
) -> None:
    connector = _connector(tmp_path)
    server.reset_counters()
    for i in range(1000):
        text = connector.generate_response_with_model(
            f"call {i}", "vllm/test-model", base_url=server.openai_base_url
        )
        assert text == f"Echo: call {i}"
    assert server.connections_opened == 1
    summary = connector.get_usage_summary()
    assert summary["totals"]["total_calls"] == 1000
    assert list(summary["by_model"]) == ["vllm/test-model"]
    connector.close()


def test_the_route_is_cached_and_resolves_once(
    tmp_path: Path, server: LocalProtocolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    connector = _connector(tmp_path)
    resolved = 0
    real = resolve

    def counting(*args: Any) -> Any:
        nonlocal resolved
        resolved += 1
        return real(*args)

    monkeypatch.setattr(route_api, "resolve", counting)
    url = server.openai_base_url
    for _ in range(20):
        connector.generate_response_with_model("hi", "vllm/test-model", base_url=url)
    assert resolved == 1
    # Another spelling of the same target: resolved once more, the same route comes back.
    first = connector.route("vllm/test-model", base_url=url)
    second = connector.route("test-model", model_type="vllm", base_url=url)
    assert first is second
    assert first.targets[0].conn is second.targets[0].conn
    connector.close()


def test_the_key_is_never_in_a_route_repr_or_status(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    route = connector.route("openai/gpt-4o-mini", api_key=KEY, base_url=DEAD)
    shown = repr(route) + repr(route.targets) + repr(route.status()) + repr(connector._pool.targets)
    assert KEY not in shown
    assert route.status()["has_api_key"] is True
    connector.close()


def test_routes_close_with_the_connector(tmp_path: Path, server: LocalProtocolServer) -> None:
    connector = _connector(tmp_path)
    route = connector.route("vllm/test-model", base_url=server.openai_base_url)
    assert route.generate_response("x") == "Echo: x"
    connector.close()
    with pytest.raises(NotConnectedError):
        route.generate_response("x")
    # A closed route is not handed out again.
    again = connector.route("vllm/test-model", base_url=server.openai_base_url)
    assert again is not route and again.generate_response("y") == "Echo: y"
    again.close()
    assert again.closed and not connector._pool.targets
    connector.close()


def test_bad_route_arguments_fail_before_io(tmp_path: Path) -> None:
    connector = _connector(tmp_path)
    with pytest.raises(InvalidInputError):
        connector.route("vllm/m", base_url=DEAD, max_concurrency=0)
    with pytest.raises(InvalidInputError):
        connector.route("vllm/m", base_url=DEAD, requests_per_minute=-1)
    with pytest.raises(InvalidInputError):
        connector.route("vllm/m", base_url=DEAD, fallbacks="vllm/other")
    with pytest.raises(InvalidInputError):
        connector.generate_response_with_model("x", "vllm/m", base_url=DEAD, temperature=9)


def test_async_generate_response_with_model(tmp_path: Path, server: LocalProtocolServer) -> None:
    connector = _connector(tmp_path)
    server.reset_counters()

    async def main() -> list[str]:
        return [
            await connector.agenerate_response_with_model(
                f"a{i}", "vllm/test-model", base_url=server.openai_base_url
            )
            for i in range(50)
        ]

    assert asyncio.run(main()) == [f"Echo: a{i}" for i in range(50)]
    # One for the connect-time check (the blocking client), one for the event loop's session.
    assert server.connections_opened <= 2
    connector.close()


def test_route_generation_methods_count_in_scopes(
    tmp_path: Path, server: LocalProtocolServer
) -> None:
    connector = _connector(tmp_path)
    route = connector.route("vllm/test-model", base_url=server.openai_base_url)
    with connector.usage_scope("sub") as scope:
        assert route.generate_response("a") == "Echo: a"
        assert "".join(route.stream_response("b")) == "Echo: b"
        assert route.complete("c").text == "Echo: c"
        assert [e.text for e in route.stream("d") if isinstance(e, TextDelta)]

        async def both() -> None:
            assert await route.agenerate_response("e") == "Echo: e"
            assert "".join([p async for p in route.astream_response("f")]) == "Echo: f"
            assert (await route.acomplete("g")).text == "Echo: g"
            async with route.astream("h") as events:
                assert [e async for e in events]

        asyncio.run(both())
    assert scope.calls == 8
    connector.close()


# -- fallbacks ---------------------------------------------------------------------------------


def _fallback_route(connector: LLMConnector, server: LocalProtocolServer, first: str) -> Any:
    url = server.openai_base_url
    return connector.route(
        f"vllm/{first}", base_url=url, fallbacks=[{"model": "vllm/test-model", "base_url": url}]
    )


@pytest.mark.parametrize("fault", ["500", "503", "html"])
@pytest.mark.parametrize("kind", ["complete", "stream", "acomplete", "astream"])
def test_a_5xx_after_retries_falls_back(
    tmp_path: Path, server: LocalProtocolServer, fault: str, kind: str
) -> None:
    connector = _connector(tmp_path)
    route = _fallback_route(connector, server, f"fault-{fault}")
    response = _run(route, kind, "hello")
    assert (response.provider, response.model, response.text) == (
        "vllm",
        "test-model",
        "Echo: hello",
    )
    assert _models_asked(server) == [f"fault-{fault}", "test-model"]
    summary = connector.get_usage_summary()
    assert summary["by_model"]["vllm/test-model"]["calls"] == 1
    assert f"vllm/fault-{fault}" in summary["by_model"]  # the failed attempt, under its target
    assert summary["totals"]["failed_calls"] == 1
    connector.close()


def _run(route: Any, kind: str, prompt: str) -> Any:
    if kind == "complete":
        return route.complete(prompt)
    if kind == "acomplete":
        return asyncio.run(route.acomplete(prompt))
    if kind == "stream":
        stream = route.stream(prompt)
        list(stream)
        return stream.response

    async def read() -> Any:
        stream = route.astream(prompt)
        async with stream:
            async for _ in stream:
                pass
        return stream.response

    return asyncio.run(read())


@pytest.mark.parametrize("kind", ["complete", "stream", "acomplete", "astream"])
def test_a_refused_connection_falls_back(
    tmp_path: Path, server: LocalProtocolServer, kind: str
) -> None:
    connector = _connector(tmp_path)
    route = connector.route(
        "vllm/test-model",
        base_url=DEAD,
        fallbacks=[{"model": "vllm/test-model", "base_url": server.openai_base_url}],
    )
    response = _run(route, kind, "hi")
    assert response.text == "Echo: hi" and response.model == "test-model"
    assert connector.get_usage_summary()["totals"]["failed_calls"] == 1
    connector.close()


@pytest.mark.parametrize("kind", ["complete", "stream"])
def test_a_long_retry_after_falls_back_a_short_one_does_not(
    tmp_path: Path, server: LocalProtocolServer, kind: str
) -> None:
    connector = _connector(tmp_path, backoff_max=0.5)  # the fault's Retry-After is 1 s
    route = _fallback_route(connector, server, "fault-429")
    assert _run(route, kind, "hi").model == "test-model"
    connector.close()

    patient = _connector(tmp_path, backoff_max=5)  # 1 s is within the cap: not for a fallback
    route = _fallback_route(patient, server, "fault-429")
    server.clear_requests()
    with pytest.raises(RateLimitError):
        _run(route, kind, "hi")
    assert _models_asked(server) == ["fault-429"]
    patient.close()


@pytest.mark.parametrize("kind", ["complete", "stream"])
@pytest.mark.parametrize(("window", "moves_on"), [(None, True), (1_000_000, True), (16, False)])
def test_context_length_falls_back_only_to_a_larger_or_unknown_window(
    tmp_path: Path,
    server: LocalProtocolServer,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    window: int | None,
    moves_on: bool,
) -> None:
    monkeypatch.setattr(
        fallback, "_window", lambda t: window if t.conn.model == "test-model" else None
    )
    connector = _connector(tmp_path)
    route = _fallback_route(connector, server, "fault-context_length")
    if moves_on:
        assert _run(route, kind, "hi").model == "test-model"
    else:
        with pytest.raises(ContextLengthExceededError):
            _run(route, kind, "hi")
        assert _models_asked(server) == ["fault-context_length"]
    connector.close()


@pytest.mark.parametrize("kind", ["complete", "stream"])
def test_errors_another_target_cannot_fix_are_raised(
    tmp_path: Path, server: LocalProtocolServer, kind: str
) -> None:
    connector = _connector(tmp_path)
    for fault, error in (("401", AuthenticationError), ("content_filter", ProviderError)):
        server.clear_requests()
        route = _fallback_route(connector, server, f"fault-{fault}")
        with pytest.raises(error):
            _run(route, kind, "hi")
        assert _models_asked(server) == [f"fault-{fault}"]
    connector.close()


@pytest.mark.parametrize("fault", ["truncate", "malformed"])
def test_no_switch_after_the_first_streamed_event(
    tmp_path: Path, server: LocalProtocolServer, fault: str
) -> None:
    connector = _connector(tmp_path)
    route = _fallback_route(connector, server, f"fault-{fault}")
    seen: list[str] = []
    with pytest.raises(ProviderError) as caught:
        for event in route.stream("one two three four five six"):
            if isinstance(event, TextDelta):
                seen.append(event.text)
    assert seen, "the error came after text had arrived"
    assert isinstance(caught.value, ProviderError | ProviderConnectionError)
    assert _models_asked(server) == [f"fault-{fault}"]  # the fallback was never asked
    connector.close()


def test_a_failing_target_cools_down(tmp_path: Path, server: LocalProtocolServer) -> None:
    connector = _connector(tmp_path, "route_cooldown: {failures: 2, seconds: 0.6}\n")
    route = _fallback_route(connector, server, "fault-500")
    for _ in range(2):
        assert route.generate_response("x") == "Echo: x"
    assert _models_asked(server) == ["fault-500", "test-model"] * 2
    server.clear_requests()
    assert route.generate_response("x") == "Echo: x"
    assert _models_asked(server) == ["test-model"]  # skipped while cooling down
    time.sleep(0.7)
    server.clear_requests()
    assert route.generate_response("x") == "Echo: x"
    assert _models_asked(server) == ["fault-500", "test-model"]  # tried again after it
    connector.close()


def test_a_route_is_a_fallback_of_another(tmp_path: Path, server: LocalProtocolServer) -> None:
    connector = _connector(tmp_path)
    backup = connector.route("vllm/test-model", base_url=server.openai_base_url)
    route = connector.route("vllm/fault-503", base_url=server.openai_base_url, fallbacks=[backup])
    assert route.targets[1] is backup.targets[0]  # one shared connection
    assert route.generate_response("x") == "Echo: x"
    connector.close()


def test_the_ledger_row_names_the_target_that_served(
    tmp_path: Path, server: LocalProtocolServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("RLM_CODE_LEDGER", str(ledger))
    connector = _connector(tmp_path)
    _fallback_route(connector, server, "fault-500").generate_response("x")
    connector.close()
    import sqlite3

    with sqlite3.connect(ledger) as db:
        rows = db.execute("SELECT provider, model, error_type FROM calls ORDER BY rowid").fetchall()
    assert rows == [("vllm", "fault-500", "ProviderError"), ("vllm", "test-model", None)]
