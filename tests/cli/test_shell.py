"""The interactive shell (`rlm-code` with no command), driven for real in a pseudo-terminal.

Every test talks to the local protocol server (`rlm_code.testing`), never to a provider, with
fake keys only. The pty tests check what a user sees: prompts, streamed replies, one-line
errors, the picker, Ctrl-C and Ctrl-D; and what must never happen: a key on screen or in
the history file. The numbers `/usage` prints are checked against the server's own token
rule (`count_tokens`, `echo_reply`). A few pure functions (argument parsing, scrubbing,
key decoding, discovery normalisation) are tested directly.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from shell_helpers import (
    DOWN,
    END,
    ENTER,
    FRESH_LABEL,
    UP,
    Session,
    error_lines,
    plain,
    shell_env,
    usage_cost,
    usage_row,
)

from rlm_code.cli.shell import loop as shell_module
from rlm_code.cli.shell.connect import ConnectRequest, ConnectUsageError, parse_connect
from rlm_code.cli.shell.discovery import acp_agents, local_servers
from rlm_code.cli.shell.history import scrub_connect_line, scrub_history_line
from rlm_code.cli.shell.line_editor import Completer, config_dir
from rlm_code.cli.shell.names import INTERRUPTED_MARK
from rlm_code.cli.shell.picker import Choice, Terminal, pick, read_key
from rlm_code.cli.shell.startup import nothing_configured
from rlm_code.cli.shell.terminal import color_ok
from rlm_code.testing import LocalProtocolServer, count_tokens, echo_reply, run_local_server

pytestmark = pytest.mark.timeout(60)

FAKE_KEY = "sk-test-shell0123456789SECRET"
FAKE_DEEPSEEK_KEY = "sk-test-deepseek0123456789HIDDEN"
LONG_PROMPT = " ".join(f"word{i}" for i in range(40))  # ~41 chunks: ~8 s at 200 ms each
VLLM = "vllm/test-model"


def start(
    sessions: list[Session], tmp_path: Path, *args: str, **env: str
) -> tuple[Session, dict[str, str]]:
    environ = shell_env(tmp_path, **env)
    session = Session(tmp_path, environ, *args)
    sessions.append(session)
    return session, environ


def on_vllm(
    sessions: list[Session], tmp_path: Path, server: LocalProtocolServer, model: str = "test-model"
) -> Session:
    """A shell whose default connection is `vllm/<model>` on `server`."""
    session, _ = start(
        sessions,
        tmp_path,
        VLLM_BASE_URL=server.openai_base_url,
        RLM_CODE_MODEL=f"vllm/{model}",
    )
    session.prompt(f"vllm/{model}")
    return session


@pytest.fixture
def shell(sessions: list[Session], tmp_path: Path, local_server: LocalProtocolServer) -> Session:
    """A shell connected to `vllm/test-model` on the session's local server."""
    return on_vllm(sessions, tmp_path, local_server)


@pytest.fixture
def fresh_shell(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> Session:
    """A shell connected to `vllm/test-model` on this test's own server (`fresh_server`)."""
    return on_vllm(sessions, tmp_path, fresh_server)


def chat_requests(server: LocalProtocolServer) -> list[Any]:
    return [r.json for r in server.requests if r.path == "/v1/chat/completions"]


# -- starting, leaving ----------------------------------------------------------------------------


def test_fresh_machine_uses_the_builtin_server_with_the_note(
    sessions: list[Session], tmp_path: Path
) -> None:
    session, _ = start(sessions, tmp_path)
    banner = session.prompt(FRESH_LABEL)
    assert "no provider configured; using the built-in local server" in banner
    reply = session.run("hello there", FRESH_LABEL)
    assert "Echo: hello there" in reply
    assert session.exit() == 0


def test_ctrl_d_exits_0_and_ctrl_c_at_the_prompt_drops_the_line(
    fresh_shell: Session, fresh_server: LocalProtocolServer
) -> None:
    fresh_shell.send("never sent")
    fresh_shell.child.sendintr()
    fresh_shell.prompt(VLLM)  # a fresh prompt, the typed text dropped
    assert "Echo:" not in fresh_shell.run("/status", VLLM)
    fresh_shell.child.sendeof()
    assert fresh_shell.finish() == 0
    assert all("never sent" not in json.dumps(body) for body in chat_requests(fresh_server))


@pytest.mark.parametrize("command", ["/exit", "/quit"])
def test_exit_commands_exit_0(
    sessions: list[Session], tmp_path: Path, local_server: LocalProtocolServer, command: str
) -> None:
    session = on_vllm(sessions, tmp_path, local_server)
    session.child.sendline(command)
    assert session.finish() == 0


# -- connecting -----------------------------------------------------------------------------------


def test_connect_with_arguments(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    session, _ = start(sessions, tmp_path, VLLM_BASE_URL=fresh_server.openai_base_url)
    session.prompt(VLLM)  # nothing configured: the running server's first model (first_model)
    out = session.run("/connect vllm test-model", VLLM)
    assert f"connected to {VLLM} (vLLM at {fresh_server.openai_base_url})" in out
    assert "Echo: hi" in session.run("hi", VLLM)
    assert chat_requests(fresh_server)[-1]["model"] == "test-model"
    out = session.run("/connect vllm/llama3.2:latest", "vllm/llama3.2:latest")
    assert "connected to vllm/llama3.2:latest" in out


def test_connect_with_the_picker_arrow_keys_and_numbers(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    session = on_vllm(sessions, tmp_path, fresh_server, model="llama3.2:latest")
    session.child.sendline("/connect")
    session.wait_menu()  # mode: Local, BYOK, ACP
    session.send(DOWN + DOWN + DOWN + UP + DOWN + ENTER)  # wraps around to Local
    session.expect_exact("choose a mode: Local")
    session.wait_menu()  # providers
    session.send(session.number_of("vllm") + ENTER)
    session.expect_exact("choose a provider: vllm")
    session.wait_menu()  # models: the server's, the curated ones, "type a name..."
    session.send(END + ENTER)
    session.expect_exact("choose a model: type a name...")
    session.expect_exact("vllm model name: ")
    session.child.sendline("test-model")
    out = session.prompt(VLLM)
    assert f"connected to {VLLM}" in out
    assert "Echo: picked" in session.run("picked", VLLM)
    assert chat_requests(fresh_server)[-1]["model"] == "test-model"


def test_picker_can_be_cancelled_with_esc(shell: Session) -> None:
    shell.child.sendline("/connect")
    shell.wait_menu()
    shell.send("\x1b")
    out = shell.prompt(VLLM)
    assert "choose a mode: cancelled" in out
    assert "connected to" not in out


def test_picker_acp_mode_explains_and_does_not_connect(shell: Session) -> None:
    shell.child.sendline("/connect")
    shell.wait_menu()
    shell.send("3" + ENTER)
    shell.expect_exact("choose a mode: ACP")
    shell.expect_exact("launches them with their own CLI")
    shell.wait_menu()  # the agent table (installed or not)
    shell.send("1" + ENTER)
    out = shell.prompt(VLLM)
    assert "installed" in out
    assert "connected to" not in out
    assert "vllm/test-model" in shell.run("/status", VLLM)  # connection unchanged


def test_bad_provider_is_one_error_line(shell: Session) -> None:
    out = shell.run("/connect nope x", VLLM)
    errors = error_lines(out)
    assert len(errors) == 1, out
    assert errors[0].startswith("error: unknown provider 'nope'")
    assert "Traceback" not in out
    assert "provider    vLLM" in shell.run("/status", VLLM)  # still alive, still connected


def test_missing_key_names_the_env_var(shell: Session) -> None:
    out = shell.run("/connect anthropic claude-x", VLLM)
    errors = error_lines(out)
    assert len(errors) == 1, out
    assert "ANTHROPIC_API_KEY" in errors[0]
    assert "Traceback" not in out


def test_key_given_to_connect_is_never_shown_nor_saved(
    fresh_shell: Session, fresh_server: LocalProtocolServer
) -> None:
    url = fresh_server.openai_base_url
    line = f"/connect openai-compatible test-model {FAKE_KEY} {url}"
    out = fresh_shell.run(line, "openai-compatible/test-model")
    assert "connected to openai-compatible/test-model" in out
    assert "Echo: ok" in fresh_shell.run("ok", "openai-compatible/test-model")
    assert fresh_shell.exit() == 0
    # The server got the key, so it was used ...
    chats = [r for r in fresh_server.requests if r.path == "/v1/chat/completions"]
    assert chats[-1].headers["authorization"] == f"Bearer {FAKE_KEY}"
    # ... but the shell never printed it: the only occurrence is the terminal echoing the typing
    # (which the shell then overwrites on screen with a masked copy).
    output = fresh_shell.output
    first = output.index(FAKE_KEY)
    assert FAKE_KEY not in output[first + len(FAKE_KEY) :]
    assert f"/connect openai-compatible test-model ******** {url}" in output
    history = fresh_shell.history_file.read_text()
    assert FAKE_KEY not in history
    assert f"/connect openai-compatible test-model {url}" in history.splitlines()


def test_key_typed_in_the_picker_never_appears(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    session, _ = start(
        sessions,
        tmp_path,
        DEEPSEEK_BASE_URL=fresh_server.openai_base_url,
        VLLM_BASE_URL=fresh_server.openai_base_url,
        RLM_CODE_MODEL=VLLM,
    )
    session.prompt(VLLM)
    session.child.sendline("/connect")
    session.wait_menu()
    session.send("2" + ENTER)  # BYOK
    session.wait_menu()
    session.send(session.number_of("deepseek") + ENTER)
    session.wait_menu()
    session.send(session.number_of("deepseek-chat") + ENTER)
    session.expect_exact("DeepSeek API key (hidden")
    session.child.sendline(FAKE_DEEPSEEK_KEY)
    out = session.prompt("deepseek/deepseek-chat")
    assert "connected to deepseek/deepseek-chat" in out
    assert "Echo: secret?" in session.run("secret?", "deepseek/deepseek-chat")
    session.child.sendeof()
    assert session.finish() == 0
    chats = [r for r in fresh_server.requests if r.path == "/v1/chat/completions"]
    assert chats[-1].headers["authorization"] == f"Bearer {FAKE_DEEPSEEK_KEY}"
    assert FAKE_DEEPSEEK_KEY not in session.output  # not even echoed while typed
    assert FAKE_DEEPSEEK_KEY not in session.history_file.read_text()


# -- chatting -------------------------------------------------------------------------------------


def test_multi_turn_chat_sends_the_history(
    fresh_shell: Session, fresh_server: LocalProtocolServer
) -> None:
    assert "Echo: my name is Ada" in fresh_shell.run("my name is Ada", VLLM)
    assert "Echo: what is my name?" in fresh_shell.run("what is my name?", VLLM)
    first, second = chat_requests(fresh_server)
    assert first["stream"] is True
    assert first["messages"] == [{"role": "user", "content": "my name is Ada"}]
    assert second["messages"] == [
        {"role": "user", "content": "my name is Ada"},
        {"role": "assistant", "content": "Echo: my name is Ada"},
        {"role": "user", "content": "what is my name?"},
    ]


def test_system_prompt_and_clear(fresh_shell: Session, fresh_server: LocalProtocolServer) -> None:
    assert "no system prompt" in fresh_shell.run("/system", VLLM)
    fresh_shell.run("/system You are terse.", VLLM)
    assert "You are terse." in fresh_shell.run("/system", VLLM)
    fresh_shell.run("one", VLLM)
    assert "1 exchange forgotten" in fresh_shell.run("/clear", VLLM)
    fresh_shell.run("two", VLLM)
    last = chat_requests(fresh_server)[-1]["messages"]
    assert last == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "two"},
    ]


def test_usage_shows_the_connectors_numbers(fresh_shell: Session) -> None:
    assert "no calls yet" in fresh_shell.run("/usage", VLLM)
    turns = ["hello there", "how are you today"]
    history: list[str] = []
    expected_prompt = expected_completion = 0
    for text in turns:
        fresh_shell.run(text, VLLM)
        reply = echo_reply(text)
        expected_prompt += sum(count_tokens(t) for t in [*history, text])
        expected_completion += count_tokens(reply)
        history += [text, reply]
    table = fresh_shell.run("/usage", VLLM)
    total = expected_prompt + expected_completion
    expected = [len(turns), expected_prompt, expected_completion, total, 0]
    assert usage_row(table, VLLM) == expected
    assert usage_row(table, "total") == expected
    assert usage_cost(table, VLLM) == usage_cost(table, "total") == "$0.0000"  # a local server


def test_ctrl_c_stops_a_streamed_reply_and_keeps_the_part_shown(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    drip = "vllm/fault-drip"  # the server pauses 200 ms between chunks
    session = on_vllm(sessions, tmp_path, fresh_server, model="fault-drip")
    session.child.sendline(LONG_PROMPT)
    session.expect_exact("Echo: word0 word1")  # streaming: the start shows before the end
    session.child.sendintr()
    out = session.prompt(drip, timeout=3.0)  # far sooner than the ~8 s the reply would take
    assert "reply interrupted" in out
    assert "word39" not in out
    table = session.run("/usage", drip)
    calls, prompt, completion, total, unknown = usage_row(table, drip)
    assert (calls, unknown) == (1, 1)  # counted, with usage unknown (the stream was cut)
    assert (prompt, completion, total) == (0, 0, 0)
    session.child.sendline("/connect vllm test-model")
    session.prompt(VLLM)
    session.run("and now?", VLLM)
    messages = chat_requests(fresh_server)[-1]["messages"]
    assert messages[0] == {"role": "user", "content": LONG_PROMPT}
    partial = messages[1]["content"]
    assert messages[1]["role"] == "assistant"
    assert partial.startswith("Echo: word0 word1")
    assert partial.endswith(INTERRUPTED_MARK)
    assert messages[2] == {"role": "user", "content": "and now?"}


def test_server_dying_mid_stream_is_one_error_line(sessions: list[Session], tmp_path: Path) -> None:
    with run_local_server() as doomed:
        session = on_vllm(sessions, tmp_path, doomed, model="fault-drip")
        session.child.sendline(LONG_PROMPT)
        session.expect_exact("Echo: word0")
        doomed.stop()
        out = session.prompt("vllm/fault-drip", timeout=10.0)
    errors = error_lines(out)
    assert len(errors) == 1, out
    assert "Traceback" not in out
    assert "vllm" in errors[0]
    status = session.run("/status", "vllm/fault-drip")  # the shell goes on
    assert "conversation: 0 exchanges" in status  # a failed turn is not kept
    assert session.exit() == 0


# -- commands, completion, history -----------------------------------------------------------------


def test_listing_commands_run(shell: Session) -> None:
    assert "/connect" in shell.run("/help", VLLM)
    providers = shell.run("/providers", VLLM)
    assert "anthropic" in providers
    assert "no: set ANTHROPIC_API_KEY" in providers
    assert "test-model  (connected)" in shell.run("/models", VLLM)
    assert "claude-opus-4-6" in shell.run("/models claude", VLLM)
    assert "vllm" in shell.run("/models local", VLLM)
    assert "anthropic" in shell.run("/models cloud", VLLM)
    assert "ACP" in shell.run("/discover", VLLM, timeout=20.0)
    out = shell.run("/modles", VLLM)
    assert error_lines(out) == [
        "error: unknown command /modles; did you mean /models? /help lists the commands"
    ]
    assert "disconnected from vllm/test-model" in shell.run("/disconnect", "not connected")
    out = shell.run("hello?", "not connected")
    assert error_lines(out)[0].startswith("error: not connected")


def test_tab_completes_commands_and_providers(shell: Session) -> None:
    # readline writes only the characters it adds, so check what the completed line does.
    shell.send("/usa\t" + ENTER)
    assert "no calls yet" in shell.prompt(VLLM)
    shell.send("/models anthr\t" + ENTER)
    assert "claude-opus-4-6" in shell.prompt(VLLM)
    shell.send("/connect vll\t Qwen/Qwen2.5-Coder-7\t" + ENTER)
    qwen = "vllm/Qwen/Qwen2.5-Coder-7B-Instruct"
    assert f"connected to {qwen}" in shell.prompt(qwen)
    assert shell.exit() == 0


def test_history_is_kept_across_sessions(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    first = on_vllm(sessions, tmp_path, fresh_server)
    first.run("remember me", VLLM)
    first.run(" not me", VLLM)  # a leading space keeps a line out of the history
    assert first.exit() == 0
    lines = first.history_file.read_text().splitlines()
    assert lines == ["remember me", "/exit"]
    assert oct(first.history_file.stat().st_mode & 0o777) == "0o600"
    second = on_vllm(sessions, tmp_path, fresh_server)
    second.send(UP + UP + ENTER)  # recall "remember me"
    second.prompt(VLLM)
    assert chat_requests(fresh_server)[-1]["messages"] == [
        {"role": "user", "content": "remember me"}
    ]


# -- without a terminal ---------------------------------------------------------------------------


def test_piped_input_runs_without_prompts(
    tmp_path: Path, local_server: LocalProtocolServer
) -> None:
    env = shell_env(tmp_path, VLLM_BASE_URL=local_server.openai_base_url, RLM_CODE_MODEL=VLLM)
    result = subprocess.run(
        [sys.executable, "-m", "rlm_code"],
        input="hello pipe\n/usage\n/connect\n9\nq\n/connect nope x\n",
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "Echo: hello pipe" in result.stdout
    assert usage_row(result.stdout, VLLM)[0] == 1
    assert "1. Local" in result.stdout  # the numbered picker
    assert "error: type a number from 1 to 3" in result.stdout
    assert "choose a mode: cancelled" in result.stdout
    assert "> " not in result.stdout  # no prompts on a pipe
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and errors[0].startswith("error: unknown provider 'nope'")


def test_empty_stdin_exits_0_quickly(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rlm_code"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=shell_env(tmp_path),
        cwd=tmp_path,
        timeout=30,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# -- pure parts -----------------------------------------------------------------------------------


def test_history_dir_is_the_config_managers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlm_code.core.config import ConfigManager

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for environ in (
        {"RLM_CODE_CONFIG_DIR": str(tmp_path / "a")},
        {"RLM_CODE_CONFIG_DIR": "~/b", "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
        {"XDG_CONFIG_HOME": str(tmp_path / "xdg")},
        {},
    ):
        expected = ConfigManager(environ=environ).user_config_dir
        assert Path(config_dir(environ)) == expected


def test_nothing_configured_agrees_with_the_config_manager(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rlm_code.core.config import ConfigManager

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RLM_CODE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.delenv("RLM_CODE_MODEL", raising=False)
    assert nothing_configured()
    assert ConfigManager().default_model is None
    (tmp_path / ".env").write_text("RLM_CODE_MODEL=ollama/llama3.2\n")
    assert not nothing_configured()
    assert ConfigManager().default_model == "ollama/llama3.2"
    (tmp_path / ".env").unlink()
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text("default_model: vllm/x\n")
    assert not nothing_configured()
    (tmp_path / "config" / "config.yaml").unlink()
    (tmp_path / "rlm_config.yaml").write_text("default_model: vllm/y\n")
    assert not nothing_configured()
    (tmp_path / "rlm_config.yaml").unlink()
    monkeypatch.setenv("RLM_CODE_MODEL", "vllm/z")
    assert not nothing_configured()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], None),
        (["vllm"], ConnectRequest(None, "vllm")),
        (["vllm/m"], ConnectRequest("vllm/m")),
        (["vllm", "m"], ConnectRequest("m", "vllm")),
        (["openai", "gpt-4o", "sk-x"], ConnectRequest("gpt-4o", "openai", "sk-x")),
        (
            ["openai", "gpt-4o", "sk-x", "http://h/v1"],
            ConnectRequest("gpt-4o", "openai", "sk-x", "http://h/v1"),
        ),
        (["vllm", "m", "http://h/v1"], ConnectRequest("m", "vllm", None, "http://h/v1")),
        (["vllm", "m", "-", "http://h/v1"], ConnectRequest("m", "vllm", None, "http://h/v1")),
        (["openai/gpt-4o", "sk-x"], ConnectRequest("openai/gpt-4o", None, "sk-x")),
    ],
)
def test_parse_connect(args: list[str], expected: ConnectRequest | None) -> None:
    assert parse_connect(args) == expected


def test_parse_connect_rejects_too_many_arguments() -> None:
    with pytest.raises(ConnectUsageError, match="too many arguments"):
        parse_connect(["openai", "gpt-4o", "sk-a", "sk-b"])


@pytest.mark.parametrize(
    ("line", "scrubbed"),
    [
        ("/connect openai gpt-4o sk-abc", "/connect openai gpt-4o"),
        ("/connect openai gpt-4o sk-abc http://h/v1", "/connect openai gpt-4o http://h/v1"),
        ("/connect openai/gpt-4o sk-abc", "/connect openai/gpt-4o"),
        ("/connect vllm m - http://h/v1", "/connect vllm m - http://h/v1"),
        ("/connect a b c d e", "/connect a b"),
        ("/connect", "/connect"),
        ("hello", "hello"),
    ],
)
def test_scrub_connect_line(line: str, scrubbed: str) -> None:
    assert scrub_connect_line(line) == scrubbed


def test_history_line_masks_key_shapes_anywhere() -> None:
    assert FAKE_KEY not in (scrub_history_line(f"my key is {FAKE_KEY}") or "")
    shown = scrub_history_line(f"/connect openai gpt-4o {FAKE_KEY}", mask=True)
    assert shown == "/connect openai gpt-4o ********"


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (b"\x1b[A", "up"),
        (b"\x1bOB", "down"),
        (b"\x1b[F", "end"),
        (b"\x1b[5~", "pgup"),
        (b"\x1b", "cancel"),
        (b"\r", "enter"),
        (b"7", "7"),
        (b"q", "cancel"),
        (b"x", "other"),
    ],
)
def test_read_key(data: bytes, key: str) -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.write(write_fd, data)
        assert read_key(read_fd) == key
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_numbered_picker_accepts_numbers_and_labels() -> None:
    answers = iter(["9", "beta"])
    out = io.StringIO()
    term = Terminal(out, lambda prompt: next(answers), lambda prompt: None, interactive=False)
    choices = [Choice("alpha", 1), Choice("beta", 2, "the second")]
    chosen = pick("Pick one", choices, term)
    assert chosen is not None and chosen.value == 2
    assert "2. beta   the second" in out.getvalue()
    assert "error: type a number from 1 to 2" in out.getvalue()


class _Broken:
    """A connector whose discovery fails: the shell must treat that as "no discovery"."""

    def discover_local_providers(self, timeout: float) -> list[dict[str, Any]]:
        raise ModuleNotFoundError("rlm_code.models.providers.local_discovery")

    def discover_acp_agents(self, timeout: float) -> list[dict[str, Any]]:
        raise TimeoutError("slow")


class _Found:
    def discover_local_providers(self, timeout: float) -> list[dict[str, Any]]:
        return [
            {
                "provider_id": "llama-cpp",
                "base_url": "http://localhost:8080/v1",
                "healthy": True,
                "models": ["qwen"],
                "candidates": ["llama-cpp", "mlx", "tgi"],
            },
            {"provider_id": "ollama", "base_url": "http://localhost:11434", "healthy": False},
            "garbage",
        ]

    def discover_acp_agents(self, timeout: float) -> list[dict[str, Any]]:
        return [
            {
                "agent_id": "goose",
                "display_name": "goose",
                "installed": True,
                "configured": False,
                "acp_command": ["goose", "acp"],
                "detail": "found goose",
            }
        ]


def test_discovery_failures_mean_no_discovery() -> None:
    assert local_servers(_Broken(), 0.1) is None  # type: ignore[arg-type]
    assert acp_agents(_Broken(), 0.1) is None  # type: ignore[arg-type]


def test_discovery_results_are_normalised() -> None:
    servers = local_servers(_Found(), 0.1)  # type: ignore[arg-type]
    assert servers is not None
    assert servers["llama-cpp"].running and servers["llama-cpp"].models == ("qwen",)
    assert not servers["mlx"].running and servers["mlx"].answered_as == "llama-cpp"
    assert not servers["ollama"].running
    agents = acp_agents(_Found(), 0.1)  # type: ignore[arg-type]
    assert agents is not None
    assert agents[0].command == "goose acp" and agents[0].installed and not agents[0].configured


def test_completer_candidates() -> None:
    completer = Completer(
        ["/connect", "/clear", "/models"],
        lambda: ["vllm", "openai", "gpt"],
        lambda provider: ["gpt-4o", "gpt-4o-mini"] if provider == "openai" else [],
    )
    assert sorted(completer.candidates("", "/c")) == ["/clear", "/connect"]
    assert completer.candidates("/connect ", "op") == ["openai", "openai/"]
    assert completer.candidates("/connect ", "openai/gpt-4o-") == ["openai/gpt-4o-mini"]
    assert completer.candidates("/connect openai ", "gpt") == ["gpt-4o", "gpt-4o-mini"]
    assert completer.candidates("/models ", "lo") == ["local"]
    assert completer.candidates("hello ", "wor") == []


def test_unexpected_errors_are_one_line_and_debug_adds_the_traceback() -> None:
    out, err = io.StringIO(), io.StringIO()
    quiet = shell_module.Shell(stdin=io.StringIO(), stdout=out, stderr=err)
    quiet.report(ValueError("boom"))
    assert err.getvalue().count("\n") == 1
    assert err.getvalue().startswith("error: unexpected ValueError: boom.")
    err = io.StringIO()
    loud = shell_module.Shell(stdin=io.StringIO(), stdout=out, stderr=err, debug=True)
    try:
        raise ValueError(f"boom {FAKE_KEY}")
    except ValueError as exc:
        loud.report(exc)
    assert "Traceback" in err.getvalue()
    assert FAKE_KEY not in err.getvalue()


def test_colour_only_on_a_terminal_without_no_color(
    sessions: list[Session], tmp_path: Path, local_server: LocalProtocolServer
) -> None:
    session, _ = start(
        sessions,
        tmp_path,
        NO_COLOR="",
        VLLM_BASE_URL=local_server.openai_base_url,
        RLM_CODE_MODEL=VLLM,
    )
    coloured_prompt = "\x1b[1;36mvllm/test-model\x1b[0m> "
    session.expect_exact(coloured_prompt)
    session.child.sendline("/nope")
    session.expect_exact(coloured_prompt)
    raw = session.log.getvalue()
    assert "\x1b[31merror: unknown command /nope" in raw
    assert not color_ok(io.StringIO())  # not a terminal


def test_replies_cannot_drive_the_terminal(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    fresh_server.set_reply("test-model", "safe\x1b]0;owned\x07 \x1b[2Jtext\r")
    session = on_vllm(sessions, tmp_path, fresh_server)
    session.run("hi", VLLM)
    session.run("again", VLLM)
    raw = session.log.getvalue()
    # Whole sequences go (the one sanitiser, `rlm_code.cli.sanitize`), not just their ESC.
    assert "safe text\r\n" in raw
    assert "owned" not in raw and "[2J" not in raw
    assert "\x1b]0;" not in raw and "\x1b[2J" not in raw
    # The model still gets its own words back, unchanged.
    assert chat_requests(fresh_server)[-1]["messages"][1]["content"].startswith("safe\x1b]0;")


def test_a_default_model_that_cannot_connect_is_reported_once(
    sessions: list[Session], tmp_path: Path
) -> None:
    session, _ = start(sessions, tmp_path, RLM_CODE_MODEL="nope/some-model")
    session.prompt("nope/some-model")  # the prompt shows the target while it connects
    out = ""
    for _ in range(100):  # empty lines until the attempt is over (it runs in the background)
        session.child.sendline("")
        found = session.child.expect_exact(["not connected> ", "nope/some-model> "], timeout=15)
        out += plain(session.child.before)
        if found == 0:
            break
        time.sleep(0.05)
    errors = error_lines(out)
    assert len(errors) == 1, out
    assert errors[0].startswith("error: could not connect to nope/some-model: unknown provider")
    assert "use /connect" in out
    assert error_lines(session.run("", "not connected")) == []  # said once, not at every prompt
