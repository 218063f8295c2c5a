"""The shell's history file keeps no key, wherever the key stands in the line (issue 10 item 22).

Unit tests on `rlm_code.cli.shell.history`, then a real shell in a pty writing its history
file. Keys are fake (`xai-test-...`, `sk-test-...`); the only server is a loopback one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from shell_helpers import Session, shell_env

from rlm_code.cli.shell.history import (
    KEY_SHOWN_AS,
    looks_like_key,
    scrub_connect_line,
    scrub_history_line,
    scrub_url,
)
from rlm_code.core.redact import MASK, register_secret
from rlm_code.testing import LocalProtocolServer

pytestmark = pytest.mark.timeout(60)

XAI_KEY = "xai-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
PLAIN_KEY = "q8Zr2LmW0xYt5NvB7kPd3Hs9Jf"  # no prefix at all: only its shape gives it away
PASSWORD = "hunter2pass"


@pytest.mark.parametrize(
    "word",
    [XAI_KEY, PLAIN_KEY, "sk-test-shell0123456789SECRET", "gsk_" + "a1B2c3D4e5" * 5,
     "AIzaSyA-1234567890abcdefghijklmnopqrstu", "0123456789abcdef" * 3],
)  # fmt: skip
def test_key_shapes_are_recognised(word: str) -> None:
    assert looks_like_key(word)


@pytest.mark.parametrize(
    "word",
    ["gpt-4o", "claude-sonnet-4-5-20250929", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
     "qwen2.5-coder:7b", "Qwen2.5-Coder-32B-Instruct-GGUF", "gemini-2.0-flash-thinking-exp-01-21",
     "/connect", "hello", "internationalization", "deepseek-r1:14b", "-", "http://h/v1"],
)  # fmt: skip
def test_model_names_and_words_are_not_keys(word: str) -> None:
    assert not looks_like_key(word)


def test_a_registered_secret_is_a_key_whatever_its_shape() -> None:
    secret = "plainwords-but-registered"
    assert not looks_like_key(secret)
    register_secret(secret)
    assert looks_like_key(secret)
    assert secret not in scrub_history_line(f"my secret is {secret} ok")


@pytest.mark.parametrize(
    ("line", "stored"),
    [
        # the model forgotten: the key sits where the model goes
        (f"/connect xai {XAI_KEY}", "/connect xai"),
        (f"/connect xai {XAI_KEY} https://api.x.ai/v1", "/connect xai https://api.x.ai/v1"),
        (f"/connect xai/grok-3 {PLAIN_KEY}", "/connect xai/grok-3"),
        (f"/connect {PLAIN_KEY}", "/connect"),
        # a password in the base URL
        (
            f"/connect vllm m http://user:{PASSWORD}@gpu-box:8000/v1",
            f"/connect vllm m http://{MASK}@gpu-box:8000/v1",
        ),
        (
            f"/connect vllm m https://h/v1?key={PASSWORD}&x=1",
            f"/connect vllm m https://h/v1?key={MASK}&x=1",
        ),
        ("/connect vllm m - http://h/v1", "/connect vllm m - http://h/v1"),
    ],
)
def test_connect_lines(line: str, stored: str) -> None:
    assert scrub_connect_line(line) == stored
    assert scrub_history_line(line) == stored


@pytest.mark.parametrize(
    ("line", "stored"),
    [
        (f"use {XAI_KEY} please", f"use {MASK} please"),
        (f"  key={PLAIN_KEY}  ", f"  {MASK}  "),
        (f"see http://u:{PASSWORD}@h:1/v1 now", f"see http://{MASK}@h:1/v1 now"),
        ("/models xai", "/models xai"),
        ("what is gpt-4o?", "what is gpt-4o?"),
    ],
)
def test_keys_anywhere_in_other_lines(line: str, stored: str) -> None:
    assert scrub_history_line(line) == stored


def test_screen_copy_masks_with_stars() -> None:
    assert (
        scrub_history_line(f"/connect xai {XAI_KEY}", mask=True) == f"/connect xai {KEY_SHOWN_AS}"
    )
    shown = scrub_history_line(f"/connect vllm m http://u:{PASSWORD}@h/v1", mask=True)
    assert shown == f"/connect vllm m http://{KEY_SHOWN_AS}@h/v1"
    assert scrub_history_line(f"hi {PLAIN_KEY}", mask=True) == f"hi {KEY_SHOWN_AS}"


def test_scrub_url_keeps_what_is_not_a_credential() -> None:
    assert scrub_url("https://host:8443/v1/x?model=a#f") == "https://host:8443/v1/x?model=a#f"
    assert scrub_url(f"http://{PASSWORD}@host") == f"http://{MASK}@host"
    assert scrub_url(f"http://h/v1?token={PASSWORD}#frag") == f"http://h/v1?token={MASK}#frag"


# -- through a real shell -----------------------------------------------------------------------


def test_history_file_keeps_no_key(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    env = shell_env(
        tmp_path, VLLM_BASE_URL=fresh_server.openai_base_url, RLM_CODE_MODEL="vllm/test-model"
    )
    session = Session(tmp_path, env)
    sessions.append(session)
    session.prompt("vllm/test-model")
    url = fresh_server.openai_base_url.replace("http://", f"http://user:{PASSWORD}@")
    lines = [
        f"/connect xai {XAI_KEY}",  # the model forgotten: fails, but the line is remembered
        f"/connect openai-compatible test-model - {url}",
        f"my key is {PLAIN_KEY}, keep it safe",
    ]
    for line in lines:
        session.child.sendline(line)
        session.expect(r"(vllm|openai-compatible)/test-model> ")
    assert session.exit() == 0
    history = session.history_file.read_text()
    for secret in (XAI_KEY, PLAIN_KEY, PASSWORD):
        assert secret not in history, history
    stored = history.splitlines()
    assert "/connect xai" in stored
    assert f"my key is {MASK} keep it safe" in stored
    assert any(
        line.startswith("/connect openai-compatible test-model - http://") for line in stored
    )
