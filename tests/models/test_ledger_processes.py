"""The ledger across processes: a returned write survives SIGKILL; many writers lose no row.

Each writer is a fresh interpreter running `WRITER` below: it writes rows tagged with its name
and a running number, optionally prints each number once its `write` has returned, and can
SIGKILL itself the moment the last write returns. Rows are counted with plain `sqlite3`. A
writer's stderr must stay empty: a failed write logs a warning there, so silence means every
write was stored.
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="needs SIGKILL")

WRITER = """
import os, signal, sys, time
from rlm_code.models.call_record import CallRecord
from rlm_code.models.ledger import Ledger
from rlm_code.models.types import Usage

path, name, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ledger = Ledger(path)
if "wait" in mode:
    print("ready", flush=True)
    sys.stdin.readline()
for i in range(1, count + 1):
    usage = Usage(input_tokens=i, output_tokens=1)
    ledger.write(CallRecord(time.time(), "ollama", "m", usage, tags={"w": name, "i": str(i)}))
    if "report" in mode:
        print(i, flush=True)
    if "selfkill" in mode and i == count:
        os.kill(os.getpid(), signal.SIGKILL)
ledger.close()
"""


def start(path: Path, name: str, count: int, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), name, str(count), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def rows_by_writer(path: Path) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        query = "SELECT json_extract(tags, '$.w'), json_extract(tags, '$.i') FROM calls"
        for name, number in connection.execute(query):
            found.setdefault(name, []).append(int(number))
    return {name: sorted(numbers) for name, numbers in found.items()}


@pytest.mark.parametrize("count", [1, 50])
def test_a_row_is_committed_before_write_returns(tmp_path: Path, count: int) -> None:
    path = tmp_path / "ledger.sqlite3"
    writer = start(path, "w", count, "selfkill")
    _, stderr = writer.communicate(timeout=60)
    assert writer.returncode == -signal.SIGKILL
    assert stderr == ""
    assert rows_by_writer(path) == {"w": list(range(1, count + 1))}


def test_eight_processes_writing_at_once_lose_no_row(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "ledger.sqlite3"  # not there yet: they race to create it too
    writers = [start(path, f"w{n}", 500, "wait") for n in range(8)]
    for writer in writers:
        assert writer.stdout is not None and writer.stdout.readline() == "ready\n"
    for writer in writers:  # all of them at once
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    for writer in writers:
        _, stderr = writer.communicate(timeout=120)
        assert writer.returncode == 0, stderr
        assert stderr == ""
    assert rows_by_writer(path) == {f"w{n}": list(range(1, 501)) for n in range(8)}


def test_writers_killed_mid_burst_leave_every_returned_row(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    victims = {"v0": 150, "v1": 400}  # killed after this many writes were reported
    survivors = ["s0", "s1"]
    processes = {name: start(path, name, 100_000, "report") for name in victims}
    processes.update({name: start(path, name, 1000, "report") for name in survivors})
    reported: dict[str, int] = {}
    for name, kill_at in victims.items():
        process = processes[name]
        assert process.stdout is not None
        while int(process.stdout.readline()) < kill_at:
            pass
        process.send_signal(signal.SIGKILL)  # the others are writing meanwhile
        assert process.wait(timeout=60) == -signal.SIGKILL
        rest = process.stdout.read().split()  # numbers printed before the kill landed
        reported[name] = int(rest[-1]) if rest else kill_at
        for pipe in (process.stdin, process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
    for name in survivors:
        _, stderr = processes[name].communicate(timeout=120)
        assert processes[name].returncode == 0 and stderr == ""
    found = rows_by_writer(path)
    for name, last in reported.items():
        # every write that returned is there; at most one more committed as the kill landed
        assert found[name][:last] == list(range(1, last + 1))
        assert len(found[name]) in (last, last + 1)
    for name in survivors:
        assert found[name] == list(range(1, 1001))
    # the file is still a working ledger
    writer = start(path, "after", 3, "")
    assert writer.communicate(timeout=60)[1] == ""
    assert rows_by_writer(path)["after"] == [1, 2, 3]
