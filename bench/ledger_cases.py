"""The usage-ledger side of the bench (issue 13): keep the ledger off where it is not measured,
on (and proven on) where it is.

Every `LLMConnector` call is recorded in a SQLite ledger that is ON by default, at
`$XDG_DATA_HOME/rlm-code/ledger.sqlite3`. So that the existing rows keep measuring what they
measured, every timed process gets `RLM_CODE_LEDGER=off`; and so that the bench never writes
into the real user data directory whatever a row asks for, `XDG_DATA_HOME` points into the
run's temp dir for every process.

The ledger rows turn it back on:

- `seq_ledger` (case 10): the loopback sequential case (same fixture and counts as `seq`)
  with the ledger on, a fresh file per contender process (`fresh_path`), next to bare `httpx2`
  and ours with the ledger off in the same run. A loopback call is ~250 µs and a ledger write
  ~30 µs, so this is the worst case for the ledger's share; against a real provider it is
  noise. Target <= 1.3x bare `httpx2` (issue 13).
- `startup_ledger`: the user start-up script (`startup.py`) with `RLM_CODE_LEDGER` unset, i.e.
  the ledger on at its default place under a temp `XDG_DATA_HOME` (for information).

A row that claims the ledger is on must show it: the contender counts the rows of its file
after the timed loop (`check_rows`), and a count that is not exactly one per call fails the
row rather than timing a ledger that silently stayed off. Standard library only.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

LEDGER_ENV = "RLM_CODE_LEDGER"
SEQ_LEDGER_TARGET = 1.3
DATA_DIR = "data"  # under the run's scratch dir: XDG_DATA_HOME of every timed process
STARTUP_DATA_DIR = "startup-data"  # XDG_DATA_HOME of the ledger-on start-up row
LEDGER_FILE = Path("rlm-code") / "ledger.sqlite3"  # the default place, under XDG_DATA_HOME
_OFF = {"off", "0", "false", "no"}
_serial = itertools.count(1)


def isolate(env: dict[str, str], scratch: Path) -> None:
    """Ledger off and the user data dir in `scratch`, for every timed process."""
    env[LEDGER_ENV] = "off"
    env["XDG_DATA_HOME"] = str(scratch / DATA_DIR)


def fresh_path(scratch: Path, tag: str) -> Path:
    """A ledger file that no process has used yet (the process creates it on its first call)."""
    folder = scratch / "ledgers"
    folder.mkdir(exist_ok=True)
    while True:
        path = folder / f"{tag}-{next(_serial)}.sqlite3"
        if not path.exists():
            return path


def startup_env(env: dict[str, str], scratch: Path) -> dict[str, str]:
    """The environment of the ledger-on start-up row: `RLM_CODE_LEDGER` unset (the default,
    as a user has it) and its own temp `XDG_DATA_HOME`."""
    out = {k: v for k, v in env.items() if k != LEDGER_ENV}
    out["XDG_DATA_HOME"] = str(scratch / STARTUP_DATA_DIR)
    return out


def count_rows(path: Path) -> int:
    """Rows in a ledger file's `calls` table."""
    import sqlite3

    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        return int(connection.execute("SELECT COUNT(*) FROM calls").fetchone()[0])
    finally:
        connection.close()


def check_rows(calls: int) -> int | None:
    """In a contender process: when `$RLM_CODE_LEDGER` names a file, check it holds exactly
    `calls` rows and return that count; None when the ledger is off or unset."""
    value = os.environ.get(LEDGER_ENV, "").strip()
    if not value or value.lower() in _OFF:
        return None
    path = Path(value)
    if not path.exists():
        raise RuntimeError(f"the ledger was meant to be on, but {path} was never created")
    rows = count_rows(path)
    if rows != calls:
        raise RuntimeError(f"the ledger holds {rows} rows after {calls} calls")
    return rows


def stray_ledgers(scratch: Path) -> list[str]:
    """Ledger files under the ledger-off rows' `XDG_DATA_HOME` (there must be none)."""
    root = scratch / DATA_DIR
    if not root.exists():
        return []
    return sorted(str(p.relative_to(scratch)) for p in root.rglob("*.sqlite3*"))
