"""One module per `rlm-code` subcommand.

Each module has `register(subparsers)`, which only describes its arguments (argparse, nothing
else: `rlm-code --help` imports every one of them), and `run(args) -> int`, which imports what
the command needs and returns the exit code (`rlm_code.cli.exit_codes`). To add a command,
add a module here and its name to `COMMAND_MODULES` in `rlm_code.cli.main`.
"""
