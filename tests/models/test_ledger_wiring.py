"""Every connector call lands in the ledger as one row, with its scopes, tags, usage, cost,
finish reason and error type — committed before the call returns — and a connector that is
closed lets go of the database."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_code import LLMConnector
from rlm_code.core.exceptions import ModelError
from rlm_code.testing import LocalProtocolServer


@pytest.fixture(scope="module")
def server() -> Iterator[LocalProtocolServer]:
    with LocalProtocolServer() as running:
        yield running


def rows(path: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM calls ORDER BY id").fetchall()


def test_each_call_is_one_row_committed_before_it_returns(
    server: LocalProtocolServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.sqlite3"
    monkeypatch.setenv("RLM_CODE_LEDGER", str(path))
    connector = LLMConnector()
    connector.connect_to_model("test-model", model_type="vllm", base_url=server.openai_base_url)
    with connector.usage_scope("root", run="42"), connector.usage_scope("sub", step="2"):
        whole = connector.complete("one two three")
        assert len(rows(path)) == 1  # read by another connection while the process runs
    with connector.stream("four five") as stream:
        list(stream)
    server.script_faults(["401"])
    with pytest.raises(ModelError):
        connector.generate_response("fails")
    first, second, third = rows(path)
    assert (first["provider"], first["model"]) == ("vllm", "test-model")
    assert first["scope"] == "root/sub"
    assert '"run": "42"' in first["tags"] and '"step": "2"' in first["tags"]
    assert first["input_tokens"] == whole.usage.input_tokens
    assert first["output_tokens"] == whole.usage.output_tokens
    assert (first["cost_usd"], first["cost_source"]) == (0.0, "local")
    assert first["finish_reason"] == "stop" and not first["streamed"]
    assert second["streamed"] and second["scope"] in (None, "")
    assert third["error_type"] == "AuthenticationError" and third["output_tokens"] is None
    connector.close()
    assert connector._metering._ledger._connection is None  # the database is let go


def test_the_ledger_can_be_turned_off(
    server: LocalProtocolServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RLM_CODE_LEDGER", "off")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    connector = LLMConnector()
    connector.connect_to_model("test-model", model_type="vllm", base_url=server.openai_base_url)
    connector.generate_response("not recorded")
    connector.close()
    assert not any(tmp_path.rglob("*.sqlite3"))
