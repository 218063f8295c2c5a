"""Entry point of the `rlm-code` command line.

Start-up speed matters (`rlm-code --help` is benchmarked against a bare `python -c pass`), so
this module imports only `argparse` and the small `register` functions of the command modules
(`rlm_code.cli.commands.*`). Each command's real work lives in a `run(args) -> int` function
whose imports happen only when that command runs. With no command, the interactive shell
(`rlm_code.cli.shell`) starts.

Exit codes are in `rlm_code.cli.exit_codes`. Standard streams are handled here, once for every
command: a closed stdin reads as empty input; a closed stdout is an error (exit 1) before any
work is done; a reader that goes away (`rlm-code ask ... | head`) ends the command quietly
with exit 1, the Python documentation's way (stdout pointed at devnull, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rlm_code.cli.exit_codes import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE

TYPE_CHECKING = False  # not `from typing import ...`: typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Sequence

# Command modules, in the order `--help` lists them. Each has `register(subparsers)`, which must
# stay cheap (argparse only), and sets `handler="module:function"` as a parser default.
COMMAND_MODULES = (
    "rlm_code.cli.commands.ask",
    "rlm_code.cli.commands.providers",
    "rlm_code.cli.commands.models",
    "rlm_code.cli.commands.discover",
    "rlm_code.cli.commands.config",
    "rlm_code.cli.commands.usage",
    "rlm_code.cli.commands.serve_local",
)
SHELL_HANDLER = "rlm_code.cli.shell.loop:run"


class _Parser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from rlm_code import __version__

    parser = _Parser(
        prog="rlm-code",
        description=(
            "Talk to any language model, local or bring-your-own-key. "
            "With no command, starts the interactive shell."
        ),
    )
    parser.add_argument("--version", action="version", version=f"rlm-code {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show tracebacks and debug logs (keys are redacted)"
    )
    parser.add_argument(
        "-m",
        "--model",
        help="provider/model for the interactive shell "
        "(default: RLM_CODE_MODEL, the config, else the built-in local server)",
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=_Parser)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(sub)
    return parser


def _open_closed_streams() -> bool:
    """Give a closed stdin or stderr a devnull stand-in; False when stdout is closed.

    Started with `0<&-`, Python sets `sys.stdin` to None and every read would raise: reading
    devnull instead makes a closed stdin plain end of input (no prompt, no key, leave the
    shell). Output that cannot be written is not a success, so a closed stdout stops here.
    """
    if sys.stdin is None:
        sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115 - lives as long as we do
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115
    if sys.stdout is None:
        print("rlm-code: standard output is closed; nothing to write to", file=sys.stderr)
        return False
    return True


def _silence_broken_pipe() -> None:
    """Point a standard stream whose reader has gone at devnull, so that the flush at exit
    cannot print "Exception ignored ... BrokenPipeError" (Python's documented recipe)."""
    import contextlib

    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                with contextlib.suppress(OSError, ValueError):
                    os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    if not _open_closed_streams():
        return EXIT_ERROR
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        handler = getattr(args, "handler", None) or SHELL_HANDLER
        module_name, _, func_name = handler.partition(":")
        func = getattr(importlib.import_module(module_name), func_name)
        try:
            code = int(func(args))
        except KeyboardInterrupt:
            print("", file=sys.stderr)
            code = EXIT_INTERRUPTED
        sys.stdout.flush()  # a reader that left during the last write is noticed here
        return code
    except BrokenPipeError:
        _silence_broken_pipe()
        return EXIT_ERROR


if __name__ == "__main__":
    raise SystemExit(main())
