"""`rlm-code serve-local` as a real subprocess: first line, URLs, signals, refusals."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

COMMAND = [sys.executable, "-m", "rlm_code", "serve-local"]


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start the command; return it with its first stdout line (which must come unprompted)."""
    process = subprocess.Popen(
        [*COMMAND, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline()


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serves_until_signal_then_exits_zero(stop_signal: signal.Signals) -> None:
    process, first = _start("--port", "0", "--model", "cli-extra-model")
    try:
        pattern = r"rlm-code local server listening on (http://127\.0\.0\.1:\d+)\n"
        match = re.fullmatch(pattern, first)
        assert match, first
        base_url = match.group(1)
        assert process.stdout is not None
        urls = [process.stdout.readline() for _ in range(6)]
        assert urls[0].split() == ["OpenAI:", base_url + "/v1"]
        assert urls[1].split() == ["Anthropic:", base_url]
        with urllib.request.urlopen(base_url + "/v1/models", timeout=5) as response:
            ids = [model["id"] for model in json.load(response)["data"]]
        assert "cli-extra-model" in ids
        process.send_signal(stop_signal)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert out.strip().splitlines()[-1] == "rlm-code local server stopped"
    assert "Traceback" not in err


def test_protocol_subset_and_required_key() -> None:
    process, first = _start("--protocols", "ollama,gemini", "--require-key", "cli-key")
    try:
        base_url = first.split()[-1]
        assert process.stdout is not None
        listed = [process.stdout.readline().split()[0] for _ in range(2)]
        assert listed == ["Gemini:", "Ollama:"]
        request = urllib.request.Request(
            base_url + "/api/chat",
            data=json.dumps({"model": "llama3.2", "messages": [], "stream": False}).encode(),
            headers={"Authorization": "Bearer cli-key"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["done"] is True
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base_url + "/api/tags", timeout=5)
        assert missing.value.code == 401
        with pytest.raises(urllib.error.HTTPError) as disabled:
            urllib.request.urlopen(base_url + "/v1/chat/completions", timeout=5)
        assert disabled.value.code in (404, 405)
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == "rlm-code local server stopped\n"


def test_remote_host_needs_allow_remote() -> None:
    result = subprocess.run(
        [*COMMAND, "--host", "0.0.0.0"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "--allow-remote" in result.stderr


def test_busy_port_is_a_one_line_network_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [*COMMAND, "--port", port], capture_output=True, text=True, timeout=30, check=False
        )
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("rlm-code serve-local: error: cannot listen")
    assert len(result.stderr.strip().splitlines()) == 1


def test_bad_protocol_is_a_usage_error() -> None:
    result = subprocess.run(
        [*COMMAND, "--protocols", "openai,bogus"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown protocol" in result.stderr


def test_help_describes_every_flag() -> None:
    result = subprocess.run(
        [*COMMAND, "--help"], capture_output=True, text=True, timeout=30, check=True
    )
    for flag in (
        "--host",
        "--port",
        "--protocols",
        "--require-key",
        "--latency-ms",
        "--model",
        "--allow-remote",
    ):
        assert flag in result.stdout
    assert "offline development and tests" in " ".join(result.stdout.split())
