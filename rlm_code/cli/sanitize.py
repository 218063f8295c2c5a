"""The one filter for provider-controlled text on its way to a terminal.

Why: a model's reply, a model name from a provider's list, an error body or a discovery answer
is text a server chose. Written raw, it can drive the terminal: rewrite what is on screen
(`ESC [2J`, carriage returns), set the window title (`OSC 0`), write the clipboard (`OSC 52`),
or hide text. Every command and the shell pass such text through this module; our own colour
codes are added afterwards, around text that has been filtered.

What is removed: escape sequences as a terminal parses them (ECMA-48) — CSI (`ESC [` ... final
byte, or C1 `0x9B`), OSC/DCS/SOS/PM/APC strings (`ESC ]`, `ESC P`, `ESC X`, `ESC ^`, `ESC _`, or
their C1 forms) up to their terminator (BEL, ST = `ESC \\` or `0x9C`, CAN, SUB), and other `ESC`
sequences — then every remaining C0 or C1 control character and DEL. Newline and tab stay.

Streamed text may cut a sequence anywhere (`ESC` at the end of one chunk, `]52;c;...` in the
next): `TerminalSanitizer` keeps the parser state between chunks, so the part of a sequence
that arrives later is still recognised and dropped; an unfinished sequence at the end of the
text is dropped, never printed. `--json` output is left to `json` (see `_output.print_json`).
"""

from __future__ import annotations

import re

# Everything that starts or is a control in NORMAL text: C0 except tab and newline, DEL, C1.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CSI_BODY = re.compile(r"[\x20-\x3f]*")  # parameter and intermediate bytes
_STRING_END = re.compile(r"[\x07\x18\x1a\x1b\x9c]")  # BEL, CAN, SUB, ESC (ST is ESC \), C1 ST

_NORMAL, _ESCAPE, _ESC_INTERMEDIATE, _CSI, _STRING = range(5)
_STRING_INTRODUCERS = frozenset("]PX^_")  # OSC, DCS, SOS, PM, APC after ESC
_C1_STRINGS = frozenset("\x90\x98\x9d\x9e\x9f")  # DCS, SOS, OSC, PM, APC as C1 controls
_C1_CSI = "\x9b"


class TerminalSanitizer:
    """Filters text fed in pieces; state carries over, so a split sequence is still removed."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = _NORMAL

    def feed(self, text: str) -> str:
        """The printable part of `text`, given everything fed before."""
        out: list[str] = []
        state = self._state
        i, n = 0, len(text)
        while i < n:
            if state == _NORMAL:
                found = _CONTROL.search(text, i)
                if found is None:
                    out.append(text[i:])
                    break
                start = found.start()
                out.append(text[i:start])
                char = text[start]
                i = start + 1
                if char == "\x1b":
                    state = _ESCAPE
                elif char == _C1_CSI:
                    state = _CSI
                elif char in _C1_STRINGS:
                    state = _STRING
                # any other control character is simply dropped
            elif state == _ESCAPE:
                char = text[i]
                if char == "[":
                    state, i = _CSI, i + 1
                elif char in _STRING_INTRODUCERS:
                    state, i = _STRING, i + 1
                elif "\x20" <= char <= "\x2f":
                    state, i = _ESC_INTERMEDIATE, i + 1
                elif "\x30" <= char <= "\x7e":
                    state, i = _NORMAL, i + 1  # a two-character sequence (ESC c, ESC \ ...)
                else:
                    state = _NORMAL  # not a sequence: drop the ESC, read `char` as text
            elif state == _ESC_INTERMEDIATE:
                char = text[i]
                if "\x20" <= char <= "\x2f":
                    i += 1
                elif "\x30" <= char <= "\x7e":
                    state, i = _NORMAL, i + 1
                else:
                    state = _NORMAL
            elif state == _CSI:
                body = _CSI_BODY.match(text, i)
                i = body.end() if body is not None else i
                if i >= n:
                    break  # the final byte comes in a later piece
                if "\x40" <= text[i] <= "\x7e":
                    i += 1
                state = _NORMAL  # a malformed sequence ends here; the odd character is read again
            else:  # _STRING: everything up to a terminator is the sequence's payload
                end = _STRING_END.search(text, i)
                if end is None:
                    break
                i = end.end()
                state = _ESCAPE if end.group() == "\x1b" else _NORMAL
        self._state = state
        return "".join(out)

    def flush(self) -> str:
        """End of the text: an unfinished sequence is dropped (never printed); resets."""
        self._state = _NORMAL
        return ""


def strip_controls(text: str) -> str:
    """`text` without escape sequences and control characters (newline and tab kept)."""
    if not _CONTROL.search(text):
        return text
    sanitizer = TerminalSanitizer()
    return sanitizer.feed(text) + sanitizer.flush()


def strip_controls_one_line(text: str) -> str:
    """`strip_controls`, then whitespace runs (newlines included) collapsed to one space."""
    return " ".join(strip_controls(text).split())


__all__ = ["TerminalSanitizer", "strip_controls", "strip_controls_one_line"]
