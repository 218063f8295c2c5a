"""The interactive shell: `rlm-code` with no command.

Type text to chat with the connected model (the reply streams as it arrives and the whole
conversation is sent each turn); type `/help` for the slash commands (`/connect`, `/models`,
`/usage`, ...). Tab completes commands, provider names and model names; history is kept
across sessions in `<user config dir>/history` (see `shell_readline` for what is kept).

Keys: Ctrl-C during a reply stops it and returns to the prompt; Ctrl-C at the prompt drops the
line being typed; Ctrl-D at an empty prompt (or `/exit`, `/quit`) leaves with exit code 0.

Conversation history policy:

- a finished reply is kept with its message;
- an interrupted reply (Ctrl-C) is kept as far as it got, followed by the marker
  `INTERRUPTED_MARK`, so the model knows it was cut off; if nothing had arrived yet, the
  message is dropped too (there is nothing to keep);
- a failed call (provider or network error) and an empty reply add nothing: the message
  is not half-sent history, and Up-arrow brings it back to try again;
- the usage of every call, interrupted or not, is counted by the connector (`/usage`).

Start-up (benchmarked against `python -c pass`): this module imports only the standard
library. On a terminal, the connection is chosen before the first prompt (`--model`, else
`RLM_CODE_MODEL`, else the config files, which are read only when one exists, else the
built-in local server) and opened on a background thread (`shell_link`) started just
before the prompt, so the prompt appears while the connector, the HTTP client and perhaps
the built-in server load. With stdin not a terminal there are no prompts, and nothing is
loaded until a line needs it.

Errors are one line, `error: <message>`, saying what to do next; `--debug` adds the traceback.
"""

from __future__ import annotations

import os
import sys

from rlm_code.cli.shell_readline import Completer, LineEditor, config_dir

# Not `from typing import TYPE_CHECKING`: typing (and threading, contextlib) would cost start-up
# time before the first prompt; they are imported where they are used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Generator, Sequence
    from typing import Any, TextIO

    from rlm_code.cli.picker import Terminal
    from rlm_code.cli.shell_connect import ConnectRequest
    from rlm_code.cli.shell_link import Link
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

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
    "/help",
    "/exit",
    "/quit",
)
INTERRUPTED_MARK = "[reply interrupted by the user]"
KEY_SHOWN_AS = "********"

_BOLD_CYAN = "\x1b[1;36m"
_DIM = "\x1b[2m"
_RED = "\x1b[31m"
_RESET = "\x1b[0m"


def color_ok(stream: TextIO) -> bool:
    """Colour only on a terminal and never with `NO_COLOR` (same rule as `_output.use_color`,
    repeated here so the first prompt does not pay for importing that module)."""
    if os.environ.get("NO_COLOR"):
        return False
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


class Shell:
    """One interactive session: the line loop, the conversation and the connection.

    `stdin`, `stdout` and `stderr` default to the process streams; `stdin` only decides
    whether the session is interactive (lines are always read from the process's stdin).
    """

    def __init__(
        self,
        *,
        model: str | None = None,
        debug: bool = False,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self.out = stdout or sys.stdout
        self.err = stderr or sys.stderr
        stdin = stdin or sys.stdin
        self.interactive = _isatty(stdin) and _isatty(self.out)
        self.model_arg = model
        self.debug = debug
        self.color = color_ok(self.out)
        self.err_color = color_ok(self.err)
        self.editor = LineEditor(self.interactive, scrub=scrub_history_line)
        self.history: list[dict[str, str]] = []
        self.system: str | None = None
        self.link: Link | None = None
        self._term: Terminal | None = None
        self._models: dict[str, list[str]] = {}
        self._fetching: set[str] = set()
        self._plain_prompt = ""

    # -- start and stop ----------------------------------------------------------------------

    def run(self) -> int:
        """The read-eval loop; returns the exit code."""
        if self.debug:
            _enable_debug_logging()
        completer = Completer(COMMAND_NAMES, _provider_names, self._completion_models)
        self.editor.setup(completer)
        code = 1  # an exception escaping the loop is a bug (main prints it)
        try:
            if self.interactive:
                from rlm_code import __version__

                self.say(
                    f"rlm-code {__version__}: type a message to chat, /help for commands, "
                    "Ctrl-D to leave.",
                    dim=True,
                )
                self.start_link()
            code = self.loop()
        except KeyboardInterrupt:  # only when stdin is not a terminal: stop, like `ask`
            code = 130
            raise
        finally:
            self.shutdown(code)
        return code

    def start_link(self) -> Link:
        """Choose the first connection (as `ask` does) and prepare to open it (once).

        Nothing configured at all (the fresh-machine case) is recognised without loading the
        config module; otherwise `ConfigManager().default_model` decides.
        """
        if self.link is not None:
            return self.link
        from rlm_code.cli.shell_link import Link

        config: ConfigManager | None = None
        # `RLM_CODE_MODEL` wins over the files (as in `ConfigManager.default_model`), so it
        # too is read without loading the config module.
        model = self.model_arg or os.environ.get("RLM_CODE_MODEL", "").strip() or None
        broken = False
        if not model and not nothing_configured():
            from rlm_code.core.config import ConfigManager
            from rlm_code.core.exceptions import ConfigError

            config = ConfigManager()
            try:
                model = config.default_model
            except ConfigError as exc:
                self.report(exc)
                self.say("starting without a connection; fix the config or use /connect", dim=True)
                broken = True
        builtin = not model and not broken
        if builtin:
            from rlm_code.cli.session import BUILTIN_NOTE

            self.note(BUILTIN_NOTE)
        # Started just before the first prompt (see `loop`), not here.
        self.link = Link(config, model or None, builtin)
        return self.link

    def shutdown(self, code: int) -> None:
        """Close the connection and the built-in server; never wait for a connect in flight."""
        link = self.link
        if link is not None and link.busy:
            # The boot thread may be inside an import or a connect with a long timeout; there
            # is nothing of ours to save (history is appended line by line), so leave now.
            import contextlib

            for stream in (self.out, self.err):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(code)
        if link is not None:
            try:
                link.close()
            except Exception as exc:
                if self.debug:
                    self.report(exc)

    # -- the loop ----------------------------------------------------------------------------

    def loop(self) -> int:
        while True:
            self.report_boot_error()
            prompt = self.prompt() if self.interactive else ""
            if self.link is not None:
                self.link.start()
            try:
                line = self.editor.read(prompt)
            except KeyboardInterrupt:
                if not self.interactive:
                    raise
                self.out.write("\n")  # Ctrl-C at the prompt: drop the line, fresh prompt
                continue
            if line is None:
                if self.interactive:
                    self.out.write("\n")
                return 0
            if self.interactive:
                self.editor.remember(line)
                self._hide_key_echo(line)
            try:
                if not self.handle(line):
                    return 0
            except KeyboardInterrupt:
                if not self.interactive:
                    raise
                self.out.write("\n")
                self.say("cancelled", dim=True)

    def handle(self, line: str) -> bool:
        """Run one line; False means leave the shell."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/") and not text.startswith("//"):
            from rlm_code.cli import shell_commands

            return self.guard(shell_commands.dispatch, self, text)
        if text.startswith("//"):  # "//text" sends "/text"
            text = text[1:]
        self.guard(self.chat, text)
        return True

    def guard(self, func: Any, *args: Any) -> bool:
        """Call `func`; an error becomes one `error:` line and the shell goes on."""
        try:
            result = func(*args)
        except KeyboardInterrupt:
            raise
        except Exception as exc:
            self.report(exc)
            return True
        return result is not False

    # -- chat --------------------------------------------------------------------------------

    def chat(self, text: str) -> None:
        """Send `text` with the conversation so far and stream the reply."""
        connector = self.connector()
        if not connector.get_connection_status()["connected"]:
            self.error("not connected; use /connect <provider> <model>, or /connect to pick one")
            return
        stream = connector.stream_response(
            text,
            system_prompt=self.system,
            context={"conversation_history": list(self.history)},
        )
        parts: list[str] = []
        interrupted = False
        failure: Exception | None = None
        out = self.out
        clean = _strip_controls if self.interactive else _keep
        try:
            for chunk in stream:
                parts.append(chunk)
                out.write(clean(chunk))
                out.flush()
        except KeyboardInterrupt:
            interrupted = True
        except Exception as exc:
            failure = exc
        finally:
            _close_quietly(stream)
        reply = "".join(parts)
        if reply and not reply.endswith("\n"):
            out.write("\n")
        out.flush()
        if failure is not None:
            self.report(failure)
            return
        if interrupted:
            if reply:
                self.say("(reply interrupted; the part shown stays in the conversation)", dim=True)
                self._remember_turn(text, reply.rstrip() + "\n" + INTERRUPTED_MARK)
            else:
                self.out.write("\n")
                self.say("(interrupted before the reply started; nothing was kept)", dim=True)
            return
        if not reply:
            self.say("(the model sent an empty reply; nothing was kept)", dim=True)
            return
        self._remember_turn(text, reply)

    def _remember_turn(self, text: str, reply: str) -> None:
        self.history.append({"role": "user", "content": text})
        self.history.append({"role": "assistant", "content": reply})

    # -- connection --------------------------------------------------------------------------

    def connector(self) -> LLMConnector:
        """The connector, once the first connection attempt is over."""
        link = self.start_link()
        connector = link.wait(
            notice=lambda: (
                self.say(f"connecting to {link.target or 'the model'}...", dim=True)
                if self.interactive
                else None
            )
        )
        self.report_boot_error()
        return connector

    def report_boot_error(self) -> None:
        link = self.link
        error = link.take_error() if link is not None else None
        if error is None:
            return
        if isinstance(error, KeyboardInterrupt | SystemExit):
            return
        target = link.target if link is not None else None
        self.report(error, prefix=f"could not connect to {target}: " if target else "")
        self.say("use /connect to choose another model", dim=True)

    def connect(self, request: ConnectRequest) -> None:
        """Open a new connection (replacing the current one only when it succeeds)."""
        from rlm_code.cli.shell_connect import ConnectUsageError, run_picker
        from rlm_code.core.redact import redact, register_secret

        connector = self.connector()
        if request.api_key:
            register_secret(request.api_key)
        if request.model is None:
            run_picker(self, request.provider)
            return
        if request.provider and connector.provider_registry.get(request.provider) is None:
            from rlm_code.cli.shell_connect import unknown_provider_message

            raise ConnectUsageError(unknown_provider_message(request.provider, connector))
        connector.connect_to_model(
            request.model,
            model_type=request.provider,
            api_key=request.api_key,
            base_url=request.base_url,
        )
        status = connector.get_connection_status()
        where = redact(str(status.get("base_url") or ""))
        self.say(f"connected to {status['model_id']} ({status['provider_name']} at {where})")

    @property
    def term(self) -> Terminal:
        """How pickers read and write (built on first use)."""
        if self._term is None:
            from rlm_code.cli.picker import Terminal

            self._term = Terminal.detect(
                self.editor.read_plain, self._read_secret, color=self.color
            )
        return self._term

    def _read_secret(self, prompt: str) -> str | None:
        if not self.interactive:
            return self.editor.read_plain(prompt)
        import getpass

        try:
            return getpass.getpass(prompt)
        except EOFError:
            return None

    def read_name(self, prompt: str, choices: Sequence[str]) -> str | None:
        return self.editor.read_plain(prompt, choices)

    def cached_models(self, provider_id: str) -> list[str]:
        return list(self._models.get(provider_id, ()))

    def _completion_models(self, provider: str) -> list[str]:
        """Model names for Tab: the catalog, plus the connected provider's own list once
        fetched (fetched in the background on the first Tab, never blocking the prompt)."""
        from rlm_code.models.providers.model_catalog import get_superqode_models
        from rlm_code.models.providers.registry import ProviderRegistry

        spec = ProviderRegistry.default().get(provider)
        if spec is None:
            return []
        names = list(get_superqode_models(spec.provider_id) or spec.example_models)
        connector = self.link.peek() if self.link is not None else None
        if connector is not None:
            status = connector.get_connection_status()
            if status["connected"] and status["provider"] == spec.provider_id:
                self._fetch_models(connector, spec.provider_id)
        return names + self.cached_models(spec.provider_id)

    def _fetch_models(self, connector: LLMConnector, provider_id: str) -> None:
        if provider_id in self._models or provider_id in self._fetching:
            return
        self._fetching.add(provider_id)

        import threading

        def fetch() -> None:
            try:
                self._models[provider_id] = list(connector.list_models())
            except Exception:  # completion is best effort
                self._models[provider_id] = []

        threading.Thread(target=fetch, name="rlm-shell-models", daemon=True).start()

    # -- output ------------------------------------------------------------------------------

    def prompt(self) -> str:
        label = self.label()
        self._plain_prompt = f"{label}> "
        if not self.color:
            return self._plain_prompt
        # \001 and \002 tell readline the escapes take no room on screen.
        return f"\001{_BOLD_CYAN}\002{label}\001{_RESET}\002> "

    def label(self) -> str:
        """`provider/model` of the connection (or of the one being opened)."""
        link = self.link
        if link is None:
            return "not connected"
        if link.pending:
            return link.target or "not connected"
        connector = link.peek()
        if connector is None:
            return "not connected"
        status = connector.get_connection_status()
        return str(status["model_id"]) if status["connected"] else "not connected"

    def say(self, text: str, *, dim: bool = False) -> None:
        """A line of information on stdout (dim on a colour terminal)."""
        if dim and self.color:
            text = f"{_DIM}{text}{_RESET}"
        self.out.write(text + "\n")
        self.out.flush()

    def info(self, text: str) -> None:
        self.say(text, dim=True)

    def note(self, text: str) -> None:
        """A notice on stderr (like `ask`'s built-in server note)."""
        self.err.write(text + "\n")
        self.err.flush()

    def error(self, message: str) -> None:
        """`error: <message>` as one line on stderr, keys masked."""
        from rlm_code.core.redact import redact

        text = "error: " + redact(" ".join(message.split()))
        if self.err_color:
            text = f"{_RED}{text}{_RESET}"
        self.out.flush()
        self.err.write(text + "\n")
        self.err.flush()

    def report(self, exc: BaseException, *, prefix: str = "") -> None:
        """One line for an exception; the traceback too with --debug."""
        from rlm_code.cli.shell_connect import ConnectUsageError
        from rlm_code.core.exceptions import MissingAPIKeyError, RLMCodeError

        if isinstance(exc, RLMCodeError | ConnectUsageError):
            message = str(exc)
            if isinstance(exc, MissingAPIKeyError):
                provider = exc.provider or "<provider>"
                message = (
                    f"{message.rstrip('. ')}; or give it here: /connect {provider} <model> <key>"
                    " (the key is never shown nor saved)"
                )
        else:
            message = (
                f"unexpected {type(exc).__name__}: {exc}. This is a bug; run `rlm-code --debug` "
                "to see the traceback"
            )
        self.error(prefix + message)
        if self.debug:
            import traceback

            from rlm_code.core.redact import redact

            text = "".join(traceback.format_exception(exc))
            self.err.write(redact(text))
            self.err.flush()

    def _hide_key_echo(self, line: str) -> None:
        """Rewrite the echoed `/connect ... KEY` line on screen with the key masked."""
        if os.environ.get("TERM", "") == "dumb":
            return
        shown = scrub_history_line(line, mask=True)
        if shown is None or shown == line:
            return
        import shutil

        columns = max(1, shutil.get_terminal_size((80, 24)).columns)
        rows = max(1, -(-(len(self._plain_prompt) + len(line)) // columns))
        self.out.write(f"\x1b[{rows}A\r\x1b[J{self._plain_prompt}{shown}\n")
        self.out.flush()


def scrub_history_line(line: str, *, mask: bool = False) -> str | None:
    """The line as it may be stored or shown: no `/connect` key, key-shaped text masked."""
    words = line.split()
    if words and words[0] == "/connect":
        from rlm_code.cli.shell_connect import scrub_connect_line

        scrubbed = scrub_connect_line(line)
        if mask and scrubbed != " ".join(words):
            kept = scrubbed.split()
            shown = [w if w in kept else KEY_SHOWN_AS for w in words]
            return " ".join(shown)
        line = scrubbed
    from rlm_code.core.redact import redact

    return redact(line)


def nothing_configured() -> bool:
    """True when no source could name a default model: no `RLM_CODE_MODEL`, no `.env` or
    `rlm_config.yaml` in the working directory, no user `config.yaml`.

    Then `ConfigManager().default_model` is None for sure (a test checks the two agree), and
    the shell can pick the built-in server without importing the config module, which is the
    largest single cost before the first prompt.
    """
    if os.environ.get("RLM_CODE_MODEL", "").strip():
        return False
    cwd = os.getcwd()
    files = (
        os.path.join(config_dir(), "config.yaml"),
        os.path.join(cwd, "rlm_config.yaml"),
        os.path.join(cwd, ".env"),
    )
    return not any(os.path.exists(path) for path in files)


# Control characters a reply could use to rewrite the screen or the window title (ESC
# sequences, carriage returns, bells...); a terminal shows replies without them.
_CONTROLS = {code: None for code in (*range(0x20), 0x7F) if code not in (0x09, 0x0A)}


def _strip_controls(text: str) -> str:
    return text.translate(_CONTROLS)


def _keep(text: str) -> str:
    return text


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, OSError, ValueError):
        return False


def _close_quietly(stream: Generator[str, None, None]) -> None:
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


def _provider_names() -> list[str]:
    from rlm_code.models.providers.registry import ProviderRegistry

    return ProviderRegistry.default().names()


def _enable_debug_logging() -> None:
    import logging

    from rlm_code.core.redact import install_log_redaction

    install_log_redaction()  # masks keys in every record, the HTTP libraries' ones included
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    logger = logging.getLogger("rlm_code")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)


def run(args: argparse.Namespace) -> int:
    """Entry point used by `rlm_code.cli.main` when no command is given."""
    shell = Shell(model=getattr(args, "model", None), debug=bool(getattr(args, "debug", False)))
    return shell.run()


__all__ = ["COMMAND_NAMES", "INTERRUPTED_MARK", "Shell", "run", "scrub_history_line"]
