"""A model switch under load: calls in flight finish on the connection they started on.

Issue "A hostile world" #2: `connect_to_model()` used to close the previous adapter while
other threads and tasks were still using it (untyped errors, cut replies, async streams that
hung forever). Now each call holds its connection; a replaced connection closes after its
last call.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ModelError
from rlm_code.models.adapters.base import Adapter
from rlm_code.models.connection import Connection
from rlm_code.models.llm_connector import LLMConnector

CALL_TIMEOUT = 20.0
FAST_CONFIG = """\
timeouts: {connect: 2, read: 10}
retries: {max_attempts: 2, backoff_base: 0.01, backoff_max: 0.5}
"""


class _CountingAdapter:
    """Just enough of an adapter for `Connection`: counts `close()` calls."""

    def __init__(self) -> None:
        self.closed = 0
        self.endpoint = SimpleNamespace(model="m", spec=None)

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.closed += 1


def _connection() -> tuple[Connection, _CountingAdapter]:
    adapter = _CountingAdapter()
    return Connection(resolved=None, adapter=adapter), adapter  # type: ignore[arg-type]


def test_a_retired_idle_connection_closes_at_once() -> None:
    conn, adapter = _connection()
    conn.retire()
    conn.retire()
    assert adapter.closed == 1


def test_a_retired_busy_connection_closes_after_its_last_call() -> None:
    conn, adapter = _connection()
    conn.hold()
    conn.hold()
    conn.retire()
    assert adapter.closed == 0
    conn.release()
    assert adapter.closed == 0
    conn.release()
    assert adapter.closed == 1


def test_a_live_connection_is_not_closed_by_its_calls_ending() -> None:
    conn, adapter = _connection()
    conn.hold()
    conn.release()
    assert adapter.closed == 0


def test_switching_models_fifty_times_under_load_cuts_no_call(
    tmp_path: Path, local_server: Any
) -> None:
    """32 threads and 200 tasks stream while the main thread switches models 50 times."""
    (tmp_path / "rlm_config.yaml").write_text(FAST_CONFIG)
    url = local_server.openai_base_url
    targets = [("fault-drip", "vllm"), ("model-b", "lmstudio")]
    connector = LLMConnector(config_manager=ConfigManager(project_root=tmp_path))
    connector.connect_to_model(*targets[1], base_url=url)

    outcomes: list[tuple[str, float]] = []  # (what happened, seconds it took)
    lock = threading.Lock()

    def note(what: str, started: float) -> None:
        with lock:
            outcomes.append((what, time.monotonic() - started))

    def classify(text: str) -> str:
        return "ok" if text.startswith("Echo: stream") else f"wrong reply {text[:40]!r}"

    def thread_worker(index: int) -> None:
        for _ in range(3):
            started = time.monotonic()
            try:
                text = "".join(connector.stream_response(f"stream t{index}", timeout=CALL_TIMEOUT))
                note(classify(text), started)
            except ModelError as exc:
                note(f"typed {type(exc).__name__}", started)
            except BaseException as exc:  # the bug: untyped errors
                note(f"untyped {type(exc).__name__}: {exc}", started)

    async def one_task(index: int) -> None:
        started = time.monotonic()
        try:
            parts = [
                p
                async for p in connector.astream_response(f"stream a{index}", timeout=CALL_TIMEOUT)
            ]
            note(classify("".join(parts)), started)
        except ModelError as exc:
            note(f"typed {type(exc).__name__}", started)
        except BaseException as exc:
            note(f"untyped {type(exc).__name__}: {exc}", started)

    async def all_tasks() -> None:
        await asyncio.wait_for(
            asyncio.gather(*(one_task(i) for i in range(200))), timeout=CALL_TIMEOUT * 3
        )

    threads = [threading.Thread(target=thread_worker, args=(i,)) for i in range(32)]
    loop_thread = threading.Thread(target=lambda: asyncio.run(all_tasks()))
    for t in [*threads, loop_thread]:
        t.start()
    for switch in range(50):
        connector.connect_to_model(*targets[switch % 2], base_url=url)
        time.sleep(0.02)
    for t in [*threads, loop_thread]:
        t.join(timeout=CALL_TIMEOUT * 4)
    hung = [t for t in [*threads, loop_thread] if t.is_alive()]
    connector.close()

    assert not hung, f"{len(hung)} workers never finished"
    assert len(outcomes) == 32 * 3 + 200
    problems = [o for o in outcomes if o[0] != "ok"]
    assert not problems, problems[:5]
    assert max(seconds for _, seconds in outcomes) < CALL_TIMEOUT + 5


def test_closing_the_connector_lets_a_running_stream_finish(
    tmp_path: Path, local_server: Any
) -> None:
    (tmp_path / "rlm_config.yaml").write_text(FAST_CONFIG)
    connector = LLMConnector(config_manager=ConfigManager(project_root=tmp_path))
    connector.connect_to_model("fault-drip", "vllm", base_url=local_server.openai_base_url)
    stream = connector.stream_response("one two three", timeout=CALL_TIMEOUT)
    first = next(stream)
    connector.close()  # the stream started before: it keeps its connection
    rest = "".join(stream)
    assert (first + rest).startswith("Echo: one two three")
    summary = connector.get_usage_summary()
    assert summary["totals"]["total_calls"] == 1
    assert summary["last_call"]["interrupted"] is False


@pytest.mark.parametrize("how", ["close", "context manager", "exhausted"])
def test_a_stream_object_releases_its_connection(tmp_path: Path, local_server: Any, how: str):
    (tmp_path / "rlm_config.yaml").write_text(FAST_CONFIG)
    connector = LLMConnector(config_manager=ConfigManager(project_root=tmp_path))
    connector.connect_to_model("model-a", "vllm", base_url=local_server.openai_base_url)
    conn = connector._connection
    assert conn is not None
    from rlm_code.models import calls

    _, request = connector._prepare("a b c", None, None, None, None, None, None)
    stream = calls.stream(conn, request, connector._metering)
    assert conn._users == 1
    if how == "close":
        next(stream)
        stream.close()
        assert stream.response.complete is False
    elif how == "context manager":
        with stream:
            next(stream)
    else:
        events = list(stream)
        assert events[-1].type == "finished"
        assert stream.response.complete and stream.response.text.startswith("Echo: a b c")
    assert conn._users == 0
    assert connector.get_usage_summary()["totals"]["total_calls"] == 1
    connector.close()
    assert isinstance(conn.adapter, Adapter)
