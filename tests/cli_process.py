"""Run the real `rlm-code` command in a subprocess, for the CLI tests of every folder.

One place decides how a test starts the CLI: `python -m rlm_code` (the checkout, not whatever
`rlm-code` is on PATH), in the test's own directory, with its own config dir `cwd/config` (so
no test sees another's settings or keys), captured as text, and always with a timeout. The
base environment is the session's isolated one (`tests/conftest.py`) without a default model:
a test that wants one says so. Importable from every test folder because pytest puts `tests/`
on `sys.path` for `tests/conftest.py`.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

TIMEOUT_S = 60
COMMAND = (sys.executable, "-m", "rlm_code")


def cli_env(
    cwd: Path, env: Mapping[str, str] | None = None, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """`base` (default: this process's environment) without `RLM_CODE_MODEL`, the config dir
    `cwd/config`, then the test's own variables `env`."""
    merged = dict(os.environ if base is None else base)
    merged.pop("RLM_CODE_MODEL", None)
    merged["RLM_CODE_CONFIG_DIR"] = str(cwd / "config")
    merged.update(env or {})
    return merged


def run_cli(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    base: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`rlm-code *args` run to the end; never raises on the exit code (tests check it)."""
    return subprocess.run(
        [*COMMAND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=cli_env(cwd, env, base),
        cwd=cwd,
        check=False,
    )


def run_python(source: str) -> str:
    """Run `source` in a fresh interpreter (a clean `sys.modules`); returns its stdout. The
    run must exit 0."""
    result = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def run_in_pty(
    *args: str, cwd: Path, env: Mapping[str, str], tty: str = "stdout"
) -> tuple[str, str]:
    """`rlm-code *args` with `tty` ("stdout" or "stderr") on a pseudo-terminal and the other
    stream piped; returns (terminal text, piped text). The run must exit 0."""
    master, slave = pty.openpty()
    on_tty = tty == "stdout"
    proc = subprocess.Popen(
        [*COMMAND, *args],
        stdin=subprocess.DEVNULL,
        stdout=slave if on_tty else subprocess.PIPE,
        stderr=subprocess.PIPE if on_tty else slave,
        cwd=cwd,
        env=dict(env),
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    piped = proc.stderr if on_tty else proc.stdout
    assert piped is not None
    other = piped.read().decode()
    piped.close()
    assert proc.wait(timeout=TIMEOUT_S) == 0, other
    return b"".join(chunks).decode(), other
