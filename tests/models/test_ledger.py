"""The usage ledger in one process: settings, what a row holds, sums, failures, migrations, keys.

Every ledger here lives in the test's own temp dir; rows are read back with plain `sqlite3`,
not through the ledger, so a test sees what is really on disk. Crashes and many processes at
once are in `test_ledger_processes.py`.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import stat
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_python

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ConfigError, InvalidInputError
from rlm_code.core.redact import register_secret
from rlm_code.models import cost as cost_module
from rlm_code.models import ledger as ledger_module
from rlm_code.models.call_record import CallRecord
from rlm_code.models.ledger import Ledger, LedgerError
from rlm_code.models.ledger.schema import SCHEMA_VERSION
from rlm_code.models.types import Usage

CANARY = "sk-test-CANARYledger0123456789"
SECRET = "plainSecretLedger42xyz"  # no key shape: only registration can mask it


def record(**changes: Any) -> CallRecord:
    fields: dict[str, Any] = {
        "at": time.time(),
        "provider": "ollama",
        "model": "llama3.2",
        "usage": Usage(input_tokens=10, output_tokens=5),
    }
    fields.update(changes)
    return CallRecord(**fields)


def rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute("SELECT * FROM calls ORDER BY id")]


@pytest.fixture
def ledger(tmp_path: Path) -> Any:
    with Ledger(tmp_path / "data" / "ledger.sqlite3") as opened:
        yield opened


@pytest.fixture
def prices(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[float | None, Any]]:
    """Cost by model name, for deterministic sums (unlisted models: unknown)."""
    table: dict[str, tuple[float | None, Any]] = {}

    def price(usage: Usage) -> tuple[float | None, Any]:
        if usage.reported_cost_usd is not None:
            return usage.reported_cost_usd, "provider"
        model = usage.priced_as[1] if usage.priced_as else ""
        return table.get(model, (None, None))

    monkeypatch.setattr(cost_module, "price_usage", price)
    return table


# -- settings ---------------------------------------------------------------------------------


def config(tmp_path: Path, env: dict[str, str] | None = None, user: str = "") -> ConfigManager:
    user_dir = tmp_path / "user"
    user_dir.mkdir(exist_ok=True)
    (user_dir / "config.yaml").write_text(user)
    (tmp_path / "project").mkdir(exist_ok=True)
    environ = {"RLM_CODE_CONFIG_DIR": str(user_dir), "XDG_DATA_HOME": str(tmp_path / "xdg")}
    environ.update(env or {})
    return ConfigManager(tmp_path / "project", environ=environ)


def test_default_path_is_the_xdg_data_dir_and_nothing_is_created(tmp_path: Path) -> None:
    found = Ledger.from_settings(config(tmp_path))
    assert found is not None
    assert found.path == tmp_path / "xdg" / "rlm-code" / "ledger.sqlite3"
    assert found.log_content is False
    assert not (tmp_path / "xdg").exists()  # no I/O until the first write


def test_home_fallback_without_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = ConfigManager(tmp_path, environ={"RLM_CODE_CONFIG_DIR": str(tmp_path / "c")})
    assert cfg.ledger.path == tmp_path / "home" / ".local/share/rlm-code/ledger.sqlite3"


@pytest.mark.parametrize("value", ["off", "0", "false", "no", "OFF", " No "])
def test_env_turns_it_off(tmp_path: Path, value: str) -> None:
    cfg = config(tmp_path, {"RLM_CODE_LEDGER": value})
    assert Ledger.from_settings(cfg) is None
    assert cfg.ledger.path.name == "ledger.sqlite3"  # still known, for `rlm-code usage`


def test_env_path_moves_it_and_on_beats_the_file(tmp_path: Path) -> None:
    moved = Ledger.from_settings(config(tmp_path, {"RLM_CODE_LEDGER": str(tmp_path / "x.db")}))
    assert moved is not None and moved.path == tmp_path / "x.db"
    off_in_file = "ledger: {enabled: false}\n"
    assert Ledger.from_settings(config(tmp_path, user=off_in_file)) is None
    on = Ledger.from_settings(config(tmp_path, {"RLM_CODE_LEDGER": "on"}, user=off_in_file))
    assert on is not None and on.path.name == "ledger.sqlite3"


def test_user_config_sets_path_and_content_logging(tmp_path: Path) -> None:
    text = "ledger:\n  path: ~/ledgers/mine.sqlite3\n  log_content: true\n"
    cfg = config(tmp_path, user=text)
    found = Ledger.from_settings(cfg)
    assert found is not None
    assert found.path == Path("~/ledgers/mine.sqlite3").expanduser()
    assert found.log_content is True
    assert cfg.ledger.source == str(cfg.user_config_file)


def test_relative_path_in_the_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yaml:2: 'ledger.path' must be an absolute"):
        _ = config(tmp_path, user="ledger:\n  path: ledger.sqlite3\n").ledger


@pytest.mark.parametrize(
    "text",
    ["ledger: {path: /tmp/x.sqlite3}", "ledger: {enabled: false}", "ledger: {log_content: true}"],
)
def test_a_project_file_cannot_configure_the_ledger(tmp_path: Path, text: str) -> None:
    cfg = config(tmp_path)
    (tmp_path / "project" / "rlm_config.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError, match="honoured only in the user config"):
        _ = cfg.ledger


def test_dotenv_cannot_move_or_silence_the_ledger(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    (tmp_path / "project" / ".env").write_text("RLM_CODE_LEDGER=off\n")
    assert Ledger.from_settings(cfg) is not None
    (tmp_path / "project" / ".env").write_text(f"RLM_CODE_LEDGER={tmp_path}/project/l.db\n")
    cfg.reload()
    found = Ledger.from_settings(cfg)
    assert found is not None and found.path.parent.name == "rlm-code"


def test_importing_the_ledger_loads_no_sqlite() -> None:
    out = run_python("import sys\nimport rlm_code.models.ledger\nprint('sqlite3' in sys.modules)\n")
    assert out.strip() == "False"


# -- rows -------------------------------------------------------------------------------------


def test_opening_creates_a_0700_directory_and_0600_files(ledger: Ledger) -> None:
    assert not ledger.path.parent.exists()
    ledger.write(record())
    assert stat.S_IMODE(ledger.path.parent.stat().st_mode) == 0o700
    for suffix in ("", "-wal", "-shm"):
        target = Path(str(ledger.path) + suffix)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600, suffix
    with sqlite3.connect(ledger.path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_row_holds_every_fact_of_the_call(ledger: Ledger, prices: dict[str, Any]) -> None:
    prices["gpt-x"] = (0.00125, "price-table")
    usage = Usage(100, 40, 30, 20, 8, 5)
    at = time.time()
    ledger.write(
        record(
            at=at,
            provider="openai",
            model="gpt-x",
            usage=usage,
            latency_ms=12.5,
            finish_reason="length",
            streamed=True,
            interrupted=True,
            scopes=("root", "sub"),
            tags={"run": "7", "team": "a"},
            prompt="the prompt",
            reply="the reply",
        )
    )
    (row,) = rows(ledger.path)
    assert row == {
        "id": 1, "at": at, "provider": "openai", "model": "gpt-x", "scope": "root/sub",
        "tags": '{"run": "7", "team": "a"}', "input_tokens": 100, "output_tokens": 40,
        "cache_read_tokens": 30, "cache_write_tokens": 20, "reasoning_tokens": 8,
        "cache_write_1h_tokens": 5, "cost_usd": 0.00125, "cost_source": "price-table",
        "latency_ms": 12.5, "finish_reason": "length", "streamed": 1, "interrupted": 1,
        "error_type": None, "prompt": None, "reply": None,
    }  # fmt: skip


def test_unknown_counts_and_cost_are_null_never_zero(ledger: Ledger, prices: Any) -> None:
    ledger.write(record(provider="openai", model="no-price", usage=Usage(output_tokens=3)))
    (row,) = rows(ledger.path)
    assert row["input_tokens"] is None and row["cache_read_tokens"] is None
    assert row["output_tokens"] == 3
    assert row["cost_usd"] is None and row["cost_source"] is None
    assert row["scope"] is None and row["tags"] is None and row["latency_ms"] is None


def test_local_calls_cost_zero_said_so(ledger: Ledger) -> None:
    ledger.write(record(usage=Usage(3, 4)))  # an unbound usage is priced as the record's call
    (row,) = rows(ledger.path)
    assert (row["cost_usd"], row["cost_source"]) == (0.0, "local")


def test_content_is_stored_only_when_asked(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.db", log_content=True) as logging_ledger:
        logging_ledger.write(record(prompt="question", reply="answer"))
    assert [(r["prompt"], r["reply"]) for r in rows(tmp_path / "l.db")] == [("question", "answer")]


def test_a_failed_call_is_recorded_without_cost(ledger: Ledger, prices: Any) -> None:
    ledger.write(record(provider="openai", model="m", usage=Usage(), error_type="RateLimitError"))
    (row,) = rows(ledger.path)
    assert row["error_type"] == "RateLimitError" and row["cost_usd"] is None
    totals = ledger.summary()["totals"]
    assert (totals["calls"], totals["failed_calls"], totals["cost_partial"]) == (0, 1, False)


def test_threads_share_one_ledger_without_losing_a_row(ledger: Ledger) -> None:
    def burst(n: int) -> None:
        for i in range(200):
            ledger.write(record(tags={"thread": str(n), "i": str(i)}))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(rows(ledger.path)) == 1600
    assert ledger.summary()["totals"]["calls"] == 1600


def test_close_then_write_opens_again(ledger: Ledger) -> None:
    ledger.write(record())
    ledger.close()
    ledger.close()  # twice is fine
    ledger.write(record())
    assert len(rows(ledger.path)) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connection(ledger: Ledger) -> None:
    ledger.write(record(model="parent"))
    pid = os.fork()
    if pid == 0:  # the child: exit without running pytest's teardown
        code = 1
        try:
            ledger.write(record(model="child"))
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    ledger.write(record(model="parent"))
    assert [r["model"] for r in rows(ledger.path)] == ["parent", "child", "parent"]


# -- sums -------------------------------------------------------------------------------------


def test_summary_totals_and_groups(ledger: Ledger, prices: dict[str, Any]) -> None:
    prices.update({"a": (0.01, "price-table"), "b": (0.002, "price-table")})
    now = time.time()
    old = now - 10 * 86400
    calls = [
        record(provider="openai", model="a", usage=Usage(100, 10, 50, 0, 4), scopes=("root",)),
        record(provider="openai", model="a", usage=Usage(200, 20), scopes=("root", "sub")),
        record(provider="anthropic", model="b", usage=Usage(10, 1, 0, 30, None, 10)),
        record(provider="anthropic", model="b", usage=Usage(None, 7), scopes=("root", "sub")),
        record(provider="openai", model="c", usage=Usage(5, 5)),  # no price
        record(provider="openai", model="a", usage=Usage(), error_type="ModelTimeoutError"),
        record(provider="openai", model="a", usage=Usage(1000, 1000), at=old),
    ]
    for call in calls:
        ledger.write(call)
    everything = ledger.summary()
    assert everything["rows"] == [] and everything["by"] is None
    assert everything["totals"]["calls"] == 6 and everything["totals"]["input_tokens"] == 1315
    recent = ledger.summary(since=now - 7 * 86400, by="model")
    assert recent["totals"] == {
        "calls": 5, "failed_calls": 1, "input_tokens": 315, "output_tokens": 43,
        "cache_read_tokens": 50, "cache_write_tokens": 30, "cache_write_1h_tokens": 10,
        "reasoning_tokens": 4, "prompt_tokens": 395, "completion_tokens": 43,
        "total_tokens": 438, "unknown_usage_calls": 1, "cost_usd": 0.024,
        "cost_partial": True, "unknown_cost_calls": 1,
    }  # fmt: skip
    by_model = {row["model"]: row for row in recent["rows"]}
    assert [row["model"] for row in recent["rows"]] == ["openai/a", "anthropic/b", "openai/c"]
    assert by_model["openai/a"]["calls"] == 2 and by_model["openai/a"]["failed_calls"] == 1
    assert by_model["openai/a"]["cost_usd"] == pytest.approx(0.02)
    assert by_model["openai/c"]["cost_usd"] is None and by_model["openai/c"]["cost_partial"]
    providers = {r["provider"]: r["calls"] for r in ledger.summary(by="provider")["rows"]}
    assert providers == {"openai": 4, "anthropic": 2}
    scopes = {r["scope"]: r["calls"] for r in ledger.summary(since=now - 60, by="scope")["rows"]}
    assert scopes == {"root": 1, "root/sub": 2, None: 2}
    days = ledger.summary(by="day")["rows"]
    assert [d["day"] for d in days] == [
        datetime.fromtimestamp(old).date().isoformat(),
        datetime.fromtimestamp(now).date().isoformat(),
    ]
    assert [d["calls"] for d in days] == [1, 5]


def test_summary_of_a_missing_ledger_is_empty_and_creates_nothing(ledger: Ledger) -> None:
    result = ledger.summary(by="model")
    assert result["rows"] == [] and result["path"] == str(ledger.path)
    assert result["totals"]["calls"] == 0 and result["totals"]["cost_usd"] is None
    assert result["totals"]["cost_partial"] is False
    assert not ledger.path.parent.exists()


def test_summary_refuses_an_unknown_grouping(ledger: Ledger) -> None:
    with pytest.raises(InvalidInputError, match="cannot group usage by 'week'"):
        ledger.summary(by="week")


# -- failures never break the call --------------------------------------------------------------


def test_an_unusable_file_warns_once_and_never_raises(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "not-a-db.sqlite3"
    path.write_bytes(b"this is not a database file, at all" * 100)
    with Ledger(path) as broken, caplog.at_level(logging.WARNING, logger="rlm_code.ledger"):
        broken.write(record())
        broken.write(record())
        warnings = [r.getMessage() for r in caplog.records if r.name == "rlm_code.ledger"]
        assert len(warnings) == 1
        assert "could not record a call" in warnings[0] and "not affected" in warnings[0]
        with pytest.raises(LedgerError, match="cannot read the usage ledger") as info:
            broken.summary()
        assert "\n" not in str(info.value)


def test_an_open_failure_is_retried_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "dir"
    blocker.write_text("a file where the directory should be")
    with Ledger(blocker / "l.db") as ledger, caplog.at_level(logging.WARNING):
        ledger.write(record())
        blocker.unlink()
        ledger.write(record())  # within REOPEN_AFTER_S: not tried again
        assert not blocker.exists()
        monkeypatch.setattr(ledger_module, "REOPEN_AFTER_S", 0.0)
        ledger._retry_at = 0.0
        ledger.write(record())
    assert len(rows(blocker / "l.db")) == 1
    assert len([r for r in caplog.records if r.name == "rlm_code.ledger"]) == 1


def test_locked_past_the_timeout_warns_and_recovers(
    ledger: Ledger, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "BUSY_TIMEOUT_S", 0.05)
    ledger.write(record())
    other = sqlite3.connect(ledger.path, isolation_level=None)
    try:
        with caplog.at_level(logging.WARNING, logger="rlm_code.ledger"):
            other.execute("BEGIN IMMEDIATE")
            ledger.write(record())  # waits 50 ms for the lock, then gives up quietly
            other.execute("ROLLBACK")
            ledger.write(record())
            other.execute("BEGIN IMMEDIATE")
            ledger.write(record())
            other.execute("ROLLBACK")
    finally:
        other.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == "rlm_code.ledger"]
    assert len(warnings) == 2 and all("locked" in w for w in warnings)  # one per failure run
    assert len(rows(ledger.path)) == 2


def test_a_pricing_failure_leaves_the_cost_unknown(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(usage: Usage) -> Any:
        raise RuntimeError("price table unreadable")

    monkeypatch.setattr(cost_module, "price_usage", broken)
    ledger.write(record(provider="openai", model="m"))
    (row,) = rows(ledger.path)
    assert row["cost_usd"] is None and row["input_tokens"] == 10


def test_a_malformed_record_is_a_warning(ledger: Ledger, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="rlm_code.ledger"):
        ledger.write(record(at="yesterday"))
    assert len(caplog.records) == 1
    assert not ledger.path.exists()


# -- keys are never stored ----------------------------------------------------------------------


def file_bytes(path: Path) -> bytes:
    return b"".join(
        Path(str(path) + suffix).read_bytes()
        for suffix in ("", "-wal", "-shm")
        if Path(str(path) + suffix).exists()
    )


@pytest.mark.parametrize("secret", [CANARY, SECRET])
def test_keys_never_reach_the_database_file(
    tmp_path: Path, secret: str, caplog: pytest.LogCaptureFixture
) -> None:
    register_secret(SECRET)
    path = tmp_path / f"dir-{secret}" / "l.sqlite3"
    with Ledger(path, log_content=True) as ledger:
        ledger.write(
            record(
                model=f"m-{secret}",
                prompt=f"my key is {secret} ok",
                reply=f"echo {secret}",
                tags={f"key-{secret}": secret, "plain": f"api_key={secret}"},
                scopes=("root", secret),
                error_type=secret,
                finish_reason=secret,
                usage=Usage(1, 1),
                latency_ms=1.0,
            )
        )
        ledger.write(record(prompt="visible-marker-in-prompt"))
        summary = json.dumps(ledger.summary(by="scope")["rows"])
        ledger.close()
    data = file_bytes(path)
    assert b"visible-marker-in-prompt" in data  # the scan sees stored text
    assert secret.encode() not in data
    assert secret not in summary
    row = rows(path)[0]
    assert json.loads(row["tags"])["plain"].startswith("api_key=")  # still valid JSON
    assert "[REDACTED]" in row["prompt"] and "[REDACTED]" in row["scope"]


def test_a_connector_with_a_canary_key_stores_no_key(tmp_path: Path, fresh_server: Any) -> None:
    from rlm_code.core.exceptions import ModelError
    from rlm_code.models.llm_connector import LLMConnector

    path = tmp_path / "l.sqlite3"
    user = tmp_path / "config"
    user.mkdir()
    (user / "config.yaml").write_text(f"ledger:\n  path: {path}\n  log_content: true\n")
    manager = ConfigManager(tmp_path, environ={"RLM_CODE_CONFIG_DIR": str(user)})
    with LLMConnector(config_manager=manager) as connector:
        connector.connect_to_model(
            "openai/gpt-4o", api_key=CANARY, base_url=fresh_server.openai_base_url
        )
        with connector.usage_scope("run", note=f"key {CANARY}"):
            reply = connector.generate_response(f"my key is {CANARY}, visible-marker")
            fresh_server.script_faults(["401"])
            with pytest.raises(ModelError):
                connector.generate_response(f"again {CANARY}")
    assert "visible-marker" in reply  # the local server echoes the prompt, key and all
    data = file_bytes(path)
    assert b"visible-marker" in data  # prompt and reply were stored (log_content)
    assert CANARY.encode() not in data
    assert [r["error_type"] for r in rows(path)] == [None, "AuthenticationError"]
