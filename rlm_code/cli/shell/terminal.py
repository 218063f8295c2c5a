"""The shell's terminal helpers: colour, stream checks, the reply stream's close, debug logs.

Only the standard library is imported at module level: this loads before the first prompt.
The filter for provider text (`rlm_code.cli.sanitize`) and the history rule (`history`) are
imported on first use, through the small wrappers here.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing stays out of the start-up path
if TYPE_CHECKING:
    from typing import Protocol, TextIO

    class Closable(Protocol):
        def close(self) -> None: ...


BOLD_CYAN = "\x1b[1;36m"
DIM = "\x1b[2m"
RED = "\x1b[31m"
RESET = "\x1b[0m"


def color_ok(stream: TextIO) -> bool:
    """Colour only on a terminal and never with `NO_COLOR` (same rule as `_output.use_color`,
    repeated here so the first prompt does not pay for importing that module)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def strip_controls(text: str) -> str:
    """`rlm_code.cli.sanitize.strip_controls`, imported on first use (not at start-up)."""
    from rlm_code.cli.sanitize import strip_controls as strip

    return strip(text)


def history_entry(line: str) -> str:
    """The line as the history file may keep it (`history.scrub_history_line`)."""
    from rlm_code.cli.shell.history import scrub_history_line

    return scrub_history_line(line)


def isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def close_quietly(stream: Closable) -> None:
    """Close a reply stream (which records its usage) even if Ctrl-C is pressed again."""
    import contextlib
    import signal
    import threading

    on_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if on_main else None
    try:
        with contextlib.suppress(Exception):  # a failing close must not hide the reply
            stream.close()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def provider_names() -> list[str]:
    from rlm_code.cli.shell.completion import provider_names

    return provider_names()


def enable_debug_logging() -> None:
    import logging

    from rlm_code.core.redact import install_log_redaction

    install_log_redaction()  # masks keys in every record, the HTTP libraries' ones included
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    logger = logging.getLogger("rlm_code")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)


__all__ = [
    "close_quietly",
    "color_ok",
    "enable_debug_logging",
    "history_entry",
    "isatty",
    "provider_names",
    "strip_controls",
]
