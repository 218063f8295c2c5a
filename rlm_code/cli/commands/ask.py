"""`rlm-code ask "prompt"`: one prompt, the reply streamed to stdout (or as JSON).

The prompt comes from the argument, or from stdin when the argument is `-` or absent and
stdin is piped. Ctrl-C stops a streamed reply (exit 130); the usage received so far is
still counted. Errors are one line on stderr: exit 1 for provider and network errors, 2 for
usage errors. `--debug` shows the traceback too.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable
    from typing import Any, TextIO


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="send one prompt and stream the reply",
        description=(
            "Send one prompt to a model and stream the reply to stdout. The model is --model, "
            "else RLM_CODE_MODEL, else the config's default_model, else the built-in local "
            "server (an offline echo model)."
        ),
    )
    parser.add_argument("prompt", nargs="?", default=None, help="the prompt; '-' reads stdin")
    parser.add_argument("-m", "--model", help="provider/model, e.g. ollama/llama3.2")
    parser.add_argument("-s", "--system", help="system prompt")
    parser.add_argument("--base-url", help="send requests to this URL (a gateway or server)")
    parser.add_argument("--no-stream", action="store_true", help="print the reply when complete")
    parser.add_argument("--json", action="store_true", help="print text, model and usage as JSON")
    parser.add_argument("--max-tokens", type=int, help="cap the reply length (tokens)")
    parser.add_argument("--temperature", type=float, help="sampling temperature, 0 to 2")
    parser.add_argument("--timeout", type=float, help="read timeout in seconds")
    parser.set_defaults(handler="rlm_code.cli.commands.ask:run")


def read_prompt(arg: str | None) -> str | None:
    """The argument, else stdin when it is `-` or absent and stdin is not a terminal
    (a closed stdin reads as empty: `cli.main` gives it a devnull stand-in)."""
    import sys

    if arg is not None and arg != "-":
        return arg
    if arg is None and sys.stdin.isatty():
        return None
    return sys.stdin.read().rstrip("\n")


def stream_to(out: TextIO, chunks: Iterable[str]) -> None:
    """Write streamed text as it arrives, filtered for the terminal (a sequence cut between
    two chunks is still removed: the filter keeps its state)."""
    from rlm_code.cli.sanitize import TerminalSanitizer

    sanitizer = TerminalSanitizer()
    for chunk in chunks:
        text = sanitizer.feed(chunk)
        if text:
            out.write(text)
            out.flush()
    out.write(sanitizer.flush())


def run(args: argparse.Namespace) -> int:
    import sys

    from rlm_code.cli._output import fail, print_json
    from rlm_code.cli.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, exit_code_for
    from rlm_code.cli.sanitize import strip_controls
    from rlm_code.cli.session import open_session
    from rlm_code.core.exceptions import ConfigError, ModelError

    prompt = read_prompt(args.prompt)
    if prompt is None or not prompt.strip():
        return fail('ask needs a prompt: rlm-code ask "..." or pipe text into it', EXIT_USAGE)
    params = {
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "timeout": args.timeout,
    }
    out = sys.stdout
    try:
        with open_session(args.model, base_url=args.base_url, quiet=args.json) as connector:
            before = connector.usage_snapshot()
            if args.json or args.no_stream:
                text = connector.generate_response(prompt, system_prompt=args.system, **params)
                if not args.json:
                    out.write(strip_controls(text) + "\n")
            else:
                stream = connector.stream_response(prompt, system_prompt=args.system, **params)
                try:
                    stream_to(out, stream)
                finally:
                    stream.close()  # records the usage so far, even on Ctrl-C or a closed pipe
                    out.write("\n")
                    out.flush()
                text = ""
            if args.json:
                status = connector.get_connection_status()
                print_json(
                    {
                        "text": text,
                        "provider": status["provider"],
                        "model": status["model"],
                        "usage": connector.usage_delta(before, connector.usage_snapshot()),
                    }
                )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ConfigError, ModelError) as exc:
        if args.debug:
            raise
        return fail(str(exc), exit_code_for(exc))
    return EXIT_OK
