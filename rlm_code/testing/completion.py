"""The deterministic "model": from a parsed request to the reply every protocol then encodes.

Kept apart from HTTP so the order of the steps is explicit and the same for all protocols:
base text (scripted reply, else the echo), fault substitutions, ``X-Stream-Chunks`` padding,
max-tokens truncation, then ``bad_utf8`` damage; token counts come from the final text.
"""

from __future__ import annotations

from rlm_code.testing.faults import BAD_UTF8_MARK, SPLIT_UTF8_TEXT
from rlm_code.testing.text import (
    count_tokens,
    echo_reply,
    pad_reply,
    split_pieces,
    total_tokens,
    truncate_words,
)
from rlm_code.testing.wire import WireReply, WireRequest

__all__ = ["MAX_STREAM_CHUNKS", "complete"]

MAX_STREAM_CHUNKS = 100_000  # upper bound for X-Stream-Chunks, so one header cannot eat memory


def complete(
    chat: WireRequest,
    *,
    scripted: str | None = None,
    fault_mode: str | None = None,
    min_chunks: int = 0,
) -> WireReply:
    """The answer to ``chat``.

    ``scripted`` replaces the echo; ``fault_mode`` applies the text-level faults (``empty``,
    ``split_utf8``, ``bad_utf8``, ``no_usage``); ``min_chunks`` pads streamed replies.
    """
    text = scripted if scripted is not None else echo_reply(chat.last_user_text)
    if fault_mode == "split_utf8":
        text = SPLIT_UTF8_TEXT
    elif fault_mode == "empty":
        text = ""
    if chat.stream and min_chunks > 0 and fault_mode != "empty":
        text = pad_reply(text, min(min_chunks, MAX_STREAM_CHUNKS))
    truncated = False
    if chat.max_tokens is not None:
        text, truncated = truncate_words(text, chat.max_tokens)
    if fault_mode == "bad_utf8":
        # Glued to the second word, so word (token) counts do not change.
        pieces = split_pieces(text)
        text = pieces[0] + BAD_UTF8_MARK + "".join(pieces[1:]) if pieces else BAD_UTF8_MARK
    return WireReply(
        request=chat,
        text=text,
        prompt_tokens=total_tokens(chat.texts),
        completion_tokens=count_tokens(text),
        truncated=truncated,
        usage=fault_mode != "no_usage",
    )
