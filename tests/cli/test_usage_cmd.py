"""`rlm-code usage`, run as the real CLI in a subprocess over ledgers written by this test.

Rows are written through `Ledger` in the test process with a fixed price list (the price
function is replaced here, so the sums are known exactly); the CLI only reads them.
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_cli, run_python

from rlm_code.models import cost as cost_module
from rlm_code.models.call_record import CallRecord
from rlm_code.models.ledger import Ledger
from rlm_code.models.types import Usage

HEADER = "model  calls  failed  input  output  cache read  cache write  reasoning  cost (USD)"


def env_for(tmp_path: Path, ledger: str | None = None) -> dict[str, str]:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    if ledger is not None:
        env["RLM_CODE_LEDGER"] = ledger
    return env


@pytest.fixture
def filled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ledger of 6 calls: 2 priced by the provider, 2 local, 1 unpriced, 1 failed, plus one
    10 days old."""

    def price(usage: Usage) -> tuple[float | None, Any]:
        if usage.reported_cost_usd is not None:
            return usage.reported_cost_usd, "provider"
        provider = usage.priced_as[0] if usage.priced_as else ""
        return (0.0, "local") if provider == "ollama" else (None, None)

    monkeypatch.setattr(cost_module, "price_usage", price)
    path = tmp_path / "ledger.sqlite3"
    now = time.time()

    def call(provider: str, model: str, usage: Usage, **more: Any) -> CallRecord:
        return CallRecord(more.pop("at", now), provider, model, usage, **more)

    with Ledger(path) as ledger:
        for record in (
            call("openrouter", "gpt-x", Usage(100, 20, 30, reported_cost_usd=0.01)),
            call("openrouter", "gpt-x", Usage(50, 10, reported_cost_usd=0.005), scopes=("sub",)),
            call("ollama", "llama3.2", Usage(7, 3)),
            call("ollama", "llama3.2", Usage(7, 3), scopes=("sub",)),
            call("openai", "mystery", Usage(5, 5, None, 40)),
            call("openai", "mystery", Usage(), error_type="RateLimitError"),
            call("openrouter", "gpt-x", Usage(1000, 1000, reported_cost_usd=1.0), at=now - 864000),
        ):
            ledger.write(record)
    return path


def usage_json(tmp_path: Path, *args: str, ledger: Path) -> dict[str, Any]:
    result = run_cli("usage", "--json", *args, cwd=tmp_path, env=env_for(tmp_path, str(ledger)))
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_a_missing_ledger_is_an_empty_table(tmp_path: Path) -> None:
    result = run_cli("usage", cwd=tmp_path, env=env_for(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(HEADER)
    assert lines[1].split() == ["total", "0", "0", "0", "0", "0", "0", "0", "-", "-"]
    assert not (tmp_path / "xdg").exists()  # reading created nothing
    data = usage_json(tmp_path, ledger=tmp_path / "nowhere" / "l.sqlite3")
    assert data["rows"] == [] and data["totals"]["calls"] == 0
    assert data["totals"]["cost_usd"] is None and data["totals"]["cost_partial"] is False
    empty_csv = run_cli("usage", "--csv", cwd=tmp_path, env=env_for(tmp_path))
    assert empty_csv.stdout.splitlines() == [
        "model,calls,failed_calls,input_tokens,output_tokens,cache_read_tokens,"
        "cache_write_tokens,reasoning_tokens,cost_usd,cost_partial,unknown_cost_calls"
    ]


def test_json_totals_and_rows(tmp_path: Path, filled: Path) -> None:
    data = usage_json(tmp_path, "--since", "7d", ledger=filled)
    totals = data["totals"]
    assert (totals["calls"], totals["failed_calls"]) == (5, 1)
    assert (totals["input_tokens"], totals["output_tokens"]) == (169, 41)
    assert (totals["cache_read_tokens"], totals["cache_write_tokens"]) == (30, 40)
    assert totals["cost_usd"] == pytest.approx(0.015)
    assert totals["cost_partial"] is True and totals["unknown_cost_calls"] == 1
    assert [row["model"] for row in data["rows"]] == [
        "openrouter/gpt-x", "ollama/llama3.2", "openai/mystery",
    ]  # fmt: skip
    assert data["path"] == str(filled) and data["by"] == "model"
    everything = usage_json(tmp_path, "--since", "2000-01-01", ledger=filled)
    assert everything["totals"]["calls"] == 6
    assert everything["totals"]["cost_usd"] == pytest.approx(1.015)
    assert usage_json(tmp_path, ledger=filled)["totals"]["calls"] == 6


def test_groups(tmp_path: Path, filled: Path) -> None:
    by_scope = usage_json(tmp_path, "--by", "scope", ledger=filled)["rows"]
    assert {row["scope"]: row["calls"] for row in by_scope} == {"sub": 2, None: 4}
    by_provider = usage_json(tmp_path, "--by", "provider", ledger=filled)["rows"]
    assert {row["provider"]: row["calls"] for row in by_provider} == {
        "openrouter": 3, "ollama": 2, "openai": 1,
    }  # fmt: skip
    days = usage_json(tmp_path, "--by", "day", ledger=filled)["rows"]
    assert [row["calls"] for row in days] == [1, 5]


def test_table_shows_cost_and_what_is_unknown(tmp_path: Path, filled: Path) -> None:
    result = run_cli("usage", "--since", "1w", cwd=tmp_path, env=env_for(tmp_path, str(filled)))
    assert result.returncode == 0, result.stderr
    table = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[1:-1]}
    assert table["openrouter/gpt-x"] == ["2", "0", "150", "30", "30", "0", "0", "$0.015000", "-"]
    assert table["ollama/llama3.2"][-2:] == ["$0.0000", "-"]
    assert table["openai/mystery"] == ["1", "1", "5", "5", "0", "40", "0", "unknown", "1"]
    assert table["total"][-2:] == ["$0.015000", "1"]
    assert result.stdout.splitlines()[-1] == (
        "cost is partial: 1 call(s) have no known price and are not counted in it"
    )


def test_csv_rows(tmp_path: Path, filled: Path) -> None:
    args = ("usage", "--csv", "--by", "provider")
    result = run_cli(*args, cwd=tmp_path, env=env_for(tmp_path, str(filled)))
    assert result.returncode == 0, result.stderr
    parsed = {row["provider"]: row for row in csv.DictReader(io.StringIO(result.stdout))}
    assert parsed["openrouter"]["cost_usd"] == "1.015"
    assert parsed["openai"]["cost_usd"] == "" and parsed["openai"]["cost_partial"] == "True"
    assert parsed["ollama"]["input_tokens"] == "14"


@pytest.mark.parametrize(
    "args",
    [
        ["--by", "week"],
        ["--since", "7x"],
        ["--since", "-3d"],
        ["--since", "0d"],
        ["--since", "2025-13-01"],
        ["--since"],
        ["--json", "--csv"],
        ["--bogus"],
    ],
)
def test_bad_flags_exit_2_with_one_line(tmp_path: Path, args: list[str]) -> None:
    result = run_cli("usage", *args, cwd=tmp_path, env=env_for(tmp_path))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == "" and "Traceback" not in result.stderr


def test_off_still_reads_what_was_recorded(tmp_path: Path) -> None:
    default = tmp_path / "xdg" / "rlm-code" / "ledger.sqlite3"
    with Ledger(default) as ledger:
        ledger.write(CallRecord(time.time(), "ollama", "llama3.2", Usage(1, 2)))
    result = run_cli("usage", "--json", cwd=tmp_path, env=env_for(tmp_path, "off"))
    assert result.returncode == 0
    assert json.loads(result.stdout)["totals"]["calls"] == 1
    assert "the usage ledger is off" in result.stderr


def test_an_unreadable_ledger_exits_1_with_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"\x00not sqlite" * 500)
    result = run_cli("usage", cwd=tmp_path, env=env_for(tmp_path, str(garbage)))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "cannot read the usage ledger" in result.stderr and result.stdout == ""


def test_a_bad_ledger_setting_exits_2(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("ledger:\n  path: relative.sqlite3\n")
    result = run_cli("usage", cwd=tmp_path, env=env_for(tmp_path))
    assert result.returncode == 2
    assert "'ledger.path' must be an absolute path" in result.stderr


def test_names_from_the_ledger_cannot_drive_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite3"
    with Ledger(path) as ledger:
        ledger.write(CallRecord(time.time(), "ollama", "evil\x1b]0;x\x07\x1b[31m", Usage(1, 1)))
    for args in ((), ("--csv",), ("--json",)):
        result = run_cli("usage", *args, cwd=tmp_path, env=env_for(tmp_path, str(path)))
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout and "\x07" not in result.stdout
        assert "evil" in result.stdout


def test_the_command_module_imports_only_argparse() -> None:
    probe = (
        "import sys\nbefore = set(sys.modules)\nimport rlm_code.cli.commands.usage\n"
        "print('\\n'.join(sorted(set(sys.modules) - before)))\n"
    )
    new = set(run_python(probe).split())
    assert "argparse" in new and "typing" not in new and "sqlite3" not in new
    assert {m for m in new if m.startswith("rlm_code")} == {
        "rlm_code", "rlm_code.cli", "rlm_code.cli.commands", "rlm_code.cli.commands.usage",
        "rlm_code.cli.exit_codes",
    }  # fmt: skip


def test_ask_then_usage_through_the_real_cli(tmp_path: Path, local_server: Any) -> None:
    canary = "sk-test-CANARYusage0123456789"
    path = tmp_path / "ledger.sqlite3"
    env = env_for(tmp_path, str(path))
    env.update({"OPENAI_API_KEY": canary, "OPENAI_API_BASE": local_server.openai_base_url})
    asked = run_cli("ask", "--model", "openai/gpt-4o", f"hello {canary}", cwd=tmp_path, env=env)
    assert asked.returncode == 0, asked.stderr
    failed = run_cli("ask", "--model", "openai/fault-401", "hello", cwd=tmp_path, env=env)
    assert failed.returncode == 1
    shown = run_cli("usage", "--json", cwd=tmp_path, env=env)
    assert shown.returncode == 0, shown.stderr
    totals = json.loads(shown.stdout)["totals"]
    assert (totals["calls"], totals["failed_calls"]) == (1, 1)
    assert totals["input_tokens"] > 0 and totals["output_tokens"] > 0
    data = b"".join(p.read_bytes() for p in tmp_path.glob("ledger.sqlite3*"))
    assert b"gpt-4o" in data and canary.encode() not in data
