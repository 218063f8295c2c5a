"""Provider-controlled text cannot drive the terminal (issue 10 item 8).

A reply, an error body, a model list or a discovery answer may carry escape sequences: window
titles (OSC 0), clipboard writes (OSC 52), screen clears (CSI 2J), C1 controls. Every command
writes them through the one sanitiser (`rlm_code.cli.sanitize`); `--json` stays JSON.
Servers are loopback servers started here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cli_process import run_cli
from test_discover_cmd import discover_env, fake_agent

from rlm_code.cli._output import format_table, json_text
from rlm_code.cli.sanitize import TerminalSanitizer, strip_controls
from rlm_code.testing import LocalProtocolServer, run_local_server

pytestmark = pytest.mark.timeout(60)

CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: write "evil" to the clipboard
TITLE = "\x1b]0;owned title\x1b\\"  # OSC 0 ended by ST; the space splits it across chunks
CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b31m"
HOSTILE = f"safe {CLIPBOARD}one {TITLE}two {CLEAR}three{C1_CSI} four\r\x07\x00"
CLEANED = "safe one two three four"
PAYLOADS = ("ZXZpbA", "owned", "[2J", "31m")


def assert_clean(text: str) -> None:
    for ch in text:
        assert ch in "\n\t" or not (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F), repr(text)
    for payload in PAYLOADS:
        assert payload not in text, (payload, text)


# -- the sanitiser ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a\x1b[2Jb", "ab"),
        ("a\x1b[38;5;196mb\x1b[0m", "ab"),
        (f"x{CLIPBOARD}y", "xy"),
        ("x\x1b]0;title\x1b\\y", "xy"),
        ("x\x9d0;title\x9cy", "xy"),  # C1 OSC ... C1 ST
        ("x\x1bP1$r\x1b\\y", "xy"),  # DCS
        ("x\x1b_apc\x07y", "xy"),  # APC
        ("e\x1b(Bf", "ef"),  # ESC with an intermediate byte
        ("e\x1bcf", "ef"),  # RIS: reset the terminal
        ("t\x9b31mu", "tu"),  # C1 CSI
        ("a\rb\x08c\x0bd\x0ce\x7ff\x85g", "abcdefg"),
        ("keep\ttabs\nand newlines", "keep\ttabs\nand newlines"),
        ("ünïcødé ✓ 日本", "ünïcødé ✓ 日本"),
        ("cut at the end\x1b", "cut at the end"),
        ("unterminated \x1b]52;c;ZXZpbA==", "unterminated "),
        ("half a csi \x1b[31", "half a csi "),
    ],
)
def test_strip_controls(raw: str, clean: str) -> None:
    assert strip_controls(raw) == clean


def test_a_sequence_split_at_any_point_is_still_removed() -> None:
    text = f"pre{CLIPBOARD}mid\x1b[31mred\x1b[0m{TITLE}post\x9b2J end"
    want = "premidredpost end"
    assert strip_controls(text) == want
    for i in range(len(text) + 1):
        for j in range(i, len(text) + 1):
            sanitizer = TerminalSanitizer()
            pieces = [sanitizer.feed(part) for part in (text[:i], text[i:j], text[j:])]
            assert "".join(pieces) + sanitizer.flush() == want, (i, j)


def test_one_character_at_a_time() -> None:
    sanitizer = TerminalSanitizer()
    out = "".join(sanitizer.feed(ch) for ch in HOSTILE) + sanitizer.flush()
    assert out == strip_controls(HOSTILE)
    assert_clean(out)


def test_tables_filter_cells_but_keep_their_own_colour() -> None:
    text = format_table(("model",), [(f"gpt{CLIPBOARD}-4o",)], color=True)
    assert "gpt-4o" in text
    assert "ZXZpbA" not in text and "\x07" not in text
    assert "\x1b[1mmodel" in text  # our header style survives


def test_json_escapes_every_control_and_stays_the_same_json() -> None:
    data = {"text": HOSTILE + "\x9b\x7f"}
    text = json_text(data)
    assert not [ch for ch in text if ch != "\n" and (ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F)]
    assert json.loads(text) == data


# -- through the commands -----------------------------------------------------------------------


@pytest.fixture
def hostile_server() -> Iterator[LocalProtocolServer]:
    with run_local_server(models=["test-model"]) as server:
        server.set_reply("test-model", HOSTILE)
        yield server


@pytest.mark.parametrize("mode", [(), ("--no-stream",)], ids=["streamed", "no-stream"])
def test_ask_output_is_filtered(
    hostile_server: LocalProtocolServer, tmp_path: Path, mode: tuple[str, ...]
) -> None:
    env = {"VLLM_BASE_URL": hostile_server.openai_base_url}
    result = run_cli("ask", "-m", "vllm/test-model", *mode, "hi", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CLEANED + "\n"
    assert_clean(result.stderr)


def test_ask_json_keeps_the_exact_reply(
    hostile_server: LocalProtocolServer, tmp_path: Path
) -> None:
    env = {"VLLM_BASE_URL": hostile_server.openai_base_url}
    result = run_cli("ask", "-m", "vllm/test-model", "--json", "hi", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == HOSTILE
    assert "\x1b" not in result.stdout and "\x9b" not in result.stdout


class _HostileErrors(BaseHTTPRequestHandler):
    """Every request fails with 400 and an error message full of escape sequences."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"error": {"message": HOSTILE, "type": "invalid_request_error"}})
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body.encode())))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def error_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileErrors)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", [(), ("--no-stream",)], ids=["streamed", "no-stream"])
def test_provider_error_lines_are_filtered(
    error_server: str, tmp_path: Path, mode: tuple[str, ...]
) -> None:
    env = {"VLLM_BASE_URL": error_server}
    result = run_cli("ask", "-m", "vllm/test-model", *mode, "hi", cwd=tmp_path, env=env)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlm-code: "), result.stderr
    assert_clean(result.stderr)
    assert "safe one two three four" in result.stderr  # the message itself is still there


def test_models_live_output_is_filtered(tmp_path: Path) -> None:
    evil = f"evil{CLIPBOARD}-model{TITLE}"
    with run_local_server(models=[evil]) as server:
        env = {"VLLM_BASE_URL": server.openai_base_url}
        plain = run_cli("models", "vllm", "--live", cwd=tmp_path, env=env)
        as_json = run_cli("models", "vllm", "--live", "--json", cwd=tmp_path, env=env)
    assert plain.returncode == 0, plain.stderr
    assert "evil-model" in [line.split()[0] for line in plain.stdout.splitlines()]
    assert_clean(plain.stdout)
    assert as_json.returncode == 0, as_json.stderr
    assert evil in json.loads(as_json.stdout)["models"]
    assert "\x1b" not in as_json.stdout


def test_discover_output_is_filtered(tmp_path: Path) -> None:
    env = discover_env(tmp_path)
    fake_agent(tmp_path, "goose", f"goose{CLIPBOARD} 1.9.0{CLEAR}")
    result = run_cli("discover", "--acp-only", "--timeout", "2", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    goose = next(line for line in result.stdout.splitlines() if line.startswith("goose "))
    assert "goose 1.9.0" in goose
    assert_clean(result.stdout)
