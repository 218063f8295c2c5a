"""`ThinkSplitter`: inline `<think>...</think>` split from the reply, whatever the chunking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rlm_code.models.adapters._think import ThinkSplitter, split_think, starts_with_think

_BLOCK = re.compile(r"\s*<think>(.*?)(?:</think>\s*|\Z)(.*)", re.DOTALL)


def reference(content: str) -> tuple[str, str]:
    """The rules of the module docstring, written as one regular expression."""
    if not content.lstrip().startswith("<think>"):
        return "", content
    match = _BLOCK.match(content)
    assert match is not None
    return match.group(1), match.group(2)


def fed(pieces: list[str]) -> tuple[str, str, ThinkSplitter]:
    splitter = ThinkSplitter()
    reasoning, text = [], []
    for piece in pieces:
        r, t = splitter.feed(piece)
        reasoning.append(r)
        text.append(t)
    r, t = splitter.finish()
    return "".join(reasoning) + r, "".join(text) + t, splitter


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("<think>plan</think>\n\nanswer", ("plan", "answer")),
        ("  \n<think>\nplan\n</think>answer  ", ("\nplan\n", "answer  ")),
        ("answer mentions <think>tags</think>", ("", "answer mentions <think>tags</think>")),
        ("  answer", ("", "  answer")),
        ("<think>cut off by max_tokens", ("cut off by max_tokens", "")),
        ("<think>a</thi", ("a</thi", "")),
        ("<thin", ("", "<thin")),
        ("<thinking>x</thinking>", ("", "<thinking>x</thinking>")),
        ("<think></think>", ("", "")),
        ("<think>a</think>b</think>c", ("a", "b</think>c")),
        ("", ("", "")),
        ("   ", ("", "   ")),
    ],
)
def test_split_by_the_rules(content: str, expected: tuple[str, str]) -> None:
    assert split_think(content) == expected == reference(content)
    assert starts_with_think(content) == content.lstrip().startswith("<think>")


def test_a_tag_cut_at_every_character() -> None:
    content = " <think>step one</think>\n\nthe answer"
    for cut in range(len(content) + 1):
        reasoning, text, _ = fed([content[:cut], content[cut:]])
        assert (reasoning, text) == ("step one", "the answer"), cut
    pieces = list(content)  # one character at a time
    assert fed(pieces)[:2] == ("step one", "the answer")


def test_plain_text_passes_through_after_the_first_piece() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("Hello") == ("", "Hello")
    assert splitter.passthrough
    assert splitter.feed(" <think>") == ("", " <think>")
    reasoning, text, after = fed(["<think>r</think>", " ", "x"])
    assert (reasoning, text, after.passthrough) == ("r", "x", True)


def test_nothing_is_held_back_longer_than_a_tag() -> None:
    splitter = ThinkSplitter()
    splitter.feed("<think>")
    assert splitter.feed("abcdefgh</") == ("abcdefgh", "")
    assert splitter.feed("x") == ("</x", "")


ALPHABET = st.sampled_from(
    ["<", ">", "/", "t", "h", "i", "n", "k", "<think>", "</think>", " ", "\n", "a", "é", "日", "🚀"]
)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(ALPHABET, max_size=30).map("".join),
    st.lists(st.integers(min_value=0, max_value=200), max_size=8),
)
def test_any_chunking_gives_the_whole_reply_split(content: str, cuts: list[int]) -> None:
    bounds = sorted({min(c, len(content)) for c in cuts})
    pieces, start = [], 0
    for bound in [*bounds, len(content)]:
        pieces.append(content[start:bound])
        start = bound
    reasoning, text, _ = fed(pieces)
    assert (reasoning, text) == split_think(content) == reference(content)
