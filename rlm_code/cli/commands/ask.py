"""`rlm-code ask "prompt"`: one prompt, the reply streamed to stdout (or as JSON).

The prompt comes from the argument, or from stdin when the argument is `-` or absent and
stdin is piped. Ctrl-C stops a streamed reply (exit 130); the usage received so far is
still counted. Errors are one line on stderr: exit 1 for provider and network errors, 2 for
usage errors. `--debug` shows the traceback too.

Beyond text: stdout carries only the answer, so a pipe gets exactly the reply. The model's
reasoning (`--reasoning` asks for it; some models send it anyway) goes to stderr, dim on a
terminal; a tool call the model asks for (`ask` offers no tools, so this is rare) is one
line on stderr; a reply cut off by `--max-tokens` gets a note there too. `--json` puts all of
it in one object instead. `--schema FILE.json` asks for structured output and prints the
reply once it has parsed as JSON (so it is never streamed).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any, TextIO

    from rlm_code.models.streaming import ResponseStream
    from rlm_code.models.types import Response

SCHEMA_MAX_BYTES = 1_000_000
"""A schema file larger than this is refused: a JSON schema is a few kilobytes."""
CUT_OFF_NOTE = "rlm-code: the reply was cut off by the token limit (finish reason: length)"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="send one prompt and stream the reply",
        description=(
            "Send one prompt to a model and stream the reply to stdout. The model is --model, "
            "else RLM_CODE_MODEL, else the config's default_model, else the model of a running "
            "local server (Ollama, LM Studio, llama.cpp, vLLM, ...), else the built-in local "
            "server (an offline echo model). Reasoning and notes go to stderr."
        ),
    )
    parser.add_argument("prompt", nargs="?", default=None, help="the prompt; '-' reads stdin")
    parser.add_argument("-m", "--model", help="provider/model, e.g. ollama/llama3.2")
    parser.add_argument("-s", "--system", help="system prompt")
    parser.add_argument("--base-url", help="send requests to this URL (a gateway or server)")
    parser.add_argument("--no-stream", action="store_true", help="print the reply when complete")
    parser.add_argument(
        "--json",
        action="store_true",
        help="print text, model, finish reason, usage, reasoning and tool calls as JSON",
    )
    parser.add_argument(
        "--schema",
        metavar="FILE.json",
        help="ask for a reply valid against this JSON schema; print it as JSON",
    )
    parser.add_argument(
        "--reasoning",
        metavar="LEVEL",
        type=reasoning_arg,
        help="ask the model to reason: low, medium, high, or a token budget N",
    )
    parser.add_argument("--max-tokens", type=int, help="cap the reply length (tokens)")
    parser.add_argument("--temperature", type=float, help="sampling temperature, 0 to 2")
    parser.add_argument("--timeout", type=float, help="read timeout in seconds")
    parser.set_defaults(handler="rlm_code.cli.commands.ask:run")


def reasoning_arg(value: str) -> str | int:
    """`--reasoning`: an effort word or a positive token budget (argparse turns the error into
    a usage line and exit 2)."""
    import argparse

    word = value.strip().lower()
    if word in ("low", "medium", "high"):
        return word
    if word.isdigit() and int(word) >= 1:
        return int(word)
    raise argparse.ArgumentTypeError(
        f"{value!r} is not low, medium, high or a positive number of tokens"
    )


class SchemaFileError(Exception):
    """`--schema` names a file that cannot be used (one line: what is wrong and where)."""


def load_schema(path: str) -> dict[str, Any]:
    """The JSON schema in `path`, checked as `response_format` will check it (before any
    connection is opened, so a bad file costs nothing and writes nothing)."""
    import json

    from rlm_code.core.exceptions import InvalidInputError
    from rlm_code.models.call_options import check_response_format

    try:
        with open(path, "rb") as handle:
            raw = handle.read(SCHEMA_MAX_BYTES + 1)
    except FileNotFoundError:
        raise SchemaFileError(f"--schema: no such file: {path}") from None
    except IsADirectoryError:
        raise SchemaFileError(f"--schema: {path} is a directory, not a JSON file") from None
    except OSError as exc:
        raise SchemaFileError(f"--schema: cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > SCHEMA_MAX_BYTES:
        raise SchemaFileError(f"--schema: {path} is over {SCHEMA_MAX_BYTES} bytes")
    try:
        schema = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SchemaFileError(f"--schema: {path} is not UTF-8 text") from None
    except ValueError as exc:
        raise SchemaFileError(f"--schema: {path} is not valid JSON ({exc})") from None
    if not isinstance(schema, dict):
        raise SchemaFileError(f"--schema: {path} must hold a JSON object (a JSON schema)")
    try:
        check_response_format(schema)
    except InvalidInputError as exc:
        raise SchemaFileError(f"--schema: {path}: {exc}") from None
    return schema


class ReplyNotJSON(Exception):
    """`--schema` asked for JSON and the reply is not JSON (exit 1: the model's fault)."""


def parse_reply(response: Response) -> Any:
    """The reply of a `--schema` call parsed as JSON, or `ReplyNotJSON` saying so."""
    import json

    try:
        return json.loads(response.text)
    except ValueError as exc:
        if response.finish_reason == "length":
            raise ReplyNotJSON(
                "--schema asked for JSON but the reply was cut off by the token limit before "
                "its JSON was complete; raise --max-tokens"
            ) from None
        raise ReplyNotJSON(
            f"--schema asked for JSON but the reply is not valid JSON ({exc}); the model or "
            "server may not support structured output (without --schema you see its reply)"
        ) from None


def read_prompt(arg: str | None) -> str | None:
    """The argument, else stdin when it is `-` or absent and stdin is not a terminal
    (a closed stdin reads as empty: `cli.main` gives it a devnull stand-in)."""
    import sys

    if arg is not None and arg != "-":
        return arg
    if arg is None and sys.stdin.isatty():
        return None
    return sys.stdin.read().rstrip("\n")


def stream_reply(stream: ResponseStream, out: TextIO, err: TextIO) -> Response:
    """Write the answer to `out` as it arrives, and reasoning and tool calls apart on `err`;
    returns the reply as far as it got. The stream is closed on every way out (which records
    the usage so far, even on Ctrl-C or a closed pipe)."""
    from rlm_code.cli._output import ReasoningWriter, tool_call_line, use_color, write
    from rlm_code.cli.sanitize import TerminalSanitizer
    from rlm_code.models.types import ReasoningDelta, TextDelta, ToolCallDone

    clean = TerminalSanitizer()  # filters the answer; state kept across pieces
    thinking = ReasoningWriter(err, color=use_color(err))
    try:
        for event in stream:
            kind = type(event)
            if kind is TextDelta:
                if thinking.started:
                    thinking.end()
                text = clean.feed(event.text)  # type: ignore[union-attr]
                if text:
                    out.write(text)
                    out.flush()
            elif kind is ReasoningDelta:
                thinking.feed(event.text)  # type: ignore[union-attr]
            elif kind is ToolCallDone:
                thinking.end()
                call = event.tool_call  # type: ignore[union-attr]
                write(tool_call_line(call.name, call.arguments_json), err)
    finally:
        stream.close()
        thinking.end()
        out.write(clean.flush() + "\n")
        out.flush()
    return stream.response


def show_whole(response: Response, out: TextIO, err: TextIO, *, as_json: bool) -> None:
    """A whole reply: reasoning and tool calls on `err`, then the text on `out` (with
    `as_json`, the text parsed and printed as JSON; nothing on `out` if it does not parse)."""
    from rlm_code.cli._output import (
        ReasoningWriter,
        print_json,
        tool_call_line,
        use_color,
        write,
        write_untrusted,
    )

    if response.reasoning:
        thinking = ReasoningWriter(err, color=use_color(err))
        thinking.feed(response.reasoning)
        thinking.end()
    for call in response.tool_calls:
        write(tool_call_line(call.name, call.arguments_json), err)
    if as_json:
        print_json(parse_reply(response), out)
    elif response.text or not response.tool_calls:
        write_untrusted(response.text, out)


def json_report(
    response: Response, status: dict[str, Any], usage: dict[str, Any]
) -> dict[str, Any]:
    """The `--json` object: the keys `ask --json` always had (text, provider, model, usage as
    the connector counted it) plus this reply's finish reason, token buckets (None when the
    provider did not say), reasoning (when any) and tool calls."""
    tokens = response.usage
    report: dict[str, Any] = {
        "text": response.text,
        "provider": status["provider"],
        "model": status["model"],
        "usage": usage,
        "finish_reason": response.finish_reason,
        "input_tokens": tokens.input_tokens,
        "output_tokens": tokens.output_tokens,
        "cache_read_tokens": tokens.cache_read_tokens,
        "cache_write_tokens": tokens.cache_write_tokens,
        "reasoning_tokens": tokens.reasoning_tokens,
        "total_tokens": tokens.total_tokens,
    }
    if response.reasoning is not None:
        report["reasoning"] = response.reasoning
    report["tool_calls"] = [
        {"id": call.id, "name": call.name, "arguments": call.arguments}
        for call in response.tool_calls
    ]
    return report


def run(args: argparse.Namespace) -> int:
    import sys

    from rlm_code.cli._output import fail, print_json, write
    from rlm_code.cli.exit_codes import (
        EXIT_ERROR,
        EXIT_INTERRUPTED,
        EXIT_OK,
        EXIT_USAGE,
        exit_code_for,
    )
    from rlm_code.cli.session import open_session
    from rlm_code.core.exceptions import ConfigError, ModelError

    prompt = read_prompt(args.prompt)
    if prompt is None or not prompt.strip():
        return fail('ask needs a prompt: rlm-code ask "..." or pipe text into it', EXIT_USAGE)
    schema = None
    if args.schema is not None:
        try:
            schema = load_schema(args.schema)
        except SchemaFileError as exc:
            return fail(str(exc), EXIT_USAGE)
    out, err = sys.stdout, sys.stderr
    try:
        with open_session(args.model, base_url=args.base_url, quiet=args.json) as connector:
            before = connector.usage_snapshot()
            options: dict[str, Any] = {
                "system_prompt": args.system,
                "max_tokens": args.max_tokens,
                "temperature": args.temperature,
                "timeout": args.timeout,
                "reasoning": args.reasoning,
                "response_format": schema,
            }
            if args.json or args.no_stream or schema is not None:
                response = connector.complete(prompt, **options)
                if args.json:
                    status = connector.get_connection_status()
                    usage = connector.usage_delta(before, connector.usage_snapshot())
                    report = json_report(response, status, usage)
                    if schema is not None:
                        report["json"] = parse_reply(response)
                    print_json(report, out)
                else:
                    show_whole(response, out, err, as_json=schema is not None)
            else:
                response = stream_reply(connector.stream(prompt, **options), out, err)
            if response.finish_reason == "length" and not args.json:
                write(CUT_OFF_NOTE, err)
    except ReplyNotJSON as exc:
        return fail(str(exc), EXIT_ERROR)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (ConfigError, ModelError) as exc:
        if args.debug:
            raise
        return fail(str(exc), exit_code_for(exc))
    return EXIT_OK
