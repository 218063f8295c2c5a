"""Entry point of the `rlm-code` command line.

Start-up speed matters (`rlm-code --help` is benchmarked against a bare `python -c pass`), so
this module imports only `argparse` and the small `register` functions of the command modules.
Each command's real work lives in a `run(args) -> int` function whose module is imported only
when that command runs.

Exit codes: 0 ok, 1 provider or network error, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Command modules, in the order `--help` lists them. Each has `register(subparsers)`, which must
# stay cheap (argparse only), and sets `handler="module:function"` as a parser default.
COMMAND_MODULES = (
    "rlm_code.cli.cmd_ask",
    "rlm_code.cli.cmd_providers",
    "rlm_code.cli.cmd_models",
    "rlm_code.cli.cmd_discover",
    "rlm_code.cli.cmd_config",
    "rlm_code.cli.cmd_serve_local",
)

EXIT_OK = 0
EXIT_PROVIDER_ERROR = 1
EXIT_USAGE = 2


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
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # command not built yet
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        handler = "rlm_code.cli.shell:run"
    module_name, _, func_name = handler.partition(":")
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        print("rlm-code: the interactive shell is not available yet; see --help", file=sys.stderr)
        return EXIT_USAGE
    try:
        return int(func(args))
    except KeyboardInterrupt:
        print("", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
