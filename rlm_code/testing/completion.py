"""The deterministic "model": from a parsed request to the reply every protocol then encodes.

Kept apart from HTTP so the order of the steps is explicit and the same for all protocols:
base text (a queued `ScriptedReply`, else the per-model reply, else the conventions of
`scripted`: tool calls, tool results, structured output, else the echo), reasoning, fault
substitutions, ``X-Stream-Chunks`` padding, max-tokens truncation, then ``bad_utf8`` damage;
token counts come from the final text (reasoning tokens included in the completion tokens).
"""

from __future__ import annotations

import json

from rlm_code.testing.faults import BAD_UTF8_MARK, SPLIT_UTF8_TEXT
from rlm_code.testing.scripted import (
    ScriptedReply,
    WireToolCall,
    convention_calls,
    instance_of,
    wire_call,
)
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


def _beyond_text(
    chat: WireRequest, queued: ScriptedReply | None, scripted: str | None
) -> tuple[str, tuple[WireToolCall, ...], str | None]:
    """(text, tool calls, reasoning) before faults and limits."""
    subject = chat.last_user_text
    if chat.tool_results:
        subject = "; ".join(chat.tool_results)
    reasoning = f"Thinking about: {subject}" if chat.reasoning else None
    if queued is not None:
        calls = tuple(wire_call(name, args) for name, args in queued.tool_calls)
        return queued.text or "", calls, queued.reasoning if queued.reasoning else reasoning
    if scripted is not None:
        return scripted, (), reasoning
    if chat.tool_results:
        text = "Tool result: " + subject
    else:
        made = convention_calls(subject, chat.tools, chat.tool_choice, chat.forced_tool)
        if made:
            return "", tuple(made), reasoning
        text = echo_reply(subject)
    if chat.schema is not None:
        text = json.dumps(instance_of(chat.schema, text), ensure_ascii=False)
    return text, (), reasoning


def complete(
    chat: WireRequest,
    *,
    scripted: str | None = None,
    queued: ScriptedReply | None = None,
    fault_mode: str | None = None,
    min_chunks: int = 0,
) -> WireReply:
    """The answer to ``chat``.

    ``queued`` (the next `ScriptedReply`) or ``scripted`` (a per-model text) replace the
    conventions; ``fault_mode`` applies the text-level faults (``empty``, ``split_utf8``,
    ``bad_utf8``, ``no_usage``); ``min_chunks`` pads streamed replies.
    """
    text, calls, reasoning = _beyond_text(chat, queued, scripted)
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
    thinking = count_tokens(reasoning) if reasoning else 0
    arguments = sum(count_tokens(call.arguments_json) for call in calls)
    return WireReply(
        request=chat,
        text=text,
        prompt_tokens=total_tokens(chat.texts),
        completion_tokens=count_tokens(text) + thinking + arguments,
        truncated=truncated,
        usage=fault_mode != "no_usage",
        tool_calls=calls,
        reasoning=reasoning,
        reasoning_tokens=thinking,
    )
