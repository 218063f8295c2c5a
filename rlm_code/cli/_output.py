"""Small output helpers shared by the CLI commands.

Plain aligned text tables (no third-party libraries), JSON, colour only when stdout is a TTY
and `NO_COLOR` is unset (https://no-color.org), and one-line errors on stderr, with close
matches for a mistyped name. Only the standard library is imported here, and only the
commands' `run` functions import this module, so it never costs start-up time.

Everything written to stderr passes through `rlm_code.core.redact.redact`, so an API key that
reaches an error message is masked there too.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

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
    body = [[str(cell) for cell in row] for row in rows]
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
    """Write text plus a newline; a closed pipe (`| head`) ends output quietly."""
    stream = sys.stdout if stream is None else stream
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        # Python's recommended handling: point stdout at devnull so the exit flush is silent.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


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


def print_json(data: Any, stream: TextIO | None = None) -> None:
    """Print `data` as indented JSON (never coloured: it is for programs)."""
    write(json.dumps(data, indent=2, ensure_ascii=False), stream)


def one_line(message: str) -> str:
    """Collapse whitespace runs (newlines included) so an error stays on one line."""
    return " ".join(message.split())


def fail(message: str, code: int = 2) -> int:
    """Print `rlm-code: <message>` as one line on stderr and return `code` (the exit code)."""
    from rlm_code.core.redact import redact

    print(f"{PROG}: {redact(one_line(message))}", file=sys.stderr)
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
