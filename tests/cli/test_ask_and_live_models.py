"""`rlm-code ask` and `rlm-code models --live`, run as real processes against the local server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_process import run_cli

from rlm_code.testing import count_tokens, echo_reply


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path


def test_ask_without_provider_streams_from_builtin_server(workdir: Path) -> None:
    result = run_cli("ask", "Why is the sky blue?", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply("Why is the sky blue?") + "\n"
    assert "built-in local server" in result.stderr


def test_ask_json_reports_usage_and_reads_stdin(workdir: Path) -> None:
    result = run_cli("ask", "--json", stdin="piped words here\n", cwd=workdir)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    reply = echo_reply("piped words here")
    assert data["text"] == reply
    assert data["usage"] == {
        "total_calls": 1,
        "prompt_tokens": count_tokens("piped words here"),
        "completion_tokens": count_tokens(reply),
    }


def test_ask_uses_default_model_from_env_and_system_prompt(local_server, workdir: Path) -> None:
    local_server.clear_requests()
    env = {"RLM_CODE_MODEL": "vllm/test-model", "VLLM_BASE_URL": local_server.openai_base_url}
    result = run_cli("ask", "--system", "be terse", "hello there", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == echo_reply("hello there")
    assert "built-in" not in result.stderr
    bodies = [r.json for r in local_server.requests if r.path == "/v1/chat/completions"]
    assert any(b and b["messages"][0] == {"role": "system", "content": "be terse"} for b in bodies)


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["ask", "--model", "nope/x", "hi"], 2, "unknown provider 'nope'"),
        (["ask", "--model", "anthropic/claude-x", "hi"], 1, "ANTHROPIC_API_KEY"),
        (["ask", "--model", "vllm/x", "--base-url", "ftp://bad", "hi"], 2, "http://"),
        (["ask", "   "], 2, "needs a prompt"),
    ],
)
def test_ask_errors_are_one_line_with_exit_codes(workdir, args, code, fragment) -> None:
    result = run_cli(*args, cwd=workdir, stdin="")
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0]
    assert "Traceback" not in result.stderr


def test_ask_key_never_printed(workdir: Path) -> None:
    key = "sk-ant-test-NEVERPRINT12345"
    result = run_cli("ask", "--model", "anthropic/claude-x", "hi", env={"ANTHROPIC_API_KEY": key,
                     "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}, cwd=workdir)  # fmt: skip
    assert result.returncode == 1
    assert key not in result.stdout + result.stderr


def test_models_live_lists_what_the_server_has(local_server, workdir: Path) -> None:
    env = {"OLLAMA_HOST": local_server.base_url, "VLLM_BASE_URL": local_server.openai_base_url}
    result = run_cli("models", "ollama", "--live", env=env, cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "llama3.2:latest" in result.stdout.split()
    result = run_cli("models", "vllm", "--live", "--json", env=env, cwd=workdir)
    assert json.loads(result.stdout)["models"][0] == "test-model"


def test_models_live_without_key_is_exit_1(workdir: Path) -> None:
    result = run_cli("models", "groq", "--live", cwd=workdir)
    assert result.returncode == 1
    assert "GROQ_API_KEY" in result.stderr
