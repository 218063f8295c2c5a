"""The ledger's SQLite schema and its migrations, versioned by `PRAGMA user_version`.

`MIGRATIONS[i]` takes a database from version `i` to `i + 1`; the list is append-only (a
shipped migration is never edited, as in simonw/llm's `migrations.py`), so a file written by
any earlier release opens by running the tail of the list. Version 0 is a file without our
table: new, empty, or created by something that only touched it.

Several processes may open the same fresh file at once; `migrate` takes the write lock
(`BEGIN IMMEDIATE`, which waits up to the busy timeout) and reads the version again inside it,
so exactly one of them runs each migration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

# One call per row. Token buckets, cost and latency are NULL when unknown (never 0 for
# unknown); `scope` is the scope path ("root/sub"), NULL outside any scope; `tags` is a JSON
# object or NULL; `prompt`/`reply` are NULL unless the user turned content logging on.
_V1 = (
    """CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        scope TEXT,
        tags TEXT,
        input_tokens INTEGER,
        output_tokens INTEGER,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        cache_write_1h_tokens INTEGER,
        reasoning_tokens INTEGER,
        cost_usd REAL,
        cost_source TEXT,
        latency_ms REAL,
        finish_reason TEXT,
        streamed INTEGER NOT NULL DEFAULT 0,
        interrupted INTEGER NOT NULL DEFAULT 0,
        error_type TEXT,
        prompt TEXT,
        reply TEXT
    )""",
    "CREATE INDEX calls_at ON calls (at)",
)

MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)

# The columns `Ledger.write` fills, in the order of its INSERT.
COLUMNS = (
    "at",
    "provider",
    "model",
    "scope",
    "tags",
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_source",
    "latency_ms",
    "finish_reason",
    "streamed",
    "interrupted",
    "error_type",
    "prompt",
    "reply",
)
INSERT = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


class NewerSchemaError(Exception):
    """The file was written by a newer release (its version is above ours)."""

    def __init__(self, version: int) -> None:
        super().__init__(
            f"the ledger has schema version {version}, newer than this rlm-code's "
            f"{SCHEMA_VERSION}; upgrade rlm-code or point RLM_CODE_LEDGER at another file"
        )
        self.version = version


def version_of(connection: sqlite3.Connection) -> int:
    """The file's schema version (`PRAGMA user_version`)."""
    row = connection.execute("PRAGMA user_version").fetchone()
    return int(row[0])


def migrate(connection: sqlite3.Connection) -> None:
    """Bring the file to `SCHEMA_VERSION` (a no-op when it is there); `NewerSchemaError` when
    it is past it. The connection must be in autocommit mode (`isolation_level=None`)."""
    version = version_of(connection)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(version)
    connection.execute("BEGIN IMMEDIATE")
    try:
        version = version_of(connection)  # another process may have migrated meanwhile
        if version > SCHEMA_VERSION:
            raise NewerSchemaError(version)
        for step in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[step]:
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:  # SQLite may have rolled back already (disk full)
            connection.execute("ROLLBACK")
        raise
