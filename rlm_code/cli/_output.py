"""Small output helpers shared by the CLI commands.

Plain aligned text tables (no third-party libraries), JSON, colour only when stdout is a TTY
and `NO_COLOR` is unset (https://no-color.org), and one-line errors on stderr, with close
matches for a mistyped name. Only the standard library is imported here, and only the
commands' `run` functions import this module, so it never costs start-up time.

Table cells and error lines pass through the one terminal filter (`rlm_code.cli.sanitize`)
before our own colour codes are added: a model name or an error body a server chose cannot
drive the terminal. Everything written to stderr also passes through
`rlm_code.core.redact.redact`, so an API key that reaches an error message is masked there too.

A closed pipe (`| head`) is not handled here: `BrokenPipeError` reaches `cli.main`, which
ends the process quietly (see `cli.exit_codes`).
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from rlm_code.cli.exit_codes import EXIT_USAGE
from rlm_code.cli.sanitize import strip_controls, strip_controls_one_line

PROG = "rlm-code"

CellStyle = Callable[[int, str], str | None]
"""`cell_style(column_index, value)` returns a style name for one body cell, or None."""

_RESET = "\033[0m"
STYLES = {
    "bold": "\033[1m",
    "dim": "\033[2m",
    "green": "\033[32m",
    "yellow": "\033[33m",
    "red": "\033[31m",
}


def use_color(stream: TextIO | None = None) -> bool:
    """True when `stream` (default stdout) is a terminal and `NO_COLOR` is unset or empty."""
    if os.environ.get("NO_COLOR"):
        return False
    stream = sys.stdout if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # closed or detached stream
        return False


def style(text: str, name: str | None, *, color: bool) -> str:
    """Wrap `text` in the ANSI style `name` when `color` is on; otherwise return it unchanged."""
    if not color or not name or not text:
        return text
    return f"{STYLES[name]}{text}{_RESET}"


def format_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    color: bool = False,
    styles: Sequence[str | None] | None = None,
    cell_style: CellStyle | None = None,
) -> str:
    """Render rows as left-aligned columns separated by two spaces.

    `styles` gives one style name (or None) per column; `cell_style(column, value)` may return
    a style for one cell instead. Padding is computed on the plain text, so colour never
    breaks alignment. Trailing spaces are stripped from every line.
    """
    headers = [strip_controls_one_line(str(h)) for h in headers]
    body = [[strip_controls_one_line(str(cell)) for cell in row] for row in rows]
    for row in body:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells, expected {len(headers)}")
    widths = [len(h) for h in headers]
    for row in body:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def render(cells: Sequence[str], header: bool) -> str:
        parts = []
        for index, cell in enumerate(cells):
            padding = " " * (widths[index] - len(cell))
            name: str | None = None
            if header:
                name = "bold"
            elif cell_style is not None:
                name = cell_style(index, cell)
            if name is None and not header and styles:
                name = styles[index]
            parts.append(style(cell, name, color=color) + padding)
        return "  ".join(parts).rstrip()

    lines = [render(list(headers), header=True)]
    lines.extend(render(row, header=False) for row in body)
    return "\n".join(lines)


def write(text: str, stream: TextIO | None = None) -> None:
    """Write text (ours, already filtered where it holds provider text) plus a newline."""
    stream = sys.stdout if stream is None else stream
    stream.write(text + "\n")
    stream.flush()


def write_untrusted(text: str, stream: TextIO | None = None) -> None:
    """Write text a provider or server chose, filtered for the terminal, plus a newline."""
    write(strip_controls(text), stream)


def print_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    styles: Sequence[str | None] | None = None,
    cell_style: CellStyle | None = None,
    stream: TextIO | None = None,
) -> None:
    """Print a table to `stream` (default stdout), coloured only when that stream allows it."""
    stream = sys.stdout if stream is None else stream
    color = use_color(stream)
    write(format_table(headers, rows, color=color, styles=styles, cell_style=cell_style), stream)


# json escapes C0 controls but, with ensure_ascii=False, leaves DEL and the C1 controls raw;
# some terminals act on C1 (0x9B is CSI), so they are written as \u escapes too (same JSON).
_JSON_RAW_CONTROLS = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def json_text(data: Any) -> str:
    """Indented JSON with every control character escaped, safe to print on a terminal."""
    return json.dumps(data, indent=2, ensure_ascii=False).translate(_JSON_RAW_CONTROLS)


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """Print `data` as indented JSON (never coloured: it is for programs)."""
    write(json_text(data), stream)


def error_line(message: str) -> str:
    """A message as one safe line: controls stripped, whitespace collapsed, keys masked."""
    from rlm_code.core.redact import redact

    return redact(strip_controls_one_line(message))


def fail(message: str, code: int = EXIT_USAGE) -> int:
    """Print `rlm-code: <message>` as one line on stderr and return `code` (the exit code)."""
    print(f"{PROG}: {error_line(message)}", file=sys.stderr, flush=True)
    return code


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Up to `n` candidates that look like `word` (case-insensitive), best first, no repeats."""
    unique = list(dict.fromkeys(candidates))
    by_lower: dict[str, str] = {}
    for candidate in unique:
        by_lower.setdefault(candidate.lower(), candidate)
    found = difflib.get_close_matches(word.strip().lower(), list(by_lower), n=n, cutoff=0.6)
    return [by_lower[match] for match in found]


def unknown_name_message(
    kind: str, name: str, candidates: Iterable[str], fallback: Sequence[str]
) -> str:
    """`unknown <kind> 'x'; did you mean: a, b?`, or the full `fallback` list if none is close."""
    matches = close_matches(name, candidates)
    if matches:
        return f"unknown {kind} {name!r}; did you mean: {', '.join(matches)}?"
    return f"unknown {kind} {name!r}; known {kind}s: {', '.join(fallback)}"


# -- a reply's reasoning and tool calls, shown apart from its text ------------------------------

REASONING_PREFIX = "thinking: "
_REASONING_INDENT = " " * len(REASONING_PREFIX)


class ReasoningWriter:
    """Writes a model's streamed reasoning apart from its answer (used by `ask` and the shell).

    Why a class: reasoning arrives in pieces, interleaved with nothing else but followed by the
    answer, so the block needs state: its first line is prefixed `thinking: `, later lines are
    indented under it, trailing newlines are held back (a block never ends on an empty line),
    and `end()` closes the block with one newline before the answer starts. Each piece is dim
    on its own (`style` resets after it), so Ctrl-C mid-block never leaves the terminal dim.
    The text is the provider's: it goes through the terminal filter first, with state kept
    across pieces like the answer's.
    """

    __slots__ = ("_clean", "_held", "_open", "color", "stream")

    def __init__(self, stream: TextIO, *, color: bool) -> None:
        from rlm_code.cli.sanitize import TerminalSanitizer

        self.stream = stream
        self.color = color
        self._clean = TerminalSanitizer()
        self._open = False
        self._held = 0  # newlines seen at the end of the text so far, not yet written

    @property
    def started(self) -> bool:
        """Whether a block is open (some reasoning was written and `end()` not called since)."""
        return self._open

    def feed(self, text: str) -> None:
        piece = self._clean.feed(text)
        if not self._open:
            piece = piece.lstrip("\n")
        if not piece:
            return
        body = piece.rstrip("\n")
        held, self._held = self._held, len(piece) - len(body)
        if not body:  # only newlines: hold them until text follows
            self._held += held
            return
        body = "\n" * held + body
        if not self._open:
            body = REASONING_PREFIX + body
            self._open = True
        self.stream.write(
            style(body.replace("\n", "\n" + _REASONING_INDENT), "dim", color=self.color)
        )
        self.stream.flush()

    def end(self) -> None:
        """Close the block (a newline) if one is open; the next reasoning starts a new one."""
        self._clean.flush()
        self._held = 0
        if self._open:
            self._open = False
            self.stream.write("\n")
            self.stream.flush()


def tool_call_line(name: str, arguments_json: str, limit: int = 200) -> str:
    """One line for a tool call a model asked for: `tool call: NAME {args}`, filtered for the
    terminal and shortened to `limit` characters (arguments can be a whole file)."""
    args = strip_controls_one_line(arguments_json) or "{}"
    line = f"tool call: {strip_controls_one_line(name)} {args}"
    return line if len(line) <= limit else line[: limit - 3] + "..."
