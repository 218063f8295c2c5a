"""What the beyond-text adapter suites share: one reply in each of the four call modes (streams
read to the end and checked against the `Response` they build), the strict local server, and the
tools and awkward data every suite sends.

One copy, so that the contract suite and the per-adapter suites mean the same thing by "the
same reply in every mode": a check added to `agreed` holds for every adapter at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import Any

import pytest

from rlm_code import Response
from rlm_code.models.adapters.http_adapter import StreamParser
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.types import ToolCall
from rlm_code.testing import LocalProtocolServer, ScriptedReply

from .conftest import Target, chat_requests

MODES = ("complete", "stream", "acomplete", "astream")
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQ"
    "AAAABJRU5ErkJggg=="
)
READ_FILE: dict[str, Any] = {
    "name": "read_file",
    "description": "Read a text file.",
    "parameters": {
        "type": "object",
        "properties": {"path": {"type": "string"}},
        "required": ["path"],
    },
}
EVALUATE: dict[str, Any] = {
    "name": "evaluate",
    "description": "Evaluate arithmetic.",
    "parameters": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
}
TOOLS = [READ_FILE, EVALUATE]
# Escaped quotes, a backslash, a newline and 2-, 3- and 4-byte UTF-8 characters in one path.
AWKWARD_PATH = 'dir/naïve "quoted" \\ file\n€ 🚀.txt'
ARGUMENTS = {"path": AWKWARD_PATH, "lines": [1, 2]}
REASONING = "The user wants → the file; I'll read it."
# Reasoning, text and two calls in one reply: every kind of event a stream carries.
REPLY = ScriptedReply(
    text="Let me read ünïcode first.",
    tool_calls=[("read_file", ARGUMENTS), ("evaluate", {"expression": "6 * 7"})],
    reasoning=REASONING,
)


def strict_server(**options: Any) -> Any:
    """A module-scoped `server` fixture: one strict local server (`options` passed on) shared
    by a module's tests, so each test needs no server start of its own."""

    @pytest.fixture(scope="module", name="server")
    def server() -> Iterator[LocalProtocolServer]:
        with LocalProtocolServer(strict=True, **options) as running:
            yield running

    return server


def call_with_events(
    connector: LLMConnector,
    mode: str,
    prompt: str | None = None,
    *,
    verbatim: bool = True,
    **options: Any,
) -> tuple[Response, list[Any]]:
    """One call in `mode`: its `Response` and the events a caller saw (none for whole calls).
    A stream is read to the end and its events checked against the `Response` (`agreed`, which
    `verbatim` is passed to), so every test that streams also tests that the events and the
    result tell the same story."""
    if mode == "complete":
        return connector.complete(prompt, **options), []
    if mode == "acomplete":
        return asyncio.run(connector.acomplete(prompt, **options)), []
    if mode == "stream":
        with connector.stream(prompt, **options) as stream:
            events = list(stream)
        return agreed(events, stream.response, verbatim), events

    async def collect() -> tuple[Response, list[Any]]:
        async with connector.astream(prompt, **options) as stream:
            events = [event async for event in stream]
        return agreed(events, stream.response, verbatim), events

    return asyncio.run(collect())


def call(connector: LLMConnector, mode: str, prompt: str | None = None, **options: Any) -> Response:
    """One `Response` in `mode` (streams checked as in `call_with_events`)."""
    return call_with_events(connector, mode, prompt, **options)[0]


def tool_loop(
    connector: LLMConnector,
    mode: str,
    messages: list[dict[str, Any]],
    result: Callable[[ToolCall], str],
    most: int = 3,
    **options: Any,
) -> list[Response]:
    """The replies to `messages` until one calls no tool (`most` replies at the most), looping
    as a caller does: after each reply it appends `response.message` and, for each call, a
    tool message with `result(call)`, and nothing provider-specific. `messages` grows in place,
    so a test sees the conversation a strict server accepted."""
    replies = []
    for _ in range(most):
        response = call(connector, mode, messages=messages, **options)
        replies.append(response)
        messages.append(response.message)
        for tool_call in response.tool_calls:
            reply = {"role": "tool", "tool_call_id": tool_call.id, "content": result(tool_call)}
            messages.append(reply)
        if not response.tool_calls:
            break
    return replies


def agreed(events: list[Any], response: Response, verbatim: bool = True) -> Response:
    """`response`, once the stream's events are checked to agree with it: it is the last
    event's; the text and reasoning deltas join to its text and reasoning; the finished calls
    are its calls; the first delta of each call names its id and name, and its deltas join to
    JSON of its arguments: to its exact `arguments_json` if `verbatim` (False for a reply
    whose calls the adapter re-writes canonically when they finish, as Anthropic's)."""
    assert events[-1].type == "finished" and events[-1].response == response
    assert "".join(e.text for e in events if e.type == "text_delta") == response.text
    reasoning = "".join(e.text for e in events if e.type == "reasoning_delta")
    assert reasoning == (response.reasoning or "")
    assert [e.tool_call for e in events if e.type == "tool_call_done"] == response.tool_calls
    for index, done in enumerate(response.tool_calls):
        pieces = [e for e in events if e.type == "tool_call_delta" and e.index == index]
        assert pieces[0].id == done.id and pieces[0].name == done.name
        joined = "".join(p.arguments_fragment for p in pieces)
        assert json.loads(joined) == done.arguments
        if verbatim:
            assert joined == done.arguments_json
    return response


def read_into(
    seen: list[Any], connector: LLMConnector, mode: str, prompt: str, **options: Any
) -> None:
    """Read a `stream` or `astream` call event by event into `seen`, so that a test expecting
    the stream to fail still has every event that came before the failure."""
    if mode == "stream":
        with connector.stream(prompt, **options) as stream:
            for event in stream:
                seen.append(event)
        return

    async def collect() -> None:
        async with connector.astream(prompt, **options) as stream:
            async for event in stream:
                seen.append(event)

    asyncio.run(collect())


def without_ids(response: Response) -> Response:
    """`response` with its tool-call ids blanked: every reply gets fresh ids, so replies are
    compared without them (and the ids checked apart)."""
    return replace(response, tool_calls=[replace(c, id="") for c in response.tool_calls])


def last_body(target: Target, server: LocalProtocolServer) -> dict[str, Any]:
    """The JSON body of the last generation request `server` received for `target`."""
    body = chat_requests(target, server)[-1].json
    assert isinstance(body, dict)
    return body


def parse_chunks(parser: StreamParser, chunks: Iterable[bytes]) -> list[Any]:
    """Every event `parser` makes of `chunks` fed one at a time, what `end` adds included."""
    events: list[Any] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.end()
