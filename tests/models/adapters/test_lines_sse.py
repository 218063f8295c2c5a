"""The line and SSE readers: the SSE specification (10.19), linear-time line assembly and the
line cap (10.9)."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rlm_code.core.exceptions import ResponseFormatError
from rlm_code.models.adapters._lines import (
    MAX_LINE_BYTES,
    LineSplitter,
    SSEDecoder,
    SSEEvent,
    iter_lines,
    iter_sse,
)
from rlm_code.models.adapters.openai_compatible import ChatStreamParser
from rlm_code.models.types import StreamEnd, TextDelta

from .conftest import cut_at


def events(body: bytes, step: int | None = None) -> list[SSEEvent]:
    chunks = [body] if step is None else [body[i : i + step] for i in range(0, len(body), step)]
    return list(iter_sse(chunks))


def test_multi_line_data_is_joined_with_newlines():
    body = b'data: {"a":\ndata: 1}\n\n'
    assert events(body) == [SSEEvent(b'{"a":\n1}')]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
@pytest.mark.parametrize("step", [None, 1, 2, 3])
def test_every_line_ending_of_the_spec_works_across_chunk_borders(eol, step):
    body = eol.join(
        [b": comment", b"event: delta", b"data: one", b"data:two", b"", b"data: 3", b""]
    )
    body += eol
    assert events(body, step) == [SSEEvent(b"one\ntwo", "delta"), SSEEvent(b"3")]


def test_comments_ids_and_unknown_fields_are_ignored_and_blank_lines_dispatch():
    body = b": ping\n\nid: 7\nretry: 10\nfoo: bar\ndata\n\ndata: x\n\n: after\n\n"
    assert events(body) == [SSEEvent(b""), SSEEvent(b"x")]


def test_an_unfinished_event_at_the_end_is_dropped():
    assert events(b"data: whole\n\ndata: half") == [SSEEvent(b"whole")]


def test_a_crlf_split_between_chunks_is_one_line_end():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n\r") == [SSEEvent(b"a")]
    assert decoder.feed(b"\ndata: b\r\r") == [SSEEvent(b"b")]


def test_openai_stream_with_cr_only_line_endings_and_multi_line_data():
    parser = ChatStreamParser("p")
    body = (
        b'data: {"choices":[{"delta":\rdata: {"content":"Hi"},"finish_reason":null}]}\r\r'
        b'data: {"choices":[{"delta":{},"finish_reason":"length"}]}\r\rdata: [DONE]\r\r'
    )
    out = [e for i in range(len(body)) for e in parser.feed(body[i : i + 1])]
    assert out == [TextDelta("Hi"), StreamEnd("length", "length")]


@given(st.lists(st.binary(max_size=30), max_size=10), st.data())
def test_sse_events_do_not_depend_on_chunk_borders(pieces, data):
    body = b"".join(pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(body)), max_size=6)))
    chunks = cut_at(body, cuts)
    assert list(iter_sse(chunks)) == list(iter_sse([body]))


def test_a_line_over_the_cap_is_a_typed_error_naming_the_cap():
    splitter = LineSplitter("p")
    piece = b"x" * (1024 * 1024)
    with pytest.raises(ResponseFormatError, match="16 MiB"):
        for _ in range(MAX_LINE_BYTES // len(piece) + 1):
            splitter.feed(piece)
    with pytest.raises(ResponseFormatError, match="16 MiB"):
        SSEDecoder("p").feed(b"data: " + b"x" * (MAX_LINE_BYTES + 1) + b"\n")


def _cpu_for_line(size: int, chunk: int = 8192) -> float:
    piece = b"x" * chunk
    start = time.process_time()
    lines = list(iter_lines([piece] * (size // chunk) + [b"\n"]))
    spent = time.process_time() - start
    assert len(lines) == 1 and len(lines[0]) == size
    return spent


def test_line_assembly_is_linear_in_the_line_length():
    """Complexity, not speed: 8x the bytes must cost about 8x the CPU, not 64x (quadratic
    re-concatenation of the pending bytes cost seconds for one 40 MB line)."""
    _cpu_for_line(1 << 20)  # warm up
    small = max(_cpu_for_line(1 << 20) for _ in range(3))
    large = min(_cpu_for_line(8 << 20) for _ in range(2))
    assert large < max(small, 0.002) * 30
