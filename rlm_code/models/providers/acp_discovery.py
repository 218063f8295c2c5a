"""Find ACP coding agents on this machine: installed, which version, signed in or not.

The Agent Client Protocol (https://agentclientprotocol.com) lets an editor or another tool
drive a coding agent over JSON-RPC on stdio. `ACP_AGENTS` is the data table of agents users
run locally, one row each, taken from the agents' own docs and the ACP registry
(https://github.com/agentclientprotocol/registry): the executables to look for on ``PATH``,
the arguments that start ACP, the env vars and login files that mean "configured", and where
to read more. Adding an agent is adding a row.

How a row is checked, and why:

- installed: any of its executables is on ``PATH`` (`shutil.which`). Some agents speak ACP
  themselves (``gemini --experimental-acp``, ``goose acp``); others need an adapter beside
  the CLI (Claude Code: ``claude-agent-acp``, Codex: ``codex-acp``). A CLI found without its
  adapter is installed but has no ``acp_command``, and ``detail`` says what to install.
- version: the first line of ``<exe> --version`` (or the row's flag). Every version process
  starts at once, in its own process group, with stdin closed; one that outlives the timeout
  is killed with its whole group and reaped (no zombie, no orphan holding a pipe), so the
  call returns in about one timeout even when a CLI hangs, prompts or self-updates.
- configured: one of the row's env vars has a value (env or the project's ``.env`` through
  `ConfigManager.get_env`), or one of its login files exists. ``~`` is the ``HOME`` env var,
  so tests (and sandboxes) can point it elsewhere. Values are never read or reported: only
  which variable or file matched. A login file is a good sign, not proof the token is valid.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlm_code.models.providers.local_discovery import check_timeout

if TYPE_CHECKING:
    import subprocess

    from rlm_code.core.config import ConfigManager

__all__ = [
    "ACP_AGENTS",
    "DEFAULT_TIMEOUT",
    "ACPAgentSpec",
    "AgentExecutable",
    "discover_acp_agents",
]

DEFAULT_TIMEOUT = 2.0
_REAP_TIMEOUT_S = 1.0  # after SIGKILL the kernel needs only moments; never wait longer
_MAX_VERSION_CHARS = 120
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


@dataclass(frozen=True)
class AgentExecutable:
    """One executable of an agent.

    `acp_args` are the arguments that make it speak ACP on stdio (``()`` for an adapter that
    does nothing else); None means this executable is not an ACP entry point (a CLI whose
    ACP side is a separate adapter). `version_args` print the version; None means there is no
    known flag, so the executable is never run.
    """

    name: str
    acp_args: tuple[str, ...] | None = None
    version_args: tuple[str, ...] | None = ("--version",)


@dataclass(frozen=True)
class ACPAgentSpec:
    """One ACP-capable coding agent: how to find it and how to tell it is signed in."""

    agent_id: str
    display_name: str
    executables: tuple[AgentExecutable, ...]
    env_vars: tuple[str, ...] = ()
    login_files: tuple[str, ...] = ()  # "~/..." paths; "~" is $HOME
    docs_url: str | None = None
    install_hint: str | None = None

    @property
    def acp_capable(self) -> tuple[AgentExecutable, ...]:
        return tuple(exe for exe in self.executables if exe.acp_args is not None)


_X = AgentExecutable

# fmt: off
ACP_AGENTS: tuple[ACPAgentSpec, ...] = (
    ACPAgentSpec(
        "gemini", "Gemini CLI",
        # newer releases also accept --acp; --experimental-acp works across versions
        (_X("gemini", acp_args=("--experimental-acp",)),),
        env_vars=("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        login_files=("~/.gemini/oauth_creds.json",),
        docs_url="https://github.com/google-gemini/gemini-cli",
        install_hint="npm install -g @google/gemini-cli",
    ),
    ACPAgentSpec(
        "claude-code", "Claude Code",
        (_X("claude"),
         _X("claude-agent-acp", acp_args=(), version_args=None),
         _X("claude-code-acp", acp_args=(), version_args=None)),  # the adapter's former name
        env_vars=("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"),
        login_files=("~/.claude/.credentials.json",),
        docs_url="https://github.com/agentclientprotocol/claude-agent-acp",
        install_hint="npm install -g @agentclientprotocol/claude-agent-acp",
    ),
    ACPAgentSpec(
        "codex", "Codex",
        (_X("codex"), _X("codex-acp", acp_args=(), version_args=None)),
        env_vars=("CODEX_API_KEY", "OPENAI_API_KEY"),
        login_files=("~/.codex/auth.json",),
        docs_url="https://github.com/agentclientprotocol/codex-acp",
        install_hint="npm install -g @zed-industries/codex-acp",
    ),
    ACPAgentSpec(
        "goose", "goose",
        (_X("goose", acp_args=("acp",)),),
        env_vars=("GOOSE_PROVIDER",),
        login_files=("~/.config/goose/config.yaml",),
        docs_url="https://block.github.io/goose/",
        install_hint="see https://block.github.io/goose/docs/getting-started/installation",
    ),
    ACPAgentSpec(
        "opencode", "OpenCode",
        (_X("opencode", acp_args=("acp",)),),
        env_vars=("OPENCODE_API_KEY",),
        login_files=("~/.local/share/opencode/auth.json",),
        docs_url="https://opencode.ai/docs/acp/",
        install_hint="npm install -g opencode-ai",
    ),
    ACPAgentSpec(
        "kimi", "Kimi CLI",
        (_X("kimi", acp_args=("acp",)),),
        env_vars=("KIMI_API_KEY",),
        login_files=("~/.kimi/credentials/kimi-code.json", "~/.kimi/config.toml"),
        docs_url="https://github.com/MoonshotAI/kimi-cli",
        install_hint="uv tool install kimi-cli",
    ),
    ACPAgentSpec(
        "junie", "JetBrains Junie",
        (_X("junie", acp_args=("--acp=true",)),),
        env_vars=("JUNIE_API_KEY",),
        docs_url="https://junie.jetbrains.com",
        install_hint="see https://github.com/JetBrains/junie-acp-release",
    ),
    ACPAgentSpec(
        "auggie", "Augment (Auggie CLI)",
        (_X("auggie", acp_args=("--acp",)),),
        env_vars=("AUGMENT_SESSION_AUTH",),
        login_files=("~/.augment/session.json",),
        docs_url="https://docs.augmentcode.com/cli/overview",
        install_hint="npm install -g @augmentcode/auggie",
    ),
    ACPAgentSpec(
        "qwen-code", "Qwen Code",
        (_X("qwen", acp_args=("--acp",)),),
        env_vars=("DASHSCOPE_API_KEY",),
        login_files=("~/.qwen/oauth_creds.json",),
        docs_url="https://github.com/QwenLM/qwen-code",
        install_hint="npm install -g @qwen-code/qwen-code",
    ),
    ACPAgentSpec(
        "mistral-vibe", "Mistral Vibe",
        (_X("vibe"), _X("vibe-acp", acp_args=(), version_args=None)),
        env_vars=("MISTRAL_API_KEY",),
        login_files=("~/.vibe/.env",),
        docs_url="https://github.com/mistralai/mistral-vibe",
        install_hint="uv tool install mistral-vibe",
    ),
    ACPAgentSpec(
        "github-copilot", "GitHub Copilot CLI",
        (_X("copilot", acp_args=("--acp",)),),
        env_vars=("COPILOT_GITHUB_TOKEN", "GH_TOKEN", "GITHUB_TOKEN"),
        docs_url="https://github.com/features/copilot/cli/",
        install_hint="npm install -g @github/copilot",
    ),
    ACPAgentSpec(
        "cursor", "Cursor Agent",
        (_X("cursor-agent", acp_args=("acp",)),),
        env_vars=("CURSOR_API_KEY",),
        docs_url="https://cursor.com/docs/cli/acp",
        install_hint="curl https://cursor.com/install -fsS | bash",
    ),
    ACPAgentSpec(
        "factory-droid", "Factory Droid",
        (_X("droid", acp_args=("exec", "--output-format", "acp")),),
        env_vars=("FACTORY_API_KEY",),
        docs_url="https://factory.ai/product/cli",
        install_hint="npm install -g droid",
    ),
)
# fmt: on


# -- version processes ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Version:
    version: str | None
    problem: str | None  # why there is no version, when there is none


def _first_line(data: bytes) -> str | None:
    text = _ANSI.sub("", data.decode("utf-8", errors="replace"))
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:_MAX_VERSION_CHARS]
    return None


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """Kill the process and everything it started (it leads its own process group)."""
    import contextlib
    import signal

    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        process.kill()


def _run_version(
    argv: list[str], deadline: float, env: Mapping[str, str], timeout: float
) -> _Version:
    """Run one version command until `deadline` (a `time.monotonic()` value); never raises."""
    import contextlib
    import subprocess

    shown = " ".join([Path(argv[0]).name, *argv[1:]])
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,  # an agent waiting for input gets EOF, not a hang
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(env),
            start_new_session=True,  # own process group: a timeout kills the whole tree
        )
    except OSError as exc:
        return _Version(None, f"`{shown}` could not start ({exc.strerror or exc})")
    budget = max(deadline - time.monotonic(), 0.0)
    try:
        out, err = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        _kill_group(process)
        try:
            process.communicate(timeout=_REAP_TIMEOUT_S)  # drains pipes and reaps the child
        except subprocess.TimeoutExpired:
            pass  # a grandchild escaped the group and holds the pipe; the child is reaped below
        finally:
            # SIGKILL cannot be ignored; only an unkillable (D-state) child would stay.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=_REAP_TIMEOUT_S)
        return _Version(None, f"`{shown}` did not finish within {timeout:g} s (killed)")
    if process.returncode != 0:
        return _Version(None, f"`{shown}` exited with status {process.returncode}")
    line = _first_line(out) or _first_line(err)
    if line is None:
        return _Version(None, f"`{shown}` printed nothing")
    return _Version(line, None)


# -- readiness --------------------------------------------------------------------------------


def _home(environ: Mapping[str, str]) -> Path | None:
    home = environ.get("HOME") or environ.get("USERPROFILE")
    if home:
        return Path(home)
    try:
        return Path.home()
    except RuntimeError:
        return None


def _configured_by(
    spec: ACPAgentSpec, environ: Mapping[str, str], config: ConfigManager | None
) -> str | None:
    """What says the agent is set up (an env var name or a login file), or None."""
    for name in spec.env_vars:
        value = config.get_env(name) if config is not None else environ.get(name)
        if value and value.strip():
            return f"${name}"
    home = _home(environ)
    for pattern in spec.login_files:
        if pattern.startswith("~/"):
            if home is None:
                continue
            path = home / pattern[2:]
        else:
            path = Path(pattern)
        if path.is_file():
            return pattern
    return None


def discover_acp_agents(
    timeout: float = DEFAULT_TIMEOUT, config_manager: ConfigManager | None = None
) -> list[dict[str, Any]]:
    """Check every agent of `ACP_AGENTS`; one dict per agent, in table order.

    Each dict has ``agent_id``, ``display_name``, ``installed`` (bool), ``command`` (full path
    of the agent's first executable found, or None), ``version`` (first line of its version
    output, or None), ``configured`` (bool), ``detail`` (what was found and what is missing),
    plus ``acp_command`` (argv that starts ACP on stdio, or None), ``configured_by`` (the env
    var name or login file that matched, never a value) and ``docs_url``.

    `PATH` and `HOME` come from `config_manager.environ` (the process environment without
    one). Returns in about `timeout` seconds however the version commands behave. Raises
    `InvalidInputError` for a timeout that is not a positive number of seconds.
    """
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    seconds = check_timeout(timeout)
    deadline = time.monotonic() + seconds
    environ: Mapping[str, str] = (
        config_manager.environ if config_manager is not None else dict(os.environ)
    )
    search_path = environ.get("PATH", os.defpath)
    child_env = {**environ, "NO_COLOR": "1"}

    found: list[dict[str, str]] = []  # per agent: executable name -> full path
    for spec in ACP_AGENTS:
        paths: dict[str, str] = {}
        for exe in spec.executables:
            where = shutil.which(exe.name, path=search_path)
            if where:
                paths[exe.name] = where
        found.append(paths)

    version_jobs: dict[int, list[str]] = {}
    for index, (spec, paths) in enumerate(zip(ACP_AGENTS, found, strict=True)):
        for exe in spec.executables:
            if exe.name in paths and exe.version_args is not None:
                version_jobs[index] = [paths[exe.name], *exe.version_args]
                break

    versions: dict[int, _Version] = {}
    if version_jobs:
        with ThreadPoolExecutor(
            max_workers=len(version_jobs), thread_name_prefix="rlm-acp-version"
        ) as pool:
            futures = {
                index: pool.submit(_run_version, argv, deadline, child_env, seconds)
                for index, argv in version_jobs.items()
            }
            versions = {index: future.result() for index, future in futures.items()}

    results: list[dict[str, Any]] = []
    for index, (spec, paths) in enumerate(zip(ACP_AGENTS, found, strict=True)):
        results.append(_agent_result(spec, paths, versions.get(index), environ, config_manager))
    return results


def _agent_result(
    spec: ACPAgentSpec,
    paths: dict[str, str],
    version: _Version | None,
    environ: Mapping[str, str],
    config: ConfigManager | None,
) -> dict[str, Any]:
    command = next((paths[exe.name] for exe in spec.executables if exe.name in paths), None)
    acp_exe = next((exe for exe in spec.acp_capable if exe.name in paths), None)
    acp_command = [paths[acp_exe.name], *(acp_exe.acp_args or ())] if acp_exe is not None else None
    configured_by = _configured_by(spec, environ, config)

    notes: list[str] = []
    if command is None:
        names = ", ".join(exe.name for exe in spec.executables)
        notes.append(f"not found on PATH (looked for: {names})")
        if spec.install_hint:
            notes.append(f"install: {spec.install_hint}")
    else:
        if acp_command is None:
            adapters = " or ".join(exe.name for exe in spec.acp_capable)
            notes.append(f"ACP adapter not found ({adapters})")
            if spec.install_hint:
                notes.append(f"install: {spec.install_hint}")
        else:
            notes.append("ACP: " + " ".join([Path(acp_command[0]).name, *acp_command[1:]]))
        if version is not None and version.problem:
            notes.append(version.problem)
        if configured_by:
            notes.append(f"configured via {configured_by}")
        else:
            hints = [f"${name}" for name in spec.env_vars] + list(spec.login_files)
            notes.append("not configured" + (f" (none of: {', '.join(hints)})" if hints else ""))

    return {
        "agent_id": spec.agent_id,
        "display_name": spec.display_name,
        "installed": command is not None,
        "command": command,
        "version": version.version if version is not None else None,
        "configured": configured_by is not None,
        "detail": "; ".join(notes),
        "acp_command": acp_command,
        "configured_by": configured_by,
        "docs_url": spec.docs_url,
    }
