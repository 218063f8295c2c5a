"""Line readers for streamed answers: bytes in, lines out, JSON parsed with typed failures.

Splitting happens on bytes, so a multi-byte character split across network chunks is
reassembled, and invalid UTF-8 surfaces as a typed error at `loads` instead of being silently
replaced.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

from rlm_code.core.exceptions import ModelError, ResponseFormatError


def iter_lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Split a byte stream into lines (without `\\n` / `\\r\\n`), across chunk borders.

    An unterminated last fragment is passed on as it came."""
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending


async def aiter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Async twin of `iter_lines`."""
    pending = b""
    async for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            yield line[:-1] if line.endswith(b"\r") else line
    if pending:
        yield pending


def loads(payload: bytes | str, provider: str) -> Any:
    """`json.loads` whose failures (bad JSON, invalid UTF-8) are `ResponseFormatError`."""
    try:
        return json.loads(payload)
    except ValueError:
        snippet = payload[:80].decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        raise ResponseFormatError(
            f"{provider} sent an answer that is not valid JSON or UTF-8"
            + (f" (starts {snippet!r})" if snippet else ""),
            provider=provider,
            hint="The server may not speak this API; check the base URL and provider.",
        ) from None


def drain(lines: Iterator[bytes]) -> None:
    """Read a stream to its end after its end marker, so its connection can be reused.

    Errors here are ignored: the reply is already complete.
    """
    try:
        for _ in lines:
            pass
    except ModelError:
        pass


async def adrain(lines: AsyncIterator[bytes]) -> None:
    """Async twin of `drain`."""
    try:
        async for _ in lines:
            pass
    except ModelError:
        pass
