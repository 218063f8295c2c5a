"""OpenCode Zen through the local `opencode` command, for keyless use.

OpenCode's free models can be used without an API key through the `opencode` CLI, which holds
its own session. The connector picks this adapter for provider `opencode` when no key and no
base URL are given and `opencode` is on PATH. Each call runs::

    opencode run --format json -m opencode/<model> -- <prompt text>

The CLI takes one message, so the system prompt and the earlier turns are folded into it:
the system prompt first, then each turn labelled `User:` / `Assistant:` (a lone prompt without
system prompt or history is sent as is). The CLI has no flags for `max_tokens`,
`temperature` or `stop`, so a call that sets any of them is refused with `InvalidInputError`
rather than run without them (with `OPENCODE_API_KEY` set, the HTTP route applies them).

Output is a JSON-lines event stream, read line by line as it arrives: `text` events carry the
reply in `part.text`; `step_finish` events may carry `part.tokens` (`input`, `output`, plus
`reasoning` and `cache.read`/`cache.write`, counted as in the other adapters: cache into the
prompt, reasoning into the completion), summed over the steps; without them usage is unknown.
An `error` event, or a non-zero exit status, is a `ProviderError` (with the last line of
stderr, redacted). Lines that are not JSON objects (banners, warnings) are skipped.

Timeouts: `timeouts.read` (or the call's `timeout=`) bounds the wait for each next line and
for the exit after the last one. The process (its whole process group on POSIX, since the CLI
starts helpers) is killed on a timeout, when the caller stops a stream early, when an async
task is cancelled, and on any error, and is always waited for, so no zombie is left. Calls are
not retried here: the CLI retries provider errors itself.
"""

from __future__ import annotations

import asyncio
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncGenerator, Generator
from typing import IO, Any

from rlm_code.core.exceptions import (
    InvalidInputError,
    ProviderConnectionError,
    ProviderError,
    ResponseFormatError,
)
from rlm_code.models.adapters._http import loads
from rlm_code.models.adapters.base import Adapter, Endpoint, as_count
from rlm_code.models.adapters.errors import timed_out
from rlm_code.models.types import ChatRequest, Completion, StreamState

EXECUTABLE = "opencode"
_LINE_LIMIT = 16 * 1024 * 1024  # one text event holds a whole reply
_POSIX = sys.platform != "win32"
_LABELS = {"user": "User", "assistant": "Assistant"}


def fold_prompt(request: ChatRequest) -> str:
    """The one message the CLI accepts: system prompt, then the labelled turns."""
    turns = request.messages
    if not request.system and len(turns) == 1:
        return turns[0].content
    parts = [f"System:\n{request.system}"] if request.system else []
    parts.extend(f"{_LABELS.get(m.role, m.role.title())}:\n{m.content}" for m in turns)
    return "\n\n".join(parts)


def _add(current: int | None, value: int | None) -> int | None:
    if value is None:
        return current
    return value if current is None else current + value


def parse_event(line: bytes, state: StreamState, provider: str) -> str | None:
    """One output line -> the reply text it carries (or None); usage goes to `state`."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):
        return None  # not an event: a banner or warning line
    event = loads(stripped, provider)
    if not isinstance(event, dict):
        return None
    kind = event.get("type")
    part = event.get("part")
    part = part if isinstance(part, dict) else {}
    if kind == "text":
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise ResponseFormatError(f"{provider} sent a non-text text event", provider=provider)
        return text or None
    if kind == "step_finish":
        tokens = part.get("tokens")
        if isinstance(tokens, dict):
            prompt = as_count(tokens.get("input"))
            output = as_count(tokens.get("output"))
            cache = tokens.get("cache")
            if prompt is not None and isinstance(cache, dict):
                prompt += sum(as_count(cache.get(k)) or 0 for k in ("read", "write"))
            reasoning = as_count(tokens.get("reasoning"))
            if output is not None and reasoning:
                output += reasoning
            state.prompt_tokens = _add(state.prompt_tokens, prompt)
            state.completion_tokens = _add(state.completion_tokens, output)
        reason = part.get("reason")
        if isinstance(reason, str):
            state.finish_reason = reason
        return None
    if kind == "error":
        raise ProviderError(
            f"{provider} (opencode CLI) failed: {_error_message(event)}",
            provider=provider,
            hint="Run the same `opencode run` command in a terminal to see the details.",
        )
    return None


def _error_message(event: dict[str, Any]) -> str:
    error = event.get("error", event.get("part"))
    if isinstance(error, dict):
        data = error.get("data")
        for source in (data, error):
            if isinstance(source, dict) and isinstance(source.get("message"), str):
                return str(source["message"])
        if isinstance(error.get("name"), str):
            return str(error["name"])
    if isinstance(error, str):
        return error
    return "unknown error"


def _last_line(stream: IO[bytes]) -> str:
    try:
        stream.seek(0)
        data = stream.read()
    except OSError:
        return ""
    lines = [ln.strip() for ln in data.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    """Reader thread: every stdout line into the queue, then None at EOF."""
    try:
        for line in stream:
            lines.put(line)
    except (OSError, ValueError):  # the pipe was closed under us: the process was killed
        pass
    finally:
        lines.put(None)


class OpenCodeCLIAdapter(Adapter):
    """Runs `opencode run` per call; see the module docstring."""

    adapter_type = "opencode_cli"

    def __init__(self, endpoint: Endpoint) -> None:
        super().__init__(endpoint)
        executable = shutil.which(EXECUTABLE)
        if executable is None:
            raise ProviderConnectionError(
                f"the `{EXECUTABLE}` command is not on PATH",
                provider=endpoint.provider_id,
                hint="Install OpenCode (https://opencode.ai) or set OPENCODE_API_KEY.",
                retryable=False,
            )
        self._executable = executable

    def _argv(self, request: ChatRequest) -> list[str]:
        p = request.params
        unsupported = [
            name
            for name, value in (
                ("max_tokens", p.max_tokens),
                ("temperature", p.temperature),
                ("stop", p.stop),
            )
            if value is not None
        ]
        if unsupported:
            raise InvalidInputError(
                f"the opencode CLI cannot apply {', '.join(unsupported)}; drop them, or set "
                "OPENCODE_API_KEY to use the HTTP API, which can",
                provider=self.endpoint.provider_id,
            )
        model = request.model.removeprefix("opencode/")
        # `--` ends the options, so a prompt starting with "-" is not taken for a flag.
        return [
            self._executable,
            "run",
            "--format",
            "json",
            "-m",
            f"opencode/{model}",
            "--",
            fold_prompt(request),
        ]

    def _read_timeout(self, request: ChatRequest) -> float:
        return request.params.timeout or self.endpoint.timeouts.read

    def _spawn_failed(self, exc: OSError) -> Exception:
        provider = self.endpoint.provider_id
        if getattr(exc, "errno", None) == 7:  # E2BIG: the prompt does not fit on a command line
            return InvalidInputError(
                "the prompt is too long for the opencode command line; shorten it or use "
                "OpenCode Zen over HTTP with OPENCODE_API_KEY",
                provider=provider,
            )
        return ProviderConnectionError(
            f"cannot run {self._executable} ({type(exc).__name__})",
            provider=provider,
            hint="Check that the opencode command works in a terminal.",
            retryable=False,
        )

    def _failed(self, code: int, stderr: IO[bytes]) -> ProviderError:
        last = _last_line(stderr)
        said = f": {last}" if last else ""
        return ProviderError(
            f"{self.endpoint.provider_id} (opencode CLI) exited with status {code}{said}",
            provider=self.endpoint.provider_id,
            hint="Run the same `opencode run` command in a terminal to see the details.",
        )

    def _timed_out(self, seconds: float) -> Exception:
        return timed_out(self.endpoint.provider_id, "answer in time", seconds, False)

    # -- sync ------------------------------------------------------------------------------

    @staticmethod
    def _kill(process: subprocess.Popen[bytes]) -> None:
        if process.poll() is not None:
            return
        try:
            if _POSIX:
                os.killpg(process.pid, signal.SIGKILL)
            else:  # pragma: no cover - Windows
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass

    def stream(self, request: ChatRequest, state: StreamState) -> Generator[str, None, None]:
        with tempfile.TemporaryFile() as stderr:
            try:
                process = subprocess.Popen(
                    self._argv(request),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    start_new_session=_POSIX,
                )
            except OSError as exc:
                raise self._spawn_failed(exc) from None
            yield from self._follow(process, request, state, stderr)

    def _follow(
        self,
        process: subprocess.Popen[bytes],
        request: ChatRequest,
        state: StreamState,
        stderr: IO[bytes],
    ) -> Generator[str, None, None]:
        """Yield the text of `process`'s events; kill and reap it however this ends."""
        provider = self.endpoint.provider_id
        read = self._read_timeout(request)
        assert process.stdout is not None
        lines: queue.Queue[bytes | None] = queue.Queue()
        reader = threading.Thread(
            target=_pump, args=(process.stdout, lines), name="opencode-stdout", daemon=True
        )
        reader.start()
        try:
            while True:
                try:
                    line = lines.get(timeout=read)
                except queue.Empty:
                    raise self._timed_out(read) from None
                if line is None:
                    break
                text = parse_event(line, state, provider)
                if text is not None:
                    state.chunks += 1
                    yield text
            try:
                code = process.wait(timeout=read)
            except subprocess.TimeoutExpired:
                raise self._timed_out(read) from None
            if code != 0:
                raise self._failed(code, stderr)
            state.completed = True
        finally:
            self._kill(process)
            process.wait()
            process.stdout.close()
            reader.join(timeout=1)

    def complete(self, request: ChatRequest) -> Completion:
        state = StreamState()
        text = "".join(self.stream(request, state))
        return Completion(text, state.usage(), state.finish_reason)

    # -- async -----------------------------------------------------------------------------

    @staticmethod
    def _akill(process: asyncio.subprocess.Process) -> None:
        if process.returncode is not None:
            return
        try:
            if _POSIX:
                os.killpg(process.pid, signal.SIGKILL)
            else:  # pragma: no cover - Windows
                process.kill()
        except (ProcessLookupError, PermissionError):
            pass

    async def astream(self, request: ChatRequest, state: StreamState) -> AsyncGenerator[str, None]:
        with tempfile.TemporaryFile() as stderr:
            try:
                process = await asyncio.create_subprocess_exec(
                    *self._argv(request),
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    start_new_session=_POSIX,
                    limit=_LINE_LIMIT,
                )
            except OSError as exc:
                raise self._spawn_failed(exc) from None
            events = self._afollow(process, request, state, stderr)
            try:
                async for text in events:
                    yield text
            finally:
                # Also reached on task cancellation and on an early `aclose()`.
                self._akill(process)
                await events.aclose()
                await asyncio.shield(process.wait())

    async def _afollow(
        self,
        process: asyncio.subprocess.Process,
        request: ChatRequest,
        state: StreamState,
        stderr: IO[bytes],
    ) -> AsyncGenerator[str, None]:
        provider = self.endpoint.provider_id
        read = self._read_timeout(request)
        assert process.stdout is not None
        while True:
            try:
                async with asyncio.timeout(read):
                    line = await process.stdout.readline()
            except TimeoutError:
                raise self._timed_out(read) from None
            if not line:
                break
            text = parse_event(line, state, provider)
            if text is not None:
                state.chunks += 1
                yield text
        try:
            async with asyncio.timeout(read):
                code = await process.wait()
        except TimeoutError:
            raise self._timed_out(read) from None
        if code != 0:
            raise self._failed(code, stderr)
        state.completed = True

    async def acomplete(self, request: ChatRequest) -> Completion:
        state = StreamState()
        chunks = self.astream(request, state)
        try:
            text = "".join([chunk async for chunk in chunks])
        finally:
            await chunks.aclose()
        return Completion(text, state.usage(), state.finish_reason)


__all__ = ["OpenCodeCLIAdapter", "fold_prompt", "parse_event"]
