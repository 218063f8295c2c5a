"""The deterministic "model" behind the local protocol server.

Tests of connectors need exact, predictable answers and token counts without a real model, so
the server's replies and usage numbers are simple functions of the request text. They live here,
free of any HTTP code, so tests can compute the expected values with the very same functions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = [
    "count_tokens",
    "echo_reply",
    "pad_reply",
    "split_pieces",
    "truncate_words",
]

_PIECE = re.compile(r"\s*\S+\s*")
PAD_WORD = " word"


def count_tokens(text: str) -> int:
    """Token count used for every usage number: whitespace-separated words."""
    return len(text.split())


def echo_reply(text: str) -> str:
    """Default answer: ``"Echo: "`` followed by the last user message's text."""
    return "Echo: " + text


def split_pieces(text: str) -> list[str]:
    """Split a reply into the content pieces of a stream, one word (plus its spaces) each.

    This is ``re.findall(r"\\S+\\s*", text)``, except that whitespace before the first word stays
    on the first piece, so ``"".join(split_pieces(text)) == text`` holds for every text.
    """
    pieces = _PIECE.findall(text)
    if not pieces and text:
        return [text]  # whitespace only
    return pieces


def pad_reply(text: str, min_pieces: int) -> str:
    """Append ``" word"`` until the reply streams as at least ``min_pieces`` content pieces.

    Used by the ``X-Stream-Chunks`` request header for benchmarks and drip tests.
    """
    missing = min_pieces - len(split_pieces(text))
    if missing <= 0:
        return text
    if not text:
        return "word" + PAD_WORD * (missing - 1)
    return text + PAD_WORD * missing


def truncate_words(text: str, max_words: int) -> tuple[str, bool]:
    """Cut a reply to ``max_words`` words, as a ``max_tokens`` limit would.

    Returns the (possibly) shortened text, with trailing whitespace removed when cut, and
    whether it was cut.
    """
    pieces = split_pieces(text)
    if max_words < 0 or len(pieces) <= max_words:
        return text, False
    return "".join(pieces[:max_words]).rstrip(), True


def total_tokens(texts: Iterable[str]) -> int:
    """Sum of `count_tokens` over several texts (each message counted on its own)."""
    return sum(count_tokens(text) for text in texts)
