"""OpenCode Zen through the local `opencode` command, for keyless use (route "cli").

OpenCode's free models can be used without an API key through the `opencode` CLI, which holds
its own session. The connector picks this adapter for provider `opencode` when no key and no
base URL are given and `opencode` is on PATH. Each call runs::

    opencode run --format json -m opencode/<model>

with the prompt on its standard input, never on the command line, where any user of the
machine could read it with `ps` (issue 10 item 21). The CLI takes one message, so the system
prompt and the earlier turns are folded into it: the system prompt first, then each turn
labelled `User:` / `Assistant:` (a lone prompt without system prompt or history is sent as
is). The CLI has no flags for `max_tokens`, `temperature` or `stop`, so a call that sets any
of them is refused with `InvalidInputError` rather than run without them (with
`OPENCODE_API_KEY` set, the HTTP route applies them).

Output is a JSON-lines event stream, read line by line as it arrives: `text` events carry the
reply in `part.text` (a `TextDelta` each); `step_finish` events may carry `part.tokens`
(`input`, `output`, `reasoning`, `cache.read`/`cache.write`), summed over the steps into our
buckets (OpenCode's `output` leaves reasoning out, so output is `output + reasoning`); without
them usage is unknown. A clean exit is the stream's end marker. An `error` event, or a
non-zero exit status, is a `ProviderError` (with the last line of stderr, redacted). Lines that
are not JSON objects (banners, warnings) are skipped; a line over 16 MiB is a typed
`ResponseFormatError` on both paths.

Errors cross one boundary (`CLIErrors`, see `_sdk.ErrorMapper`): a spawn failure, an
oversized line, a wait that timed out become typed errors with nothing chained.

Timeouts: `timeouts.read` (or the call's `timeout=`) bounds the wait for each next line and
for the exit after the last one; a call `timeout=` also bounds the whole call. The process
(its whole process group on POSIX, since the CLI starts helpers) is killed on a timeout, when
the caller stops a stream early, when an async task is cancelled, and on any error, and is
always waited for, so no zombie is left. Calls are not retried here: the CLI retries provider
errors itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from typing import IO, Any

from rlm_code.core.exceptions import (
    ModelError,
    ProviderConnectionError,
    ProviderError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._lines import loads, too_large
from rlm_code.models.adapters._sdk import ErrorMapper
from rlm_code.models.adapters._transport import call_deadline
from rlm_code.models.adapters.base import Adapter, Endpoint, as_count
from rlm_code.models.adapters.errors import Deadline, timed_out
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    Response,
    StreamEnd,
    TextDelta,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

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


class StepTally:
    """Token counts summed over the CLI's steps, and the last step's finish reason."""

    __slots__ = ("finish_reason", "usage")

    def __init__(self) -> None:
        self.usage = Usage()
        self.finish_reason: str | None = None

    def add(self, tokens: dict[str, Any]) -> None:
        cache = tokens.get("cache")
        cache = cache if isinstance(cache, dict) else {}
        output = as_count(tokens.get("output"))
        reasoning = as_count(tokens.get("reasoning"))
        if output is not None and reasoning:
            output += reasoning
        u = self.usage
        self.usage = Usage(
            _add(u.input_tokens, as_count(tokens.get("input"))),
            _add(u.output_tokens, output),
            _add(u.cache_read_tokens, as_count(cache.get("read"))),
            _add(u.cache_write_tokens, as_count(cache.get("write"))),
            _add(u.reasoning_tokens, reasoning),
        )


def parse_event(line: bytes, tally: StepTally, provider: str) -> list[AdapterEvent]:
    """One output line -> its events (text, or the usage so far after a step)."""
    stripped = line.strip()
    if not stripped.startswith(b"{"):
        return []  # not an event: a banner or warning line
    event = loads(stripped, provider)
    if not isinstance(event, dict):
        return []
    kind = event.get("type")
    part = event.get("part")
    part = part if isinstance(part, dict) else {}
    if kind == "text":
        text = part.get("text")
        if text is not None and not isinstance(text, str):
            raise ResponseFormatError(f"{provider} sent a non-text text event", provider=provider)
        return [TextDelta(text)] if text else []
    if kind == "step_finish":
        reason = part.get("reason")
        if isinstance(reason, str):
            tally.finish_reason = reason
        tokens = part.get("tokens")
        if isinstance(tokens, dict):
            tally.add(tokens)
            return [UsageReport(tally.usage)]
        return []
    if kind == "error":
        raise ProviderError(
            f"{provider} (opencode CLI) failed: {_error_message(event)}",
            provider=provider,
            hint="Run the same `opencode run` command in a terminal to see the details.",
        )
    return []


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


class _LineTooLong(Exception):
    """The reader thread met a line over `_LINE_LIMIT`."""


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | BaseException | None]) -> None:
    """Reader thread: every stdout line into the queue (a line over the limit as an error),
    then None at EOF."""
    try:
        while line := stream.readline(_LINE_LIMIT + 1):
            if len(line) > _LINE_LIMIT:
                lines.put(_LineTooLong())
                return
            lines.put(line)
    except (OSError, ValueError):  # the pipe was closed under us: the process was killed
        pass
    finally:
        lines.put(None)


def _feed(stdin: IO[bytes], data: bytes) -> None:
    """Writer thread: the prompt on stdin, then EOF (a child that exits early ends it)."""
    try:
        stdin.write(data)
    except (OSError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


class CLIErrors(ErrorMapper):
    """The CLI route's boundary: spawn failures, oversized lines and timed-out waits."""

    def __init__(self, provider: str, executable: str) -> None:
        self.provider = provider
        self.executable = executable
        self.catch = (
            OSError,
            ValueError,  # asyncio's StreamReader: a line over its limit
            _LineTooLong,
            TimeoutError,
            queue.Empty,
            subprocess.TimeoutExpired,
        )

    def map(self, exc: BaseException, model: str | None, seconds: float | None) -> ModelError:
        provider = self.provider
        if isinstance(exc, ValueError | _LineTooLong):
            return too_large(provider, "a line", _LINE_LIMIT)
        if isinstance(exc, TimeoutError | queue.Empty | subprocess.TimeoutExpired):
            return timed_out(provider, "answer in time", seconds, False)
        return ProviderConnectionError(
            f"cannot run {self.executable} ({type(exc).__name__})",
            provider=provider,
            hint="Check that the opencode command works in a terminal.",
            retryable=False,
        )


def _kill(pid: int, returncode: int | None) -> None:
    """Kill the CLI and the helpers it started (its process group on POSIX)."""
    if returncode is not None:
        return
    try:
        if _POSIX:
            os.killpg(pid, signal.SIGKILL)
        else:  # pragma: no cover - Windows
            os.kill(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        pass


class OpenCodeCLIAdapter(Adapter):
    """Runs `opencode run` per call; see the module docstring."""

    adapter_type = "opencode_cli"
    route = "cli"

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
        self._errors = CLIErrors(endpoint.provider_id, executable)

    def _argv(self, request: ChatRequest) -> list[str]:
        p = request.params
        unsupported = [
            name
            for name, value in (
                ("max_tokens", p.max_tokens),
                ("temperature", p.temperature),
                ("stop", p.stop),
                ("tools", request.tools or None),
                ("tool_choice", request.tool_choice),
                ("response_format", request.response_format),
                ("reasoning", request.reasoning),
                ("images", any(m.parts for m in request.messages) or None),
                ("tool turns", any(m.role == "tool" for m in request.messages) or None),
            )
            if value is not None
        ]
        if unsupported:
            raise UnsupportedParameterError(
                f"the opencode CLI cannot apply {', '.join(unsupported)}; drop them, or set "
                "OPENCODE_API_KEY to use the HTTP API, which can",
                provider=self.endpoint.provider_id,
            )
        model = request.model.removeprefix("opencode/")
        return [self._executable, "run", "--format", "json", "-m", f"opencode/{model}"]

    def _wait(self, request: ChatRequest, deadline: Deadline) -> float:
        """Seconds to wait for the next line or the exit: `read`, capped by the time left."""
        read = request.params.timeout or self.endpoint.timeouts.read
        left = deadline.remaining()
        return read if left is None else max(0.0, min(read, left))

    def _failed(self, code: int, stderr: IO[bytes]) -> ProviderError:
        last = _last_line(stderr)
        said = f": {last}" if last else ""
        return ProviderError(
            f"{self.endpoint.provider_id} (opencode CLI) exited with status {code}{said}",
            provider=self.endpoint.provider_id,
            hint="Run the same `opencode run` command in a terminal to see the details.",
        )

    def _end(self, code: int, stderr: IO[bytes], tally: StepTally) -> StreamEnd:
        if code != 0:
            raise self._failed(code, stderr)
        return StreamEnd(normalize_finish_reason(tally.finish_reason), tally.finish_reason)

    # -- sync ------------------------------------------------------------------------------

    def stream(self, request: ChatRequest) -> Iterator[AdapterEvent]:
        argv = self._argv(request)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        with tempfile.TemporaryFile() as stderr:
            with at:
                process = subprocess.Popen(
                    argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    start_new_session=_POSIX,
                )
            yield from self._follow(process, request, deadline, stderr)

    def _follow(
        self,
        process: subprocess.Popen[bytes],
        request: ChatRequest,
        deadline: Deadline,
        stderr: IO[bytes],
    ) -> Generator[AdapterEvent, None, None]:
        """Yield the events of `process`'s output; kill and reap it however this ends."""
        provider = self.endpoint.provider_id
        assert process.stdout is not None and process.stdin is not None
        at = self._errors.at(request.model, deadline)
        lines: queue.Queue[bytes | BaseException | None] = queue.Queue()
        threads = [
            threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True),
            threading.Thread(
                target=_feed, args=(process.stdin, fold_prompt(request).encode()), daemon=True
            ),
        ]
        for thread in threads:
            thread.start()
        tally = StepTally()
        try:
            while True:
                with at:
                    line = lines.get(timeout=self._wait(request, deadline))
                    if isinstance(line, BaseException):
                        raise line
                if line is None:
                    break
                yield from parse_event(line, tally, provider)
            with at:
                code = process.wait(timeout=self._wait(request, deadline))
            yield self._end(code, stderr, tally)
        finally:
            _kill(process.pid, process.poll())
            process.wait()
            process.stdout.close()
            for thread in threads:
                thread.join(timeout=1)

    def complete(self, request: ChatRequest) -> Response:
        return self._collect(request, list(self.stream(request)))

    def _collect(self, request: ChatRequest, events: list[AdapterEvent]) -> Response:
        text: list[str] = []
        usage = Usage()
        raw: str | None = None
        for event in events:
            if isinstance(event, TextDelta):
                text.append(event.text)
            elif isinstance(event, UsageReport):
                usage = usage.merged(event.usage)
            elif isinstance(event, StreamEnd):
                raw = event.raw
        return self.reply(request, "".join(text), usage, raw)

    # -- async -----------------------------------------------------------------------------

    async def astream(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        argv = self._argv(request)
        deadline = call_deadline(self.endpoint.provider_id, request.params.timeout)
        at = self._errors.at(request.model, deadline)
        with tempfile.TemporaryFile() as stderr:
            with at:
                process = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    start_new_session=_POSIX,
                    limit=_LINE_LIMIT,
                )
            feed = asyncio.create_task(self._afeed(process, fold_prompt(request).encode()))
            events = self._afollow(process, request, deadline, stderr)
            try:
                async for event in events:
                    yield event
            finally:
                # Also reached on task cancellation and on an early `aclose()`.
                _kill(process.pid, process.returncode)
                feed.cancel()
                await events.aclose()
                await asyncio.shield(process.wait())

    @staticmethod
    async def _afeed(process: asyncio.subprocess.Process, data: bytes) -> None:
        stdin = process.stdin
        assert stdin is not None
        try:
            stdin.write(data)
            await stdin.drain()
        except (OSError, ValueError):
            pass
        finally:
            stdin.close()

    async def _afollow(
        self,
        process: asyncio.subprocess.Process,
        request: ChatRequest,
        deadline: Deadline,
        stderr: IO[bytes],
    ) -> AsyncGenerator[AdapterEvent, None]:
        provider = self.endpoint.provider_id
        assert process.stdout is not None
        at = self._errors.at(request.model, deadline)
        tally = StepTally()
        while True:
            with at:
                async with asyncio.timeout(self._wait(request, deadline)):
                    line = await process.stdout.readline()
            if not line:
                break
            for event in parse_event(line, tally, provider):
                yield event
        with at:
            async with asyncio.timeout(self._wait(request, deadline)):
                code = await process.wait()
        yield self._end(code, stderr, tally)

    async def acomplete(self, request: ChatRequest) -> Response:
        events = self.astream(request)
        try:
            return self._collect(request, [event async for event in events])
        finally:
            await events.aclose()  # type: ignore[attr-defined]


__all__ = ["OpenCodeCLIAdapter", "StepTally", "fold_prompt", "parse_event"]
