"""OpenCode keyless mode through the `opencode` CLI, driven by a fake `opencode` on PATH.

The fake is a small Python script written to a temp dir and put first on PATH; the environment
variable FAKE_OPENCODE_MODE picks its behaviour (canned JSON-lines events, a hang, a failure),
and it logs its argv, what it read on stdin, its pid (and a helper's pid) and the mode of a
temp prompt file if one was named, so the tests can check the command line, that the prompt
never appears on it, and that every process is gone afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ModelTimeoutError, ProviderError
from rlm_code.models.llm_connector import LLMConnector

from .conftest import assert_one_call_of_unknown_usage

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX fake executable")

FAKE_OPENCODE = textwrap.dedent(
    """\
    #!{python}
    import json, os, subprocess, sys, time

    mode = os.environ.get("FAKE_OPENCODE_MODE", "ok")
    log = os.environ["FAKE_OPENCODE_LOG"]
    record = {{"argv": sys.argv[1:], "pid": os.getpid(),
               "stdin": sys.stdin.read() if not sys.stdin.isatty() else None}}
    if mode in ("sleep", "slow_exit"):
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        record["helper"] = helper.pid
    with open(log, "a") as f:
        f.write(json.dumps(record) + "\\n")

    def emit(event):
        sys.stdout.write(json.dumps(event) + "\\n")
        sys.stdout.flush()

    def text(t):
        emit({{"type": "text", "timestamp": 1, "sessionID": "ses_1",
               "part": {{"type": "text", "text": t, "time": {{"start": 1, "end": 2}}}}}})

    if mode == "fail":
        sys.stderr.write("INFO starting\\n")
        sys.stderr.write("Error: provider said no (key sk-test-CANARY0123456789)\\n")
        sys.exit(1)
    if mode == "huge_line":
        sys.stdout.write("x" * (17 * 1024 * 1024) + "\\n")
        sys.stdout.flush()
        sys.exit(0)
    if mode == "error_event":
        emit({{"type": "error", "error": {{"name": "APIError",
               "data": {{"message": "model big-pickle is not available"}}}}}})
        sys.exit(0)
    print("opencode v0.0.0-fake (banner line, not JSON)", flush=True)
    emit({{"type": "step_start", "part": {{"type": "step-start"}}}})
    text("Hello ")
    if mode in ("sleep", "slow_exit"):
        time.sleep(60)
    text("world")
    tokens = {{"input": 5, "output": 2, "reasoning": 1, "cache": {{"read": 2, "write": 0}}}}
    finish = {{"type": "step-finish", "reason": "stop"}}
    if mode != "no_tokens":
        finish["tokens"] = tokens
    emit({{"type": "step_finish", "part": finish}})
    """
)


@pytest.fixture
def fake_opencode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Puts the fake `opencode` first on PATH; yields the path of its log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "opencode"
    exe.write_text(FAKE_OPENCODE.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "opencode.log"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setenv("FAKE_OPENCODE_LOG", str(log))
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "ok")
    monkeypatch.delenv("OPENCODE_API_KEY", raising=False)
    yield log


@pytest.fixture
def connector(tmp_path: Path, fake_opencode: Path) -> Iterator[LLMConnector]:
    project = tmp_path / "project"
    project.mkdir()
    (project / "rlm_config.yaml").write_text("timeouts: {connect: 2, read: 0.5}\n")
    with LLMConnector(ConfigManager(project_root=project)) as conn:
        assert conn.connect_to_model("opencode/big-pickle") is True
        yield conn


def runs(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def wait_for_run(log: Path, timeout: float = 5.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs(log)
        if found:
            return found[-1]
        time.sleep(0.01)
    raise AssertionError("the fake opencode never started")


def gone(pid: int, timeout: float = 3.0) -> bool:
    """True once `pid` no longer runs (reaped, or a zombie left to init to reap)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z"):
                return True
        time.sleep(0.02)
    return False


def reaped(pid: int) -> bool:
    """Our direct child must be waited for: no zombie left behind."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_connects_through_the_cli_without_network(connector, fake_opencode):
    status = connector.get_connection_status()
    assert status["route"] == "cli"
    assert status["model"] == "big-pickle"
    assert status["has_api_key"] is False
    assert runs(fake_opencode) == []  # check() does nothing


def test_reply_command_line_and_usage(connector, fake_opencode):
    before = connector.usage_snapshot()
    assert connector.generate_response("Say hi") == "Hello world"
    (run,) = runs(fake_opencode)
    # The prompt goes on stdin: on the command line any local user could read it with `ps`.
    assert run["argv"] == ["run", "--format", "json", "-m", "opencode/big-pickle"]
    assert run["stdin"] == "Say hi"
    assert reaped(run["pid"])
    delta = LLMConnector.usage_delta(before, connector.usage_snapshot())
    # input 5 + cache read 2; output 2 + reasoning 1
    assert delta == {"total_calls": 1, "prompt_tokens": 7, "completion_tokens": 3}


def test_system_prompt_and_history_are_folded_into_the_message(connector, fake_opencode):
    history = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
    ]
    connector.generate_response(
        "-second question", system_prompt="Be brief.", context={"conversation_history": history}
    )
    run = runs(fake_opencode)[-1]
    assert not any("question" in arg for arg in run["argv"])  # nothing of it on the command line
    assert run["stdin"] == (
        "System:\nBe brief.\n\nUser:\nfirst question\n\nAssistant:\nfirst answer"
        "\n\nUser:\n-second question"
    )


def test_stream_yields_each_text_event(connector):
    assert list(connector.stream_response("Say hi")) == ["Hello ", "world"]


def test_async_calls(connector, fake_opencode):
    async def both() -> tuple[str, list[str]]:
        text = await connector.agenerate_response("Say hi")
        chunks = [c async for c in connector.astream_response("Say hi")]
        return text, chunks

    assert asyncio.run(both()) == ("Hello world", ["Hello ", "world"])
    assert all(reaped(run["pid"]) for run in runs(fake_opencode))


def test_missing_tokens_mean_unknown_usage(connector, monkeypatch):
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "no_tokens")
    before = connector.usage_snapshot()
    assert connector.generate_response("Say hi") == "Hello world"
    assert_one_call_of_unknown_usage(connector, before)


@pytest.mark.parametrize("mode", ["generate", "agenerate"])
def test_timeout_kills_the_process_group(connector, fake_opencode, monkeypatch, mode):
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "sleep")
    started = time.monotonic()
    with pytest.raises(ModelTimeoutError):
        if mode == "generate":
            connector.generate_response("Say hi")
        else:
            asyncio.run(connector.agenerate_response("Say hi"))
    assert time.monotonic() - started < 3.0  # read timeout 0.5 s, then kill and reap
    run = runs(fake_opencode)[-1]
    assert reaped(run["pid"])
    assert gone(run["helper"])  # the CLI's own children go with it


def test_breaking_a_stream_kills_the_process(connector, fake_opencode, monkeypatch):
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "sleep")
    before = connector.usage_snapshot()
    started = time.monotonic()
    with contextlib.closing(connector.stream_response("Say hi")) as stream:
        for chunk in stream:
            assert chunk == "Hello "  # arrives while the process is still running
            break
    assert time.monotonic() - started < 3.0
    run = runs(fake_opencode)[-1]
    assert reaped(run["pid"])
    assert gone(run["helper"])
    assert LLMConnector.usage_delta(before, connector.usage_snapshot())["total_calls"] == 1


def test_cancelling_the_task_kills_the_process(connector, fake_opencode, monkeypatch):
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "sleep")

    async def main() -> None:
        received: list[str] = []

        async def consume() -> None:
            async for chunk in connector.astream_response("Say hi", timeout=30):
                received.append(chunk)

        task = asyncio.create_task(consume())
        while not received:
            await asyncio.sleep(0.01)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert received == ["Hello "]

    asyncio.run(main())
    run = runs(fake_opencode)[-1]
    assert reaped(run["pid"])
    assert gone(run["helper"])


def test_nonzero_exit_reports_stderr_last_line_redacted(connector, fake_opencode, monkeypatch):
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "fail")
    with pytest.raises(ProviderError) as info:
        connector.generate_response("Say hi")
    message = str(info.value)
    assert "exited with status 1" in message
    assert "provider said no" in message
    assert "CANARY0123456789" not in message and "CANARY0123456789" not in repr(info.value)
    assert reaped(runs(fake_opencode)[-1]["pid"])


def test_error_event_is_a_provider_error(connector, monkeypatch):
    monkeypatch.setenv("FAKE_OPENCODE_MODE", "error_event")
    with pytest.raises(ProviderError, match="model big-pickle is not available"):
        connector.generate_response("Say hi")


def test_without_the_executable_opencode_uses_http(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no opencode here
    monkeypatch.delenv("OPENCODE_API_KEY", raising=False)
    with LLMConnector(ConfigManager(project_root=tmp_path)) as conn:
        conn.connect_to_model("opencode/big-pickle")
        assert conn.get_connection_status()["route"] == "http"


@pytest.mark.parametrize(
    "params", [{"max_tokens": 5}, {"temperature": 0.2}, {"stop": "END"}], ids=str
)
def test_parameters_the_cli_cannot_apply_are_refused(connector, fake_opencode, params):
    from rlm_code.core.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError, match="OPENCODE_API_KEY"):
        connector.generate_response("hello", **params)
    with pytest.raises(InvalidInputError):
        list(connector.stream_response("hello", **params))
    assert runs(fake_opencode) == []  # refused before the CLI was started


@pytest.mark.parametrize(
    "options",
    [
        {"tools": [{"name": "f"}]},
        {"response_format": {"type": "object"}},
        {"reasoning": "low"},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}
                    ],
                }
            ]
        },
    ],
    ids=["tools", "response_format", "reasoning", "images"],
)
def test_beyond_text_settings_the_cli_cannot_carry_are_refused(connector, fake_opencode, options):
    from rlm_code.core.exceptions import UnsupportedParameterError

    prompt = None if "messages" in options else "hello"
    with pytest.raises(UnsupportedParameterError, match="OPENCODE_API_KEY"):
        connector.complete(prompt, **options)
    with pytest.raises(UnsupportedParameterError):
        list(connector.stream(prompt, **options))
    assert runs(fake_opencode) == []  # refused before the CLI was started


@pytest.mark.parametrize("mode", ["generate", "agenerate", "stream", "astream"])
def test_a_line_over_the_limit_is_a_typed_error(connector, fake_opencode, monkeypatch, mode):
    """A 17 MiB output line (over the 16 MiB line limit): `ResponseFormatError`, not the raw
    `ValueError` asyncio's stream reader raises, and the process is reaped."""
    from rlm_code.core.exceptions import ResponseFormatError

    monkeypatch.setenv("FAKE_OPENCODE_MODE", "huge_line")
    with pytest.raises(ResponseFormatError, match="16 MiB"):
        if mode == "generate":
            connector.generate_response("Say hi", timeout=30)
        elif mode == "stream":
            list(connector.stream_response("Say hi", timeout=30))
        elif mode == "agenerate":
            asyncio.run(connector.agenerate_response("Say hi", timeout=30))
        else:

            async def consume() -> None:
                async for _ in connector.astream_response("Say hi", timeout=30):
                    pass

            asyncio.run(consume())
    assert reaped(runs(fake_opencode)[-1]["pid"])


def test_a_long_prompt_goes_through_stdin(connector, fake_opencode):
    """2 MiB, more than a command line takes (E2BIG), and more than a pipe buffers."""
    prompt = "word " * (400 * 1024)
    assert connector.generate_response(prompt) == "Hello world"
    run = runs(fake_opencode)[-1]
    assert run["stdin"] == prompt.strip() or run["stdin"] == prompt
    assert all(len(arg) < 100 for arg in run["argv"])
