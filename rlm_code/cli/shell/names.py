"""Names the shell's parts share, in a module that imports nothing.

Why apart: the loop needs the command names for Tab completion before the first prompt, and
the slash commands need them for "did you mean"; keeping them here (not in either module)
means neither imports the other to get them, so the two stay free of an import cycle.
"""

from __future__ import annotations

COMMAND_NAMES = (
    "/connect",
    "/models",
    "/providers",
    "/discover",
    "/status",
    "/usage",
    "/disconnect",
    "/clear",
    "/system",
    "/reasoning",
    "/help",
    "/exit",
    "/quit",
)
INTERRUPTED_MARK = "[reply interrupted by the user]"
"""Appended to a reply cut by Ctrl-C, so the model knows it was cut off."""

__all__ = ["COMMAND_NAMES", "INTERRUPTED_MARK"]
