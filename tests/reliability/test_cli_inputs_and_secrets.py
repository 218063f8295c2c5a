"""Bad input through the command line, and canary keys through every file and output it writes.

Each case runs the real CLI in a subprocess with its own config directory, and checks the exit
code, that the error is one line, that nothing was written half-way, and that the canary key
appears in no output and no file except the user's own 0600 key store.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cli_process import run_cli

CANARY = "sk-test-CANARYcli0123456789"


def all_files_text(root: Path, skip: Path | None = None) -> str:
    texts = []
    for path in root.rglob("*"):
        if path.is_file() and path != skip:
            texts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(texts)


def test_stored_key_goes_only_to_the_0600_key_store(tmp_path: Path) -> None:
    result = run_cli("config", "set-key", "openai", cwd=tmp_path, stdin=CANARY + "\n")
    assert result.returncode == 0, result.stderr
    store = tmp_path / "config" / "keys.json"
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text()) == {"openai": CANARY}
    outputs = [result.stdout + result.stderr]
    for args in (["config", "show"], ["config", "show", "--json"], ["providers", "--json"],
                 ["providers"], ["config", "path"]):  # fmt: skip
        shown = run_cli(*args, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        outputs.append(shown.stdout + shown.stderr)
    set_model = run_cli("config", "set", "default-model", "openai/gpt-4o", cwd=tmp_path)
    assert set_model.returncode == 0
    outputs.append(set_model.stdout + set_model.stderr)
    assert all(CANARY not in out for out in outputs)
    assert CANARY not in all_files_text(tmp_path, skip=store)
    assert "openai" in run_cli("config", "show", "--json", cwd=tmp_path).stdout


def test_key_in_env_never_printed_by_any_command(tmp_path: Path, local_server) -> None:
    extra = {"OPENAI_API_KEY": CANARY, "OPENAI_API_BASE": local_server.openai_base_url}
    commands = [
        ["providers", "--json"],
        ["config", "show"],
        ["ask", "--model", "openai/fault-401", "hello"],
        ["ask", "--model", "openai/fault-500", "--json", "hello"],
        ["ask", "--model", "openai/gpt-4o", "--json", "hello"],
        ["models", "openai", "--live"],
        ["--debug", "ask", "--model", "openai/fault-401", "hello"],
    ]
    for args in commands:
        result = run_cli(*args, cwd=tmp_path, env=extra)
        assert CANARY not in result.stdout + result.stderr, args
    assert CANARY not in all_files_text(tmp_path)


@pytest.mark.parametrize(
    "model",
    ["ollama/llama 3", "vllm/x\x01y", "vllm/", "/x", "a//b", "nope/x", "  "],
)
def test_bad_model_names_exit_2_with_one_line(tmp_path: Path, model: str) -> None:
    result = run_cli("ask", "--model", model, "hello", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_huge_prompt_from_stdin_is_refused_before_sending(tmp_path: Path) -> None:
    result = run_cli("ask", "--no-stream", "-", cwd=tmp_path, stdin="word " * 1_000_000)
    assert result.returncode == 2
    assert "more than any model accepts" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["config", "set", "timeout-read", "abc"], "number"),
        (["config", "set", "timeout-read", "-1"], "positive"),
        (["config", "set", "default-model", "no-slash"], "provider/model"),
        (["config", "set", "max-attempts", "0"], "at least 1"),
    ],
)
def test_bad_settings_write_nothing(tmp_path: Path, args: list[str], fragment: str) -> None:
    good = run_cli("config", "set", "default-model", "ollama/llama3.2", cwd=tmp_path)
    assert good.returncode == 0
    config_file = tmp_path / "config" / "config.yaml"
    before = config_file.read_bytes()
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert fragment in result.stderr
    assert config_file.read_bytes() == before
    assert not (tmp_path / "rlm_config.yaml").exists()


def test_malformed_key_store_is_reported_and_left_alone(tmp_path: Path) -> None:
    store = tmp_path / "config" / "keys.json"
    store.parent.mkdir(parents=True)
    store.write_text("{not json")
    store.chmod(0o600)
    result = run_cli("config", "set-key", "groq", cwd=tmp_path, stdin="gsk-test-123456\n")
    assert result.returncode == 2
    assert "keys.json" in result.stderr and "gsk-test-123456" not in result.stderr
    assert store.read_text() == "{not json"


def test_world_readable_key_store_is_refused(tmp_path: Path) -> None:
    store = tmp_path / "config" / "keys.json"
    store.parent.mkdir(parents=True)
    store.write_text(json.dumps({"openai": CANARY}))
    store.chmod(0o644)
    result = run_cli("ask", "--model", "openai/gpt-4o", "hi", cwd=tmp_path)
    assert result.returncode == 2
    assert "chmod 600" in result.stderr
    assert CANARY not in result.stdout + result.stderr
