"""ACP agent discovery with real processes: fake agent executables on a PATH of our own.

Each fake agent is a small Python script (shebang = this interpreter, chmod +x) in a temp dir
that is the whole of PATH; HOME is another temp dir, so no real agent and no real login file
is ever seen. Scripts that hang record their pid (and their child's) so the tests can check
that nothing is left running and no zombie is left behind.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.providers.acp_discovery import ACP_AGENTS, discover_acp_agents

RESULT_KEYS = {
    "agent_id", "display_name", "installed", "command", "version", "configured", "detail",
    "acp_command", "configured_by", "docs_url",
}  # fmt: skip
FAKE_KEY = "sk-test-acp0123456789FAKE"


class Agents:
    """Writes fake agent executables into the directory that is PATH."""

    def __init__(self, bin_dir: Path, home: Path) -> None:
        self.bin = bin_dir
        self.home = home

    def add(self, name: str, code: str) -> Path:
        path = self.bin / name
        path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{code}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def version(self, name: str, text: str, *, stream: str = "stdout") -> Path:
        return self.add(name, f"print({text!r}, file=sys.{stream})")

    def login_file(self, relative: str) -> Path:
        path = self.home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('{"token": "fake"}')
        return path


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Agents:
    bin_dir = tmp_path / "bin"
    home = tmp_path / "home"
    bin_dir.mkdir()
    home.mkdir()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("HOME", str(home))
    for spec in ACP_AGENTS:  # e.g. GH_TOKEN or GOOSE_PROVIDER from the developer's shell
        for name in spec.env_vars:
            monkeypatch.delenv(name, raising=False)
    return Agents(bin_dir, home)


def discover(timeout: float = 2.0, config: ConfigManager | None = None) -> dict[str, Any]:
    results = discover_acp_agents(timeout=timeout, config_manager=config)
    assert [r["agent_id"] for r in results] == [s.agent_id for s in ACP_AGENTS]
    for item in results:
        assert set(item) == RESULT_KEYS
        assert isinstance(item["installed"], bool) and isinstance(item["configured"], bool)
        assert item["installed"] == (item["command"] is not None)
        assert isinstance(item["detail"], str) and item["detail"]
    json.dumps(results)
    return {item["agent_id"]: item for item in results}


def assert_gone(pid: int) -> None:
    """The process no longer exists (killed and reaped) or, for a grandchild whose parent
    died, is at least not running any more (reaping it is its new parent's job).

    A SIGKILL sent to a process group is delivered asynchronously, so the state is polled
    for a moment before the process counts as still running."""
    status = Path(f"/proc/{pid}/status")
    deadline = time.monotonic() + 3
    while True:
        try:
            text = status.read_text()
        except (FileNotFoundError, ProcessLookupError):
            return
        state = next(line for line in text.splitlines() if line.startswith("State:"))
        if "Z" in state or "X" in state:
            return
        assert time.monotonic() < deadline, f"process {pid} still runs: {state}"
        time.sleep(0.02)


def read_pids(path: Path) -> list[int]:
    deadline = time.monotonic() + 5
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, "the fake agent never started"
        time.sleep(0.01)
    return [int(p) for p in path.read_text().split()]


# -- the table ---------------------------------------------------------------------------------


def test_table_rows() -> None:
    ids = [spec.agent_id for spec in ACP_AGENTS]
    assert len(ids) == len(set(ids))
    required = {"gemini", "claude-code", "codex", "goose", "opencode", "kimi", "junie", "auggie"}
    assert required <= set(ids)
    commands = {exe.name for spec in ACP_AGENTS for exe in spec.executables}
    expected = {"gemini", "claude", "claude-code-acp", "codex", "codex-acp", "goose",
                "opencode", "kimi", "junie", "auggie"}  # fmt: skip
    assert expected <= commands
    for spec in ACP_AGENTS:
        assert spec.executables and spec.acp_capable, spec.agent_id
        assert spec.env_vars or spec.login_files, spec.agent_id
        assert all(path.startswith("~/") for path in spec.login_files)
        assert spec.docs_url and spec.docs_url.startswith("https://")


# -- installed or not, versions -----------------------------------------------------------------


def test_installed_with_version_and_not_installed(agents: Agents) -> None:
    gemini = agents.version("gemini", "0.9.1\nmore lines are ignored")
    results = discover()
    item = results["gemini"]
    assert item["installed"] is True
    assert item["command"] == str(gemini)
    assert item["version"] == "0.9.1"
    assert item["acp_command"] == [str(gemini), "--experimental-acp"]
    assert "ACP: gemini --experimental-acp" in item["detail"]
    for agent_id, other in results.items():
        if agent_id != "gemini":
            assert other["installed"] is False and other["command"] is None
            assert other["version"] is None and other["acp_command"] is None
            assert other["detail"].startswith("not found on PATH")


def test_version_on_stderr_and_colour_codes_stripped(agents: Agents) -> None:
    agents.version("goose", "\x1b[1mgoose 1.9.0\x1b[0m", stream="stderr")
    assert discover()["goose"]["version"] == "goose 1.9.0"


def test_version_flag_failing(agents: Agents) -> None:
    agents.add("opencode", "print('unknown flag --version', file=sys.stderr); sys.exit(1)")
    item = discover()["opencode"]
    assert item["installed"] is True and item["version"] is None
    assert "`opencode --version` exited with status 1" in item["detail"]


def test_version_flag_hanging_is_killed_with_its_children(agents: Agents, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    agents.add(
        "codex",
        f"log = open({str(pids)!r}, 'w')\n"
        "log.write(f'{os.getpid()} '); log.flush()\n"  # first, in case the machine is slow
        "import subprocess\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "log.write(f'{child.pid} '); log.flush()\n"
        "time.sleep(60)",
    )
    timeout = 1.5  # room for two interpreters to start, even on a busy machine
    began = time.perf_counter()
    item = discover(timeout=timeout)["codex"]
    elapsed = time.perf_counter() - began
    assert item["installed"] is True and item["version"] is None
    assert f"`codex --version` did not finish within {timeout:g} s (killed)" in item["detail"]
    assert elapsed < timeout * 3
    agent_pid, *grandchild = read_pids(pids)
    with pytest.raises(ProcessLookupError):  # killed and reaped: not even a zombie
        os.kill(agent_pid, 0)
    for pid in grandchild:  # killed with the agent's process group
        assert_gone(pid)


def test_many_hanging_agents_still_take_about_one_timeout(agents: Agents) -> None:
    for name in ("gemini", "claude", "codex", "goose", "kimi", "auggie"):
        agents.add(name, "time.sleep(60)")
    timeout = 0.5
    began = time.perf_counter()
    results = discover(timeout=timeout)
    elapsed = time.perf_counter() - began
    print(f"\n6 hanging version flags, timeout {timeout} s: ACP discovery took {elapsed:.3f} s")
    assert elapsed < timeout * 3
    assert sum(1 for r in results.values() if r["installed"]) == 6
    assert all(r["version"] is None for r in results.values())


def test_version_commands_run_concurrently(agents: Agents) -> None:
    names = ("gemini", "goose", "kimi", "junie", "auggie")
    for name in names:
        agents.add(name, f"time.sleep(0.3); print('{name} 1.0')")
    began = time.perf_counter()
    results = discover(timeout=1.2)
    elapsed = time.perf_counter() - began
    by_executable = {"qwen": "qwen-code"}
    versions = [results[by_executable.get(n, n)]["version"] for n in names]
    assert versions == [f"{name} 1.0" for name in names]
    assert elapsed < 1.2, f"{len(names)} x 0.3 s one after the other would take 1.5 s"


def test_cli_without_its_acp_adapter(agents: Agents) -> None:
    agents.version("claude", "2.0.1 (Claude Code)")
    item = discover()["claude-code"]
    assert item["installed"] is True and item["version"] == "2.0.1 (Claude Code)"
    assert item["acp_command"] is None
    assert "ACP adapter not found" in item["detail"]
    assert "npm install -g @agentclientprotocol/claude-agent-acp" in item["detail"]


def test_adapter_found_and_never_run(agents: Agents, tmp_path: Path) -> None:
    marker = tmp_path / "adapter-ran"
    claude = agents.version("claude", "2.0.1 (Claude Code)")
    adapter = agents.add("claude-code-acp", f"open({str(marker)!r}, 'w').write('ran')")
    item = discover()["claude-code"]
    assert item["command"] == str(claude)
    assert item["acp_command"] == [str(adapter)]
    assert not marker.exists(), "an adapter with no version flag is only looked up"


def test_not_executable_file_is_not_installed(agents: Agents) -> None:
    (agents.bin / "qwen").write_text("not a program")  # no execute bit: which() skips it
    assert discover()["qwen-code"]["installed"] is False


# -- configured -----------------------------------------------------------------------------------


def test_configured_via_env_var_value_never_reported(
    agents: Agents, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents.version("gemini", "0.9.1")
    monkeypatch.setenv("GEMINI_API_KEY", FAKE_KEY)
    results = discover()
    item = results["gemini"]
    assert item["configured"] is True and item["configured_by"] == "$GEMINI_API_KEY"
    assert "configured via $GEMINI_API_KEY" in item["detail"]
    assert FAKE_KEY not in json.dumps(list(results.values()))
    assert results["codex"]["configured"] is False


def test_configured_via_login_file_under_home(agents: Agents) -> None:
    agents.version("codex", "codex-cli 0.50.0")
    agents.login_file(".codex/auth.json")
    item = discover()["codex"]
    assert item["configured"] is True and item["configured_by"] == "~/.codex/auth.json"
    assert item["version"] == "codex-cli 0.50.0"


def test_not_configured_names_what_would_do(agents: Agents) -> None:
    agents.version("codex", "codex-cli 0.50.0")
    item = discover()["codex"]
    assert item["configured"] is False and item["configured_by"] is None
    assert (
        "not configured (none of: $CODEX_API_KEY, $OPENAI_API_KEY, ~/.codex/auth.json)"
        in (item["detail"])
    )


def test_configured_via_project_dotenv(agents: Agents, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text(f"KIMI_API_KEY={FAKE_KEY}\n")
    item = discover(config=ConfigManager(project_root=project))["kimi"]
    assert item["configured"] is True and item["configured_by"] == "$KIMI_API_KEY"


# -- arguments and the connector ----------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -2, float("nan"), float("inf"), "2", None, False])
def test_invalid_timeout(bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="timeout"):
        discover_acp_agents(timeout=bad)


def test_connector_discover_acp_agents(agents: Agents, tmp_path: Path) -> None:
    agents.version("goose", "1.9.0")
    connector = LLMConnector(config_manager=ConfigManager(project_root=tmp_path))
    results: list[dict[str, Any]] = connector.discover_acp_agents(timeout=1.0)
    goose = next(r for r in results if r["agent_id"] == "goose")
    assert goose["installed"] is True and goose["version"] == "1.9.0"
    assert goose["acp_command"] == [str(agents.bin / "goose"), "acp"]


def test_missing_home_still_works(agents: Agents, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HOME")
    agents.version("gemini", "0.9.1")
    assert discover()["gemini"]["version"] == "0.9.1"


def test_path_and_home_come_from_the_config_environ(
    agents: Agents, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agents.version("auggie", "0.5.0")
    agents.login_file(".augment/session.json")
    environ = {"PATH": str(agents.bin), "HOME": str(agents.home)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("PATH", str(elsewhere))
    config = ConfigManager(project_root=tmp_path, environ=environ)
    item = discover(config=config)["auggie"]
    assert item["installed"] is True and item["version"] == "0.5.0"
    assert item["configured_by"] == "~/.augment/session.json"
