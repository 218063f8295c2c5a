"""`rlm-code discover`, run as the real CLI in a subprocess against real loopback servers.

Every run gets its own working and config directory, a HOME and a PATH of its own (only fake
agents, if any), and every local provider's base-URL env var pointed at a closed loopback port
unless the test points it at a server: the command never probes the machine's real ports or
runs a real agent.
"""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_process import run_cli, run_in_pty

from rlm_code.models.providers.acp_discovery import ACP_AGENTS
from rlm_code.models.providers.registry import PROVIDERS
from rlm_code.testing import run_local_server

ANSI = re.compile(r"\x1b\[")
LOCAL = [spec for spec in PROVIDERS if spec.connection_type == "local"]


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def url_for(adapter_type: str, port: int) -> str:
    return f"http://127.0.0.1:{port}" + ("" if adapter_type == "ollama" else "/v1")


def discover_env(tmp_path: Path, **urls: str) -> dict[str, str]:
    """The environment of one run; `urls` maps provider ids (with _ for -) to base URLs."""
    env = dict(os.environ)
    for name in ("NO_COLOR", "FORCE_COLOR"):
        env.pop(name, None)
    for agent in ACP_AGENTS:
        for name in agent.env_vars:
            env.pop(name, None)
    for spec in LOCAL:
        assert spec.base_url_env_var
        key = spec.provider_id.replace("-", "_")
        env[spec.base_url_env_var] = urls.get(key, url_for(spec.adapter_type, closed_port()))
    for sub in ("bin", "home", "config"):
        (tmp_path / sub).mkdir(exist_ok=True)
    env["PATH"] = str(tmp_path / "bin")
    env["HOME"] = str(tmp_path / "home")
    env["RLM_CODE_CONFIG_DIR"] = str(tmp_path / "config")
    return env


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = env if env is not None else discover_env(tmp_path)
    return run_cli("discover", *args, cwd=tmp_path, base=base)


def fake_agent(tmp_path: Path, name: str, version: str) -> Path:
    path = tmp_path / "bin" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(f"#!{sys.executable}\nprint({version!r})\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


# -- JSON ---------------------------------------------------------------------------------------


def test_json_reports_a_running_server_with_its_models(tmp_path: Path) -> None:
    with run_local_server(protocols=("openai",)) as server:
        env = discover_env(tmp_path, vllm=server.openai_base_url)
        result = cli(tmp_path, "--json", "--timeout", "0.5", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", "no spinner when stderr is not a terminal"
    report = json.loads(result.stdout)
    assert set(report) == {"local", "acp"}
    vllm = next(item for item in report["local"] if item["provider_id"] == "vllm")
    assert vllm["healthy"] is True
    assert vllm["models"] == list(server.models)
    assert vllm["base_url"] == server.openai_base_url
    assert report["local"][0]["provider_id"] == "vllm", "healthy servers come first"
    others = [item for item in report["local"] if item["provider_id"] != "vllm"]
    assert others and all(item["detail"] == "connection refused" for item in others)
    assert [item["agent_id"] for item in report["acp"]] == [a.agent_id for a in ACP_AGENTS]
    assert not any(item["installed"] for item in report["acp"])


def test_json_acp_only_with_a_fake_agent(tmp_path: Path) -> None:
    env = discover_env(tmp_path)
    gemini = fake_agent(tmp_path, "gemini", "0.9.1")
    result = cli(tmp_path, "--acp-only", "--json", "--timeout", "2", env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"acp"}
    item = next(item for item in report["acp"] if item["agent_id"] == "gemini")
    assert item["installed"] is True and item["version"] == "0.9.1"
    assert item["command"] == str(gemini)


def test_json_local_only_nothing_found_is_still_exit_0(tmp_path: Path) -> None:
    result = cli(tmp_path, "--local-only", "--json", "--timeout", "0.5")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert set(report) == {"local"}
    assert report["local"] and not any(item["healthy"] for item in report["local"])


# -- tables -------------------------------------------------------------------------------------


def test_tables_piped_have_no_ansi_codes(tmp_path: Path) -> None:
    with run_local_server(protocols=("ollama",)) as server:
        env = discover_env(tmp_path, ollama=server.base_url)
        fake_agent(tmp_path, "goose", "goose 1.9.0")
        result = cli(tmp_path, "--timeout", "0.5", env=env)
    assert result.returncode == 0, result.stderr
    assert not ANSI.search(result.stdout) and not ANSI.search(result.stderr)
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Local model servers (1 of ")
    assert re.split(r"\s{2,}", lines[1]) == [
        "provider", "URL", "status", "models", "latency", "detail",
    ]  # fmt: skip
    ollama = re.split(r"\s{2,}", lines[2])
    assert ollama[:3] == ["ollama", server.base_url, "up"]
    assert ollama[3] == "6: test-model:latest, llama3.2:latest, qwen2.5-coder:7b, ..."
    assert ollama[4].endswith(" ms")
    assert any(line.startswith("ACP agents (1 of ") for line in lines)
    goose = next(line for line in lines if line.startswith("goose "))
    assert re.split(r"\s{2,}", goose)[:4] == ["goose", "yes", "goose 1.9.0", "no"]


def test_spinner_only_on_a_terminal_stderr(tmp_path: Path, silent_port: int) -> None:
    env = discover_env(tmp_path, vllm=url_for("openai_compatible", silent_port))
    terminal, stdout = run_in_pty(
        "discover", "--local-only", "--timeout", "0.6", cwd=tmp_path, env=env, tty="stderr"
    )
    assert "probing local servers..." in terminal
    assert terminal.endswith("\r\x1b[K"), "the spinner line is erased at the end"
    assert not ANSI.search(stdout)
    assert "timed out after 0.6 s" in stdout


def test_colour_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    with run_local_server(protocols=("openai",)) as server:
        env = discover_env(tmp_path, lmstudio=server.openai_base_url)
        args = ("discover", "--local-only", "--timeout", "0.5")
        coloured, _ = run_in_pty(*args, cwd=tmp_path, env=env)
        plain, _ = run_in_pty(*args, cwd=tmp_path, env={**env, "NO_COLOR": "1"})
    assert "\x1b[32mup\x1b[0m" in coloured
    assert not ANSI.search(plain)
    assert "lmstudio" in plain and " up " in plain


# -- usage errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "abc", "nan", "inf", "1e9"])
def test_bad_timeout_is_a_usage_error(tmp_path: Path, value: str) -> None:
    result = cli(tmp_path, "--json", f"--timeout={value}")
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("rlm-code")
    assert "--timeout" in result.stderr


def test_negative_timeout_as_separate_argument(tmp_path: Path) -> None:
    result = cli(tmp_path, "--timeout", "-1")
    assert result.returncode == 2 and result.stdout == ""


def test_local_only_and_acp_only_exclude_each_other(tmp_path: Path) -> None:
    result = cli(tmp_path, "--local-only", "--acp-only")
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_broken_config_file_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "rlm_config.yaml").write_text("providers: [unclosed\n")
    env = discover_env(tmp_path)
    env.pop("LMSTUDIO_BASE_URL")  # so the config file is read for this row
    result = cli(tmp_path, "--local-only", "--timeout", "0.5", env=env)
    assert result.returncode == 2
    assert "rlm_config.yaml" in result.stderr
    assert len(result.stderr.splitlines()) == 1
