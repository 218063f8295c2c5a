"""A small keyboard-driven chooser for the interactive shell (`/connect` with no arguments).

Why not a TUI library: the shell must start fast and stay dependency-free, so this is plain
`termios` + ANSI cursor movement, and it is imported only when a picker is opened.

Keys (interactive terminal):

- Up/Down (or k/j) move, Home/End and PgUp/PgDn jump, Enter chooses;
- typing a number moves to that entry (several digits build one number), Enter chooses;
- Esc, q or Ctrl-C cancels.

When stdin or stdout is not a terminal, or `TERM=dumb` (no cursor movement), the same menu is
printed as a numbered list and one line is read: a number, or the entry's exact label; an
empty line, `q` or end of input cancels. This keeps `/connect` usable from scripts and pipes.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TextIO, TypeVar

from rlm_code.cli.sanitize import strip_controls_one_line

T = TypeVar("T")

LineReader = Callable[[str], "str | None"]
"""Reads one line after showing a prompt; None at end of input. Ctrl-C raises KeyboardInterrupt."""

_ESC_WAIT_S = 0.05  # how long to wait after ESC for the rest of an escape sequence
_MAX_FALLBACK_TRIES = 3


@dataclass(frozen=True)
class Choice(Generic[T]):
    """One entry: what is shown (`label`, `detail`) and what choosing it returns (`value`)."""

    label: str
    value: T
    detail: str = ""


@dataclass
class Terminal:
    """How a picker talks to the user; the shell builds one for its own streams.

    `interactive` selects the arrow-key menu; `read_line` is the shell's line reader (readline
    on a terminal, plain stdin otherwise) and `read_secret` reads without echo.
    """

    out: TextIO
    read_line: LineReader
    read_secret: LineReader
    interactive: bool
    color: bool = False

    @classmethod
    def detect(
        cls, read_line: LineReader, read_secret: LineReader, *, color: bool = False
    ) -> Terminal:
        """Interactive when stdin and stdout are terminals and `TERM` can move the cursor."""
        interactive = (
            _isatty(sys.stdin) and _isatty(sys.stdout) and os.environ.get("TERM", "") != "dumb"
        )
        return cls(sys.stdout, read_line, read_secret, interactive, color)

    def write(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def pick(title: str, choices: Sequence[Choice[T]], term: Terminal) -> Choice[T] | None:
    """Let the user choose one of `choices`; None when cancelled (or nothing to choose).

    Labels and details are shown filtered for the terminal (model names may come from a
    server); the chosen entry is returned as given.
    """
    if not choices:
        return None
    shown = [
        Choice(strip_controls_one_line(c.label), c.value, strip_controls_one_line(c.detail))
        for c in choices
    ]
    if term.interactive:
        try:
            fd = sys.stdin.fileno()
        except (AttributeError, OSError, ValueError):
            fd = -1
        if fd >= 0:
            index = _KeyMenu(title, shown, term, fd).run()
            return None if index is None else choices[index]
    chosen = _numbered(title, shown, term)
    if chosen is None:
        return None
    return choices[next(i for i, c in enumerate(shown) if c is chosen)]


# -- numbered fallback --------------------------------------------------------------------------


def format_rows(choices: Sequence[Choice[T]]) -> list[str]:
    """`N. label  detail` lines with aligned columns (shared by both menu styles)."""
    width = len(str(len(choices)))
    label_width = max(len(c.label) for c in choices)
    rows = []
    for number, choice in enumerate(choices, start=1):
        text = f"{number:>{width}}. {choice.label}"
        if choice.detail:
            text = f"{number:>{width}}. {choice.label:<{label_width}}  {choice.detail}"
        rows.append(text.rstrip())
    return rows


def _numbered(title: str, choices: Sequence[Choice[T]], term: Terminal) -> Choice[T] | None:
    term.write(title + "\n")
    for row in format_rows(choices):
        term.write(f"  {row}\n")
    prompt = f"choose 1-{len(choices)} (empty line or q cancels): "
    for _ in range(_MAX_FALLBACK_TRIES):
        answer = term.read_line(prompt)
        if answer is None or answer.strip().lower() in ("", "q", "quit"):
            break
        chosen = _match(answer.strip(), choices)
        if chosen is not None:
            return chosen
        term.write(f"error: type a number from 1 to {len(choices)}, or q to cancel\n")
    term.write(f"{title}: cancelled\n")
    return None


def _match(answer: str, choices: Sequence[Choice[T]]) -> Choice[T] | None:
    if answer.isdigit():
        number = int(answer)
        return choices[number - 1] if 1 <= number <= len(choices) else None
    lowered = answer.lower()
    for choice in choices:
        if choice.label.lower() == lowered:
            return choice
    return None


# -- arrow-key menu -----------------------------------------------------------------------------

_SEQUENCES = {
    "[A": "up",
    "OA": "up",
    "[B": "down",
    "OB": "down",
    "[H": "home",
    "OH": "home",
    "[1~": "home",
    "[7~": "home",
    "[F": "end",
    "OF": "end",
    "[4~": "end",
    "[8~": "end",
    "[5~": "pgup",
    "[6~": "pgdn",
}
_KEYS = {
    "\r": "enter",
    "\n": "enter",
    "\x03": "cancel",  # Ctrl-C when the terminal does not turn it into SIGINT
    "\x04": "cancel",  # Ctrl-D
    "q": "cancel",
    "k": "up",
    "j": "down",
    "\x10": "up",  # Ctrl-P
    "\x0e": "down",  # Ctrl-N
    "\x7f": "backspace",
    "\x08": "backspace",
}


def read_key(fd: int) -> str:
    """One key press from a terminal in cbreak mode, as a name (`up`, `enter`, `7`, ...)."""
    import select

    first = os.read(fd, 1)
    if not first:
        return "cancel"  # end of input
    if first != b"\x1b":
        char = first.decode("latin-1")
        if char.isdigit():
            return char
        return _KEYS.get(char, "other")

    def more() -> str:
        ready, _, _ = select.select([fd], [], [], _ESC_WAIT_S)
        return os.read(fd, 1).decode("latin-1") if ready else ""

    lead = more()
    if not lead:
        return "cancel"  # a lone Esc
    if lead == "O":
        return _SEQUENCES.get("O" + more(), "other")
    if lead != "[":
        return "other"  # Alt+key
    seq = "["
    while len(seq) < 8:
        char = more()
        if not char:
            break
        seq += char
        if "\x40" <= char <= "\x7e":  # the final byte of a CSI sequence
            break
    return _SEQUENCES.get(seq, "other")


class _KeyMenu(Generic[T]):
    """The arrow-key menu: draws in place, redraws on every key, erases itself when done."""

    def __init__(self, title: str, choices: Sequence[Choice[T]], term: Terminal, fd: int) -> None:
        import shutil

        self.title = title
        self.choices = choices
        self.term = term
        self.fd = fd
        size = shutil.get_terminal_size((80, 24))
        self.columns = max(20, size.columns)
        self.height = max(3, min(len(choices), size.lines - 3))
        self.rows = format_rows(choices)
        self.cursor = 0
        self.top = 0
        self.number = ""
        self.drawn = 0
        encoding = (getattr(term.out, "encoding", None) or "").lower()
        self.fancy = encoding.startswith("utf")

    def run(self) -> int | None:
        import termios
        import tty

        saved = termios.tcgetattr(self.fd)
        chosen: int | None = None
        try:
            tty.setcbreak(self.fd, termios.TCSANOW)
            self.term.write("\x1b[?25l")  # hide the cursor while the menu is up
            self.draw()
            chosen = self.loop()
        except KeyboardInterrupt:
            chosen = None
        finally:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, saved)
            self.erase()
            self.term.write("\x1b[?25h")
        if chosen is None:
            self.term.write(f"{self.title}: cancelled\n")
        else:
            self.term.write(f"{self.title}: {self.choices[chosen].label}\n")
        return chosen

    def loop(self) -> int | None:
        count = len(self.choices)
        while True:
            key = read_key(self.fd)
            if key == "enter":
                return self.cursor
            if key == "cancel":
                return None
            if key.isdigit():
                self.type_digit(key)
            else:
                self.number = ""
                if key == "backspace":
                    continue
                moves = {
                    "up": self.cursor - 1,
                    "down": self.cursor + 1,
                    "home": 0,
                    "end": count - 1,
                    "pgup": self.cursor - self.height,
                    "pgdn": self.cursor + self.height,
                }
                if key not in moves:
                    continue
                target = moves[key]
                if key in ("up", "down"):
                    target %= count  # wrap around at the ends
                self.cursor = min(max(target, 0), count - 1)
            self.draw()

    def type_digit(self, digit: str) -> None:
        """Digits build a number; one that does not fit the list starts over with this digit."""
        candidate = self.number + digit
        if not 1 <= int(candidate) <= len(self.choices):
            candidate = digit
        self.number = candidate
        number = int(candidate)
        if 1 <= number <= len(self.choices):
            self.cursor = number - 1

    def lines(self) -> list[str]:
        if self.cursor < self.top:
            self.top = self.cursor
        elif self.cursor >= self.top + self.height:
            self.top = self.cursor - self.height + 1
        arrows = "\u2191/\u2193" if self.fancy else "up/down"
        hint = f"{arrows} move, number jumps, Enter chooses, Esc cancels"
        end = self.top + self.height
        if self.top > 0 or end < len(self.choices):
            hint += f"  ({self.top + 1}-{min(end, len(self.choices))} of {len(self.choices)})"
        color = self.term.color
        out = [
            _style(self.clip(self.title), "\x1b[1m", color),
            _style(self.clip(hint), "\x1b[2m", color),
        ]
        marker = "\u203a" if self.fancy else ">"
        for index in range(self.top, min(end, len(self.choices))):
            selected = index == self.cursor
            text = self.clip(f"{marker if selected else ' '} {self.rows[index]}")
            out.append(_style(text, "\x1b[7m", color) if selected else text)
        return out

    def clip(self, text: str) -> str:
        limit = self.columns - 1
        return text if len(text) <= limit else text[: limit - 3] + "..."

    def draw(self) -> None:
        lines = self.lines()
        buffer = self.rewind()
        buffer += "\n".join("\x1b[2K" + line for line in lines)
        self.drawn = len(lines)
        self.term.write(buffer)

    def rewind(self) -> str:
        """Move back to the first line of the menu drawn last (nothing drawn: stay put)."""
        if self.drawn == 0:
            return ""
        return "\r" + (f"\x1b[{self.drawn - 1}A" if self.drawn > 1 else "")

    def erase(self) -> None:
        if self.drawn:
            self.term.write(self.rewind() + "\x1b[J")
            self.drawn = 0


def _style(text: str, code: str, color: bool) -> str:
    return f"{code}{text}\x1b[0m" if color else text


__all__ = ["Choice", "LineReader", "Terminal", "format_rows", "pick", "read_key"]
