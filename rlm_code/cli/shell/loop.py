"""The interactive shell: `rlm-code` with no command.

Type text to chat with the connected model (the reply streams as it arrives and the whole
conversation is sent each turn; the model's reasoning, if it sends any, is shown dimmed before
the answer, see `chat` and `/reasoning`); type `/help` for the slash commands (`/connect`,
`/models`, `/usage`, ...). Tab completes commands, provider names and model names; history is kept
across sessions in `<user config dir>/history` (see `line_editor` and `history` for what is
kept: keys and URL credentials never are).

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
`RLM_CODE_MODEL`, else the config files, which are read only when one exists, else a
running local server's model, else the built-in local server) and opened on a background
thread (`startup`) started just before the prompt, so the prompt appears while the
connector, the HTTP client and perhaps the built-in server load. With stdin not a terminal
there are no prompts, and nothing is loaded until a line needs it.

Errors are one line, `error: <message>`, saying what to do next; `--debug` adds the traceback.
"""

from __future__ import annotations

import os
import sys

from rlm_code.cli.shell.line_editor import Completer, LineEditor
from rlm_code.cli.shell.names import COMMAND_NAMES
from rlm_code.cli.shell.terminal import (
    BOLD_CYAN,
    DIM,
    RED,
    RESET,
    color_ok,
    enable_debug_logging,
    history_entry,
    isatty,
    provider_names,
    strip_controls,
)

# Not `from typing import TYPE_CHECKING`: typing (and threading, contextlib) would cost start-up
# time before the first prompt; they are imported where they are used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence
    from typing import Any, TextIO

    from rlm_code.cli.shell.completion import ModelNames
    from rlm_code.cli.shell.connect import ConnectRequest
    from rlm_code.cli.shell.picker import Terminal
    from rlm_code.cli.shell.startup import Link
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector


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
        self.interactive = isatty(stdin) and isatty(self.out)
        self.model_arg = model
        self.debug = debug
        self.color = color_ok(self.out)
        self.err_color = color_ok(self.err)
        self.editor = LineEditor(self.interactive, scrub=history_entry)
        self.history: list[dict[str, str]] = []
        self.system: str | None = None
        self.show_reasoning = True  # `/reasoning on|off`
        self.link: Link | None = None
        self._term: Terminal | None = None
        self._model_names: ModelNames | None = None
        self._plain_prompt = ""

    # -- start and stop ----------------------------------------------------------------------

    def run(self) -> int:
        """The read-eval loop; returns the exit code."""
        if self.debug:
            enable_debug_logging()
        completer = Completer(COMMAND_NAMES, provider_names, self._completion_models)
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
        from rlm_code.cli.shell.startup import Link, nothing_configured

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
        # Started just before the first prompt (see `loop`), not here.
        if not model and not broken:  # a running local server's model, else the built-in one
            from rlm_code.cli.shell.startup import first_link

            self.link = first_link(config, self.note)
        else:
            self.link = Link(config, model or None, False)
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
            from rlm_code.cli.shell.commands import dispatch

            return self.guard(dispatch, self, text)
        if text.startswith("//"):  # "//text" sends "/text"
            text = text[1:]
        self.guard(self.chat, text)
        return True

    def guard(self, func: Any, *args: Any) -> bool:
        """Call `func`; an error becomes one `error:` line and the shell goes on."""
        try:
            result = func(*args)
        except (KeyboardInterrupt, BrokenPipeError):
            raise
        except Exception as exc:
            self.report(exc)
            return True
        return result is not False

    # -- chat --------------------------------------------------------------------------------

    def chat(self, text: str) -> None:
        """Send `text` with the conversation so far and stream the reply (`shell.chat`)."""
        from rlm_code.cli.shell.chat import chat

        chat(self, text)

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
        from rlm_code.cli.shell.connect import ConnectUsageError, run_picker
        from rlm_code.core.redact import redact, register_secret

        connector = self.connector()
        if request.api_key:
            register_secret(request.api_key)
        if request.model is None:
            run_picker(self, request.provider)
            return
        if request.provider and connector.provider_registry.get(request.provider) is None:
            from rlm_code.cli.shell.connect import unknown_provider_message

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
            from rlm_code.cli.shell.picker import Terminal

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

    @property
    def models(self) -> ModelNames:
        """Model names for Tab and the picker (built on first use: not a start-up cost)."""
        if self._model_names is None:
            from rlm_code.cli.shell.completion import ModelNames

            self._model_names = ModelNames()
        return self._model_names

    def cached_models(self, provider_id: str) -> list[str]:
        """The provider's own model list, if Tab completion has fetched it."""
        return self.models.live(provider_id)

    def _completion_models(self, provider: str) -> list[str]:
        connector = self.link.peek() if self.link is not None else None
        return self.models.for_completion(provider, connector)

    # -- output ------------------------------------------------------------------------------

    def prompt(self) -> str:
        label = self.label()
        self._plain_prompt = f"{label}> "
        if not self.color:
            return self._plain_prompt
        # \001 and \002 tell readline the escapes take no room on screen.
        return f"\001{BOLD_CYAN}\002{label}\001{RESET}\002> "

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
        """A line of information on stdout (dim on a colour terminal); it may quote a
        provider's text (a model name), so it is filtered for the terminal first."""
        text = strip_controls(text)
        if dim and self.color:
            text = f"{DIM}{text}{RESET}"
        self.out.write(text + "\n")
        self.out.flush()

    def info(self, text: str) -> None:
        self.say(text, dim=True)

    def note(self, text: str) -> None:
        """A notice on stderr (like `ask`'s built-in server note)."""
        self.err.write(text + "\n")
        self.err.flush()

    def error(self, message: str) -> None:
        """`error: <message>` as one line on stderr, filtered for the terminal, keys masked."""
        from rlm_code.cli._output import error_line

        text = "error: " + error_line(message)
        if self.err_color:
            text = f"{RED}{text}{RESET}"
        self.out.flush()
        self.err.write(text + "\n")
        self.err.flush()

    def report(self, exc: BaseException, *, prefix: str = "") -> None:
        """One line for an exception; the traceback too with --debug."""
        from rlm_code.cli.shell.connect import ConnectUsageError
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
            self.err.write(redact(strip_controls(text)))
            self.err.flush()

    def _hide_key_echo(self, line: str) -> None:
        """Rewrite the echoed line on screen with its keys masked (`history`'s rule)."""
        if os.environ.get("TERM", "") == "dumb":
            return
        from rlm_code.cli.shell.history import scrub_history_line

        shown = scrub_history_line(line, mask=True)
        if shown == line:
            return
        import shutil

        columns = max(1, shutil.get_terminal_size((80, 24)).columns)
        rows = max(1, -(-(len(self._plain_prompt) + len(line)) // columns))
        self.out.write(f"\x1b[{rows}A\r\x1b[J{self._plain_prompt}{shown}\n")
        self.out.flush()


def run(args: argparse.Namespace) -> int:
    """Entry point used by `rlm_code.cli.main` when no command is given."""
    shell = Shell(model=getattr(args, "model", None), debug=bool(getattr(args, "debug", False)))
    return shell.run()


__all__ = ["Shell", "run"]
