"""`rlm-code discover`: which local model servers answer, and which ACP agents are installed.

Both looks run at the same time (local servers are probed over HTTP, agents are found on
PATH and asked for their version), each bounded by the timeout, so the command takes about
one timeout. It is a report: finding nothing is not an error, so the exit code is 0 unless
the arguments or the config files are wrong (2).

A spinner shows on stderr while probing, only when stderr is a terminal: piped or captured
output never carries control codes. `--json` prints `{"local": [...], "acp": [...]}` (only
the part that ran with `--local-only` / `--acp-only`).

`register` imports nothing (start-up is benchmarked); everything else loads inside `run`.
"""

from __future__ import annotations

from rlm_code.cli.exit_codes import EXIT_OK, EXIT_USAGE

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~1.5 ms at start-up
if TYPE_CHECKING:
    import argparse
    import threading
    from types import TracebackType
    from typing import Any, TextIO

MODELS_SHOWN = 3
LOCAL_HEADERS = ("provider", "URL", "status", "models", "latency", "detail")
ACP_HEADERS = ("agent", "installed", "version", "configured", "detail")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "discover",
        help="find running local model servers and installed ACP coding agents",
        description=(
            "Probe every local provider (see `rlm-code providers --local`) at the URL its "
            "env var, rlm_config.yaml or default gives, and look for ACP coding agents "
            "(Gemini CLI, Claude Code, Codex, goose, ...) on PATH. Everything runs at once, "
            "so this takes about one timeout. Exit code 0 even when nothing is found."
        ),
    )
    parser.add_argument(
        "--json", action="store_true", help='print {"local": [...], "acp": [...]} JSON'
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="S",
        help="seconds to wait for each probe (default: 1.5 for servers, 2 for agents)",
    )
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--local-only", action="store_true", help="only probe local servers")
    only.add_argument("--acp-only", action="store_true", help="only look for ACP agents")
    parser.set_defaults(handler="rlm_code.cli.commands.discover:run")


class _Spinner:
    """A one-line spinner on a terminal stream, drawn from a daemon thread; off elsewhere."""

    def __init__(self, stream: TextIO, text: str) -> None:
        self.stream = stream
        self.text = text
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None
        isatty = getattr(stream, "isatty", None)
        try:
            self.enabled = bool(isatty and isatty())
        except (OSError, ValueError):
            self.enabled = False
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "")
        self.frames = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏" if encoding == "utf8" else "|/-\\"

    def _spin(self) -> None:
        assert self._stop is not None
        index = 0
        while not self._stop.wait(0.08):
            frame = self.frames[index % len(self.frames)]
            index += 1
            try:
                self.stream.write(f"\r{frame} {self.text}")
                self.stream.flush()
            except (OSError, ValueError):
                return

    def __enter__(self) -> _Spinner:
        if self.enabled:
            import threading

            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._spin, name="rlm-spinner", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._thread is None or self._stop is None:
            return
        self._stop.set()
        self._thread.join()
        try:
            self.stream.write("\r\033[K")  # erase the spinner line
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _models_cell(models: list[str]) -> str:
    if not models:
        return "-"
    shown = ", ".join(models[:MODELS_SHOWN])
    more = ", ..." if len(models) > MODELS_SHOWN else ""
    return f"{len(models)}: {shown}{more}"


def _local_rows(results: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for item in results:
        latency = item.get("latency_ms")
        rows.append(
            (
                str(item["provider_id"]),
                str(item["base_url"]),
                "up" if item["healthy"] else "down",
                _models_cell(list(item["models"])) if item["healthy"] else "-",
                f"{latency:.0f} ms" if item["healthy"] and latency is not None else "-",
                str(item["detail"]),
            )
        )
    return rows


def _acp_rows(results: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [
        (
            str(item["agent_id"]),
            "yes" if item["installed"] else "no",
            str(item["version"] or "-"),
            "yes" if item["configured"] else "no",
            str(item["detail"]),
        )
        for item in results
    ]


def _status_style(column: int, value: str) -> str | None:
    if column in (1, 2, 3) and value in ("up", "yes"):
        return "green"
    if value in ("down", "no"):
        return "dim"
    return None


def run(args: argparse.Namespace) -> int:
    import sys
    from concurrent.futures import Future, ThreadPoolExecutor

    from rlm_code.cli._output import fail, print_json, print_table, style, use_color, write
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import ConfigError, InvalidInputError
    from rlm_code.models.providers import acp_discovery, local_discovery
    from rlm_code.models.providers.registry import ProviderRegistry

    if args.timeout is not None:
        try:
            local_discovery.check_timeout(args.timeout)
        except InvalidInputError:
            limit = local_discovery.MAX_TIMEOUT
            return fail(
                f"--timeout must be a number of seconds above 0 and at most {limit:g}, "
                f"got {args.timeout:g}",
                EXIT_USAGE,
            )
    local_timeout = args.timeout or local_discovery.DEFAULT_TIMEOUT
    acp_timeout = args.timeout or acp_discovery.DEFAULT_TIMEOUT
    want_local, want_acp = not args.acp_only, not args.local_only
    config = ConfigManager()

    what = " and ".join(
        name for name, wanted in (("local servers", want_local), ("ACP agents", want_acp)) if wanted
    )
    report: dict[str, list[dict[str, Any]]] = {}
    try:
        with (
            _Spinner(sys.stderr, f"probing {what}..."),
            ThreadPoolExecutor(max_workers=2, thread_name_prefix="rlm-discover") as pool,
        ):
            jobs: dict[str, Future[list[dict[str, Any]]]] = {}
            if want_local:
                jobs["local"] = pool.submit(
                    local_discovery.discover_local_providers,
                    ProviderRegistry.default(),
                    config,
                    local_timeout,
                )
            if want_acp:
                jobs["acp"] = pool.submit(
                    acp_discovery.discover_acp_agents,
                    timeout=acp_timeout,
                    config_manager=config,
                )
            for name, job in jobs.items():
                report[name] = job.result()
    except ConfigError as exc:  # a malformed rlm_config.yaml, user config or .env
        return fail(str(exc), EXIT_USAGE)

    if args.json:
        print_json(report)
        return EXIT_OK

    color = use_color()
    if "local" in report:
        local = report["local"]
        up = sum(1 for item in local if item["healthy"])
        write(style(f"Local model servers ({up} of {len(local)} up)", "bold", color=color))
        print_table(LOCAL_HEADERS, _local_rows(local), cell_style=_status_style)
    if "acp" in report:
        if "local" in report:
            write("")
        agents = report["acp"]
        installed = sum(1 for item in agents if item["installed"])
        title = f"ACP agents ({installed} of {len(agents)} installed)"
        write(style(title, "bold", color=color))
        print_table(ACP_HEADERS, _acp_rows(agents), cell_style=_status_style)
    return EXIT_OK
