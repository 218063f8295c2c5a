"""Inline `<think>...</think>` reasoning, split from the reply text as it streams.

Local servers that run a reasoning model without a reasoning parser (llama.cpp without
`--reasoning-format`, LM Studio, MLX, older vLLM and SGLang) put the model's reasoning at the
start of the content, between `<think>` and `</think>`. `ThinkSplitter` takes the content in
whatever pieces it arrives and gives back (reasoning, text) pieces, so the reasoning reaches the
caller as reasoning and the answer as text, in whole replies and streams alike.

The rules, chosen so an ordinary reply is never touched:

- Only a reply whose content *starts* with `<think>` (after optional whitespace) is split. Any
  other reply is text, byte for byte, even if it mentions the tag later.
- The reasoning is everything between the tags, verbatim. The whitespace between `</think>`
  and the answer (models write "\\n\\n") is dropped; the answer after it is kept verbatim.
- A reply cut off before `</think>` (max_tokens) is all reasoning, with empty text.

A tag may be cut across pieces at any character: the splitter holds back only what could
still be the start of a tag (at most 7 characters), so the joined output is the same for every
way of cutting the input. Once the decision "no think block" or "after the block" is made, a
piece costs one comparison (`passthrough` tells the caller it may stop using the splitter).
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"

_START, _THINK, _AFTER, _TEXT = 0, 1, 2, 3
_NOTHING = ("", "")


def _held_suffix(text: str, tag: str) -> int:
    """The length of the longest end of `text` that is a proper beginning of `tag`."""
    for size in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:size]):
            return size
    return 0


class ThinkSplitter:
    """Content pieces -> (reasoning, text) pieces; see the module docstring."""

    __slots__ = ("_held", "_state")

    def __init__(self) -> None:
        self._state = _START
        self._held = ""

    @property
    def passthrough(self) -> bool:
        """True once every further piece is plain text (no tag can follow)."""
        return self._state == _TEXT

    def feed(self, piece: str) -> tuple[str, str]:
        """The (reasoning, text) that `piece` completes; either may be empty."""
        state = self._state
        if state == _TEXT:
            return "", piece
        if state == _AFTER:
            text = piece.lstrip()
            if text:
                self._state = _TEXT
            return "", text
        buffer = self._held + piece
        if state == _THINK:
            return self._in_think(buffer)
        stripped = buffer.lstrip()
        if stripped.startswith(OPEN):
            self._state = _THINK
            self._held = ""
            return self._in_think(stripped[len(OPEN) :])
        if not stripped or OPEN.startswith(stripped):
            self._held = buffer  # whitespace, or the tag so far: wait for more
            return _NOTHING
        self._state = _TEXT
        self._held = ""
        return "", buffer

    def _in_think(self, buffer: str) -> tuple[str, str]:
        end = buffer.find(CLOSE)
        if end >= 0:
            self._state = _AFTER
            self._held = ""
            _, text = self.feed(buffer[end + len(CLOSE) :])
            return buffer[:end], text
        keep = _held_suffix(buffer, CLOSE)
        self._held = buffer[len(buffer) - keep :] if keep else ""
        return (buffer[: len(buffer) - keep] if keep else buffer), ""

    def finish(self) -> tuple[str, str]:
        """What was held back when the content ends: a tag that never completed is text
        before the block and reasoning inside it."""
        held, self._held = self._held, ""
        if self._state == _START:
            self._state = _TEXT
            return "", held
        if self._state == _THINK:
            return held, ""
        return _NOTHING


def starts_with_think(content: str) -> bool:
    """Whether a whole reply's content opens with a think block (after whitespace)."""
    return content.lstrip().startswith(OPEN)


def split_think(content: str) -> tuple[str, str]:
    """A whole reply's content -> (reasoning, text), by the same rules as the splitter."""
    splitter = ThinkSplitter()
    reasoning, text = splitter.feed(content)
    more_reasoning, more_text = splitter.finish()
    return reasoning + more_reasoning, text + more_text


__all__ = ["CLOSE", "OPEN", "ThinkSplitter", "split_think", "starts_with_think"]
