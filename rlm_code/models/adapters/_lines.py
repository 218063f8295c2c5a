"""Readers for streamed answers: bytes in, lines or server-sent events out, JSON parsed with
typed failures. The size caps of every reply live here, in one place.

- Splitting happens on bytes, so a multi-byte character split across network chunks is
  reassembled, and invalid UTF-8 surfaces as a typed error at `loads` instead of being
  silently replaced.
- Lines are assembled in linear time: the pieces of an unfinished line are kept in a list and
  joined once, when its end arrives (re-concatenating the pending bytes for every chunk made
  one 40 MB line cost seconds of CPU).
- A line (or an SSE event) over `MAX_LINE_BYTES` and a reply over `MAX_REPLY_BYTES`
  (counted after decompression, so a gzip bomb stops at the cap) end in `ResponseFormatError`
  naming the cap: a hostile or broken server cannot make us buffer without bound.
- `SSEDecoder` follows the server-sent events specification: `\\r\\n`, `\\n` and a lone `\\r`
  all end a line; `:` starts a comment; several `data:` lines of one event are joined with
  `\\n`; `event:` names the event; an event is dispatched on a blank line, and an event left
  unfinished at the end of the body is dropped.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, NamedTuple

from rlm_code.core.exceptions import ResponseFormatError

MIB = 1024 * 1024
MAX_LINE_BYTES = 16 * MIB  # one NDJSON line or one SSE event
MAX_REPLY_BYTES = 64 * MIB  # one whole reply or one whole stream, decompressed


def too_large(provider: str, what: str, cap: int) -> ResponseFormatError:
    """The typed error for a line, event or reply over its cap."""
    return ResponseFormatError(
        f"{provider} sent {what} larger than the {cap // MIB} MiB limit; reading stopped",
        provider=provider,
        hint="The server is misbehaving or the URL points at something else; check the base URL.",
    )


class LineSplitter:
    """Incremental line splitter: `feed(chunk)` returns the lines the chunk completed.

    With `sse=False` (NDJSON) only `\\n` ends a line and one `\\r` before it is dropped; with
    `sse=True` a lone `\\r` ends a line too (the SSE rule), and a `\\r\\n` split across two
    chunks still counts as one line end.
    """

    __slots__ = ("_cap", "_parts", "_pending", "_provider", "_skip_lf", "_sse")

    def __init__(self, provider: str = "the server", *, sse: bool = False) -> None:
        self._provider = provider
        self._sse = sse
        self._cap = MAX_LINE_BYTES
        self._parts: list[bytes] = []
        self._pending = 0
        self._skip_lf = False

    def _join(self, tail: bytes) -> bytes:
        if not self._parts:
            return tail
        self._parts.append(tail)
        line = b"".join(self._parts)
        self._parts = []
        self._pending = 0
        return line

    def _keep(self, fragment: bytes) -> None:
        if fragment:
            self._pending += len(fragment)
            if self._pending > self._cap:
                raise too_large(self._provider, "a line", self._cap)
            self._parts.append(fragment)

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._sse and (self._skip_lf or b"\r" in chunk):
            return self._feed_sse(chunk)  # a lone CR ends a line too: the slower, exact path
        if b"\n" not in chunk:
            self._keep(chunk)
            return []
        lines = chunk.split(b"\n")
        tail = lines.pop()
        lines[0] = self._join(lines[0])
        out = [line[:-1] if line.endswith(b"\r") else line for line in lines]
        if self._cap < max(map(len, out)):
            raise too_large(self._provider, "a line", self._cap)
        self._keep(tail)
        return out

    def _feed_sse(self, chunk: bytes) -> list[bytes]:
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        if not chunk:
            return []
        pieces = chunk.splitlines(keepends=True)
        out: list[bytes] = []
        for piece in pieces:
            if piece.endswith(b"\n"):
                out.append(self._join(piece[:-2] if piece.endswith(b"\r\n") else piece[:-1]))
            elif piece.endswith(b"\r"):
                out.append(self._join(piece[:-1]))
            else:
                self._keep(piece)
        # A "\n" opening the next chunk belongs to a "\r" that ended this one.
        self._skip_lf = pieces[-1].endswith(b"\r")
        if out and self._cap < max(map(len, out)):
            raise too_large(self._provider, "a line", self._cap)
        return out

    def flush(self) -> list[bytes]:
        """The unterminated last fragment, if any, as it came."""
        if not self._parts:
            return []
        return [self._join(b"")]


class SSEEvent(NamedTuple):
    """One dispatched server-sent event: its `event:` name ("message" by default) and its
    `data:` lines joined with `\\n` (bytes: JSON decodes them strictly). A named tuple: one
    is built per event of every stream, and a tuple is the cheapest immutable record."""

    data: bytes
    event: str = "message"


class SSEDecoder:
    """Incremental SSE parser: `feed(chunk)` returns the events the chunk completed."""

    __slots__ = ("_data", "_event", "_lines", "_provider", "_size")

    def __init__(self, provider: str = "the server") -> None:
        self._provider = provider
        self._lines = LineSplitter(provider, sse=True)
        self._data: list[bytes] = []
        self._size = 0
        self._event = ""

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        data = self._data
        for line in self._lines.feed(chunk):
            # The two common lines are handled inline (they are most of a stream): a
            # `data: ` line, and the blank line that dispatches a one-line event.
            if line[:6] == b"data: ":
                self._size += len(line) - 5
                if self._size > MAX_LINE_BYTES:
                    raise too_large(self._provider, "an event", MAX_LINE_BYTES)
                data.append(line[6:])
            elif not line and len(data) == 1:
                events.append(SSEEvent(data.pop(), self._event or "message"))
                self._size, self._event = 0, ""
            elif (event := self._line(line)) is not None:
                events.append(event)
        return events

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(b"\n".join(self._data), self._event or "message")
            self._data.clear()
            self._size, self._event = 0, ""
            return event
        if line[:1] == b":":
            return None
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._size += len(value) + 1
            if self._size > MAX_LINE_BYTES:
                raise too_large(self._provider, "an event", MAX_LINE_BYTES)
            self._data.append(value)
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        return None  # `id`, `retry` and unknown fields are ignored, as the spec says


def iter_lines(chunks: Iterable[bytes], provider: str = "the server") -> Iterator[bytes]:
    """Split a byte stream into lines (without `\\n` / `\\r\\n`), across chunk borders.

    An unterminated last fragment is passed on as it came."""
    splitter = LineSplitter(provider)
    for chunk in chunks:
        yield from splitter.feed(chunk)
    yield from splitter.flush()


def iter_sse(chunks: Iterable[bytes], provider: str = "the server") -> Iterator[SSEEvent]:
    """The server-sent events of a byte stream (see `SSEDecoder`)."""
    decoder = SSEDecoder(provider)
    for chunk in chunks:
        yield from decoder.feed(chunk)


async def aiter_sse(
    chunks: AsyncIterator[bytes], provider: str = "the server"
) -> AsyncIterator[SSEEvent]:
    """Async twin of `iter_sse`."""
    decoder = SSEDecoder(provider)
    async for chunk in chunks:
        for event in decoder.feed(chunk):
            yield event


def loads(payload: bytes | str, provider: str) -> Any:
    """`json.loads` whose failures (bad JSON, invalid UTF-8) are `ResponseFormatError`.

    Bytes are decoded as strict UTF-8 first (JSON over HTTP is UTF-8): cheaper than letting
    `json.loads` sniff the encoding of every stream event, and stricter."""
    try:
        return json.loads(payload.decode() if isinstance(payload, bytes) else payload)
    except (ValueError, RecursionError):
        snippet = payload[:80].decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        raise ResponseFormatError(
            f"{provider} sent an answer that is not valid JSON or UTF-8"
            + (f" (starts {snippet!r})" if snippet else ""),
            provider=provider,
            hint="The server may not speak this API; check the base URL and provider.",
        ) from None
