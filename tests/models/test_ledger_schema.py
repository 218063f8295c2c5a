"""The ledger's schema versions: a file from every earlier version opens and keeps its rows.

Old files are built by hand (version 1 from SQL written out here, not imported from the
module), then opened through `Ledger`; the result must match a freshly made ledger, column by
column and index by index.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_code.models.call_record import CallRecord
from rlm_code.models.ledger import Ledger, LedgerError
from rlm_code.models.ledger.schema import MIGRATIONS, SCHEMA_VERSION
from rlm_code.models.types import Usage


def record() -> CallRecord:
    return CallRecord(time.time(), "ollama", "llama3.2", Usage(input_tokens=10, output_tokens=5))


def rows(path: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(path) as connection:
        connection.row_factory = sqlite3.Row
        return [dict(r) for r in connection.execute("SELECT * FROM calls ORDER BY id")]


def schema_sql(path: Path) -> list[Any]:
    """Every table's columns (name, type, not null, default, key) and every index's columns."""
    with sqlite3.connect(path) as connection:
        found: list[Any] = []
        master = "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name"
        for kind, name in connection.execute(master).fetchall():
            pragma = "table_info" if kind == "table" else "index_info"
            info = connection.execute(f"PRAGMA {pragma}({name})").fetchall()
            found.append((kind, name, [tuple(column) for column in info]))
        return found


# -- versions --------------------------------------------------------------------------

# Version 1 exactly as first shipped, written out here (not imported) so that a change to the
# module's migrations cannot also change what "a version 1 file" means in this test.
V1_FILE_SQL = """
CREATE TABLE calls (id INTEGER PRIMARY KEY, at REAL NOT NULL, provider TEXT NOT NULL,
  model TEXT NOT NULL, scope TEXT, tags TEXT, input_tokens INTEGER, output_tokens INTEGER,
  cache_read_tokens INTEGER, cache_write_tokens INTEGER, cache_write_1h_tokens INTEGER,
  reasoning_tokens INTEGER, cost_usd REAL, cost_source TEXT, latency_ms REAL,
  finish_reason TEXT, streamed INTEGER NOT NULL DEFAULT 0,
  interrupted INTEGER NOT NULL DEFAULT 0, error_type TEXT, prompt TEXT, reply TEXT);
CREATE INDEX calls_at ON calls (at);
INSERT INTO calls (at, provider, model, input_tokens, output_tokens, cost_usd, cost_source)
  VALUES (1700000000.5, 'openai', 'gpt-4o', 11, 22, 0.5, 'price-table');
PRAGMA user_version = 1;
"""


def fresh_schema(tmp_path: Path) -> list[str]:
    with Ledger(tmp_path / "fresh.sqlite3") as fresh:
        fresh.write(record())
    return schema_sql(tmp_path / "fresh.sqlite3")


@pytest.mark.parametrize("version", range(SCHEMA_VERSION))
def test_every_earlier_version_migrates_to_the_current_schema(tmp_path: Path, version: int) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as connection:
        for step in MIGRATIONS[:version]:
            for statement in step:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {version}")
    with Ledger(path) as old:
        old.write(record())
    assert schema_sql(path) == fresh_schema(tmp_path)
    assert len(rows(path)) == 1


def test_an_empty_file_is_version_zero(tmp_path: Path) -> None:
    path = tmp_path / "empty.sqlite3"
    path.touch()
    with Ledger(path) as empty:
        assert empty.summary()["totals"]["calls"] == 0  # a read migrates it too
        empty.write(record())
    assert schema_sql(path) == fresh_schema(tmp_path)


def test_a_hand_built_version_1_file_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.executescript(V1_FILE_SQL)
    with Ledger(path) as v1:
        v1.write(record())
        totals = v1.summary()["totals"]
    assert totals["calls"] == 2 and totals["input_tokens"] == 21 and totals["cost_usd"] == 0.5
    assert schema_sql(path) == fresh_schema(tmp_path)
    assert rows(path)[0]["model"] == "gpt-4o"


def test_a_newer_schema_is_left_alone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "future.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE calls (id INTEGER PRIMARY KEY, at REAL, more TEXT)")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with Ledger(path) as future, caplog.at_level(logging.WARNING, logger="rlm_code.ledger"):
        future.write(record())
        assert "newer than this rlm-code" in caplog.records[0].getMessage()
        with pytest.raises(LedgerError, match="upgrade rlm-code"):
            future.summary()
    assert [column[1] for column in schema_sql(path)[0][2]] == ["id", "at", "more"]
