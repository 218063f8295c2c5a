"""Drive the real `rlm-code` shell in a pseudo-terminal (pexpect) for the shell tests.

Every session gets its own config dir (so its own history file) and working directory (so no
`.env` of the repository is read), `NO_COLOR=1` for plain text, and `TERM=xterm` so the
arrow-key picker is used. The terminal is wide, so readline never wraps a long line.
Every wait has an explicit timeout.
"""

from __future__ import annotations

import io
import os
import re
import sys
from pathlib import Path

import pexpect

WAIT_S = 15.0
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
FRESH_LABEL = "openai-compatible/rlm-code-local"

# Keys as a terminal sends them.
UP = "\x1b[A"
DOWN = "\x1b[B"
END = "\x1b[F"
ENTER = "\r"
ESC = "\x1b"


def plain(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return ANSI.sub("", text).replace("\r", "")


def shell_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The conftest's isolated environment, plus this test's config dir and terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLM_CODE_")}
    for name in ("FORCE_COLOR", "COLUMNS", "LINES"):
        env.pop(name, None)
    env.update(
        RLM_CODE_CONFIG_DIR=str(tmp_path / "config"),
        NO_COLOR="1",
        TERM="xterm",
    )
    env.update(extra)
    return env


class Session:
    """One shell in a pty: send lines, wait for prompts, read what it printed."""

    def __init__(self, tmp_path: Path, env: dict[str, str], *args: str) -> None:
        self.log = io.StringIO()
        self.history_file = Path(env["RLM_CODE_CONFIG_DIR"]) / "history"
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "rlm_code", *args],
            env=env,
            cwd=str(tmp_path),
            encoding="utf-8",
            codec_errors="replace",
            timeout=WAIT_S,
            dimensions=(40, 250),
        )
        self.child.logfile_read = self.log

    @property
    def output(self) -> str:
        """Everything the shell printed so far (and the terminal's echo of what was typed)."""
        return plain(self.log.getvalue())

    def expect(self, pattern: str, timeout: float = WAIT_S) -> str:
        """Wait for a regex; returns the text before it (plain)."""
        self.child.expect(pattern, timeout=timeout)
        return plain(self.child.before)

    def expect_exact(self, text: str, timeout: float = WAIT_S) -> str:
        self.child.expect_exact(text, timeout=timeout)
        return plain(self.child.before)

    def prompt(self, label: str, timeout: float = WAIT_S) -> str:
        """Wait for the prompt of `label` (`provider/model`); returns the output before it."""
        return self.expect_exact(f"{label}> ", timeout=timeout)

    def run(self, line: str, label: str, timeout: float = WAIT_S) -> str:
        """Send a line and return what was printed up to the next prompt (echo removed)."""
        self.child.sendline(line)
        text = self.prompt(label, timeout=timeout)
        lines = text.split("\n")
        if lines and lines[0].strip() == line.strip():
            lines = lines[1:]
        return "\n".join(lines)

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def wait_menu(self, timeout: float = WAIT_S) -> None:
        """Wait until an arrow-key menu is drawn (its hint line comes before the entries)."""
        self.expect_exact("Esc cancels", timeout=timeout)

    def number_of(self, label: str, timeout: float = WAIT_S) -> str:
        """The number of the menu entry `label` (read from the menu as drawn)."""
        self.child.expect(rf"(\d+)\. {re.escape(label)}\b", timeout=timeout)
        return str(self.child.match.group(1))

    def finish(self, timeout: float = WAIT_S) -> int:
        """Wait for the shell to exit; returns its exit status."""
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        status = self.child.exitstatus
        assert status is not None, f"killed by signal {self.child.signalstatus}"
        return int(status)

    def exit(self, timeout: float = WAIT_S) -> int:
        """Leave with `/exit`; returns the exit status."""
        self.child.sendline("/exit")
        return self.finish(timeout)

    def close(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def error_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("error:")]


def usage_row(text: str, name: str) -> list[int]:
    """The token numbers of one row of the /usage table (`name` is `provider/model` or
    `total`); the last cell, the cost, is `usage_cost`."""
    for line in text.split("\n"):
        cells = line.split()
        if cells and cells[0] == name:
            return [int(c) for c in cells[1:6]]
    raise AssertionError(f"no /usage row {name!r} in:\n{text}")


def usage_cost(text: str, name: str) -> str:
    """The cost cell of one row of the /usage table."""
    for line in text.split("\n"):
        cells = line.split()
        if cells and cells[0] == name:
            return cells[6]
    raise AssertionError(f"no /usage row {name!r} in:\n{text}")
