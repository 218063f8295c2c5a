"""`rlm-code serve-local`: run the local protocol server in the foreground.

For offline development and tests: one loopback port that speaks the OpenAI, Anthropic, Gemini,
Ollama, TGI and llama.cpp APIs with a deterministic echo model and on-demand faults (see
`rlm_code.testing`). The first stdout line is ``rlm-code local server listening on URL`` so
scripts can read the URL; Ctrl-C or SIGTERM stops it with exit code 0.
"""

from __future__ import annotations

import argparse

from rlm_code.cli.exit_codes import EXIT_ERROR, EXIT_OK, EXIT_USAGE

TYPE_CHECKING = False  # not `from typing import ...`: typing costs start-up time
if TYPE_CHECKING:
    from typing import Any


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve-local",
        help="run the offline local protocol server (fake OpenAI/Anthropic/Gemini/Ollama APIs)",
        description=(
            "Run a local server for offline development and tests. One port speaks the "
            "OpenAI, Anthropic, Gemini, Ollama, TGI and llama.cpp APIs, plain and streamed, "
            "answering with a deterministic echo ('Echo: ' + your last message) and exact "
            "token counts (words). Faults on demand: header 'X-Fault: 429' or model "
            "'fault-429' (also 401, 404, 500, 503, html, malformed, truncate, no_terminator, "
            "bad_utf8, split_utf8, empty, empty_body, drip, hang, no_usage). It listens on "
            "loopback only unless --allow-remote. Stop it with Ctrl-C."
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; non-loopback needs --allow-remote)",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="port to listen on (default 0: any free port)"
    )
    parser.add_argument(
        "--protocols",
        default=None,
        metavar="LIST",
        help=(
            "comma-separated protocols to serve (default all): "
            "openai,anthropic,gemini,ollama,tgi,llamacpp"
        ),
    )
    parser.add_argument(
        "--require-key",
        nargs="?",
        const=True,
        default=None,
        metavar="KEY",
        help="reject requests without this API key (with no KEY: any non-empty key)",
    )
    parser.add_argument(
        "--latency-ms",
        type=int,
        default=0,
        metavar="N",
        help="delay every answer by N milliseconds (default 0)",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME",
        help="add a model name to the listed models (repeatable)",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow binding a non-loopback address (the server accepts fake keys: beware)",
    )
    parser.set_defaults(handler="rlm_code.cli.commands.serve_local:run")


_LABELS = {
    "openai": "OpenAI",
    "anthropic": "Anthropic",
    "gemini": "Gemini",
    "ollama": "Ollama",
    "tgi": "TGI",
    "llamacpp": "llama.cpp",
}


def run(args: argparse.Namespace) -> int:
    import signal
    import sys
    import threading

    from rlm_code.testing.server import LocalProtocolServer

    protocols = None
    if args.protocols:
        protocols = [name.strip() for name in args.protocols.split(",") if name.strip()]
    if args.latency_ms < 0:
        print("rlm-code serve-local: error: --latency-ms must not be negative", file=sys.stderr)
        return EXIT_USAGE
    try:
        server = LocalProtocolServer(
            host=args.host,
            port=args.port,
            protocols=protocols,
            require_key=args.require_key,
            latency_ms=args.latency_ms,
            models=args.model,
            allow_remote=args.allow_remote,
        )
    except ValueError as exc:
        print(f"rlm-code serve-local: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        try:
            server.start()
        except OSError as exc:
            print(
                f"rlm-code serve-local: error: cannot listen: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return EXIT_ERROR
        lines = [f"rlm-code local server listening on {server.base_url}"]
        width = max(len(_LABELS[name]) for name in server.protocols) + 1
        for name, url in server.base_urls.items():
            lines.append(f"  {(_LABELS[name] + ':').ljust(width)} {url}")
        print("\n".join(lines), flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("rlm-code local server stopped", flush=True)
    return EXIT_OK
