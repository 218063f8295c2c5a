"""Closed pipes and closed standard streams end quietly with the usual codes (issue 10 item 16).

`rlm-code ask ... | head`: the reader goes away mid-reply; the command stops, prints no
traceback and exits 1 (`rlm_code.cli.exit_codes`). A closed stdin reads as empty input; a
closed stdout is exit 1 with one line on stderr, before any request is sent.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlm_code.testing import LocalProtocolServer

pytestmark = pytest.mark.timeout(60)

# 2 MB in 2000 pieces: more than a pipe holds (64 KiB on Linux, up to 1 MiB where raised).
BIG_REPLY = "\n".join(f"line{i} " + "x" * 1000 for i in range(2000))
DRIP_PROMPT = " ".join(f"word{i}" for i in range(40))  # `fault-drip` streams a piece at a time


def env_for(tmp_path: Path, server: LocalProtocolServer | None = None) -> dict[str, str]:
    env = {**os.environ, "RLM_CODE_CONFIG_DIR": str(tmp_path / "config")}
    if server is not None:
        env["VLLM_BASE_URL"] = server.openai_base_url
    return env


def assert_quiet(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    assert "Exception ignored" not in stderr, stderr
    assert "BrokenPipeError" not in stderr, stderr


def cli_into_head(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[int, str, bytes]:
    """`rlm-code ARGS | head -c 100`: (rlm-code's exit code, its stderr, what head printed)."""
    writer = subprocess.Popen(
        [sys.executable, "-m", "rlm_code", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env,
    )
    assert writer.stdout is not None and writer.stderr is not None
    head = subprocess.run(
        ["head", "-c", "100"], stdin=writer.stdout, capture_output=True, timeout=30, check=False
    )
    writer.stdout.close()  # only head holds the read end now: when it exits, the pipe breaks
    stderr = writer.stderr.read().decode()
    writer.stderr.close()
    return writer.wait(timeout=30), stderr, head.stdout


def test_ask_into_head_ends_quietly(fresh_server: LocalProtocolServer, tmp_path: Path) -> None:
    fresh_server.set_reply("test-model", BIG_REPLY)
    code, stderr, shown = cli_into_head(
        tmp_path, env_for(tmp_path, fresh_server), "ask", "-m", "vllm/test-model", "hi"
    )
    assert shown == BIG_REPLY.encode()[:100]
    assert_quiet(stderr)
    assert stderr == ""
    assert code == 1


@pytest.mark.parametrize("mode", [(), ("--no-stream",)], ids=["streamed", "no-stream"])
def test_reader_gone_before_the_reply(
    fresh_server: LocalProtocolServer, tmp_path: Path, mode: tuple[str, ...]
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-m", "rlm_code", "ask", "-m", "vllm/test-model", *mode, "hello"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env_for(tmp_path, fresh_server),
    )
    assert writer.stdout is not None
    writer.stdout.close()  # nobody will ever read the reply
    _, stderr = writer.communicate(timeout=30)
    assert_quiet(stderr.decode())
    assert stderr == b""
    assert writer.returncode == 1


def test_reader_leaving_mid_stream_stops_the_call(
    fresh_server: LocalProtocolServer, tmp_path: Path
) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-m", "rlm_code", "ask", "-m", "vllm/fault-drip", DRIP_PROMPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=tmp_path,
        env=env_for(tmp_path, fresh_server),
    )
    assert writer.stdout is not None and writer.stderr is not None
    first = writer.stdout.read(5)
    assert first  # the reply has started
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    writer.stderr.close()
    assert writer.wait(timeout=30) == 1
    assert_quiet(stderr)


def run_with_closed(fd: int, tmp_path: Path, env: dict[str, str], *args: str,
                    stdin: str | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """Run the CLI with file descriptor `fd` (0 or 1) closed, as `rlm-code ... <&-` would."""
    command = [sys.executable, "-m", "rlm_code", *args]
    return subprocess.run(
        ["sh", "-c", f'exec {fd}<&- "$@"', "sh", *command],
        input=stdin,
        stdout=subprocess.PIPE if fd != 1 else None,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
        check=False,
    )


def test_ask_with_stdin_closed_is_a_usage_error(tmp_path: Path) -> None:
    result = run_with_closed(0, tmp_path, env_for(tmp_path), "ask")
    assert_quiet(result.stderr)
    assert result.returncode == 2
    assert result.stderr.startswith("rlm-code: ask needs a prompt")
    assert len(result.stderr.splitlines()) == 1


def test_ask_with_stdin_closed_still_takes_the_argument(
    fresh_server: LocalProtocolServer, tmp_path: Path
) -> None:
    result = run_with_closed(
        0, tmp_path, env_for(tmp_path, fresh_server), "ask", "-m", "vllm/test-model", "hello"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Echo: hello\n"


def test_shell_with_stdin_closed_leaves_at_once(tmp_path: Path) -> None:
    result = run_with_closed(0, tmp_path, env_for(tmp_path))
    assert_quiet(result.stderr)
    assert result.returncode == 0


def test_set_key_with_stdin_closed_stores_nothing(tmp_path: Path) -> None:
    result = run_with_closed(0, tmp_path, env_for(tmp_path), "config", "set-key", "openai")
    assert_quiet(result.stderr)
    assert result.returncode == 2
    assert "no key given" in result.stderr
    assert not (tmp_path / "config" / "keys.json").exists()


@pytest.mark.parametrize("args", [("providers",), ("config", "show"), ("models", "openai")])
def test_closed_stdout_is_one_line_and_exit_1(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = run_with_closed(1, tmp_path, env_for(tmp_path), *args)
    assert_quiet(result.stderr)
    assert result.returncode == 1
    assert result.stderr == "rlm-code: standard output is closed; nothing to write to\n"


def test_closed_stdout_sends_no_request(fresh_server: LocalProtocolServer, tmp_path: Path) -> None:
    env = env_for(tmp_path, fresh_server)
    result = run_with_closed(1, tmp_path, env, "ask", "-m", "vllm/test-model", "hello")
    assert result.returncode == 1
    assert_quiet(result.stderr)
    assert not [r for r in fresh_server.requests if r.path == "/v1/chat/completions"]
