"""The shell's first connection: how it is chosen cheaply, and opened on a background thread.

Why a thread: importing the connector and its HTTP client (and, on a fresh machine, starting
the built-in local server with aiohttp) takes a few hundred milliseconds, while the prompt
should appear at once. The main thread decides *what* to connect to (cheap), starts this
thread, shows the prompt, and only waits for the connection when something needs it (the
first message, `/connect`, `/status`...). Ctrl-C interrupts that wait.

The choice follows `rlm_code.cli.session`: `--model`, else the default connection
(`RLM_CODE_MODEL`, else `default_model` in the config files), else the model of a running
local server (`rlm_code.cli.first_model`), else the built-in local server, with the same notes
`ask` prints. That last look (`first_link`) runs on the main thread before the first prompt,
so the prompt and the note name the model that will answer; it is bounded by
`first_model.DISCOVERY_TIMEOUT_S` and takes milliseconds when nothing runs (every port
refuses at once).
"""

from __future__ import annotations

import contextlib
import os
import threading

from rlm_code.cli.shell.line_editor import config_dir

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from rlm_code.cli.first_model import FirstModel
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

_WAIT_SLICE_S = 0.05  # Event.wait in slices so Ctrl-C is handled promptly
NOTICE_AFTER_S = 0.5


class Link:
    """Owns the connector (and the built-in server, when used) for the shell's lifetime."""

    def __init__(
        self,
        config: ConfigManager | None,
        model: str | None,
        builtin: bool,
        *,
        first: FirstModel | None = None,
    ) -> None:
        self.config = config
        self.model = model
        self.builtin = builtin
        self.first = first  # a running local server's model, found by `first_link`
        self._stack = contextlib.ExitStack()
        self._ready = threading.Event()
        self._connector: LLMConnector | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def target(self) -> str | None:
        """What the first connection is for, as `provider/model` when known."""
        if self.builtin:
            from rlm_code.cli.session import BUILTIN_MODEL

            return f"openai-compatible/{BUILTIN_MODEL}"
        if self.first is not None:
            return self.first.name
        return self.model

    def start(self) -> None:
        """Start opening the connection (once; later calls do nothing)."""
        if self._thread is not None:
            return
        thread = threading.Thread(target=self._boot, name="rlm-shell-connect", daemon=True)
        self._thread = thread
        thread.start()

    @property
    def pending(self) -> bool:
        """True until the first connection attempt is over (started or not)."""
        return not self._ready.is_set()

    @property
    def busy(self) -> bool:
        """True while the boot thread runs (an import or a connect may be in flight)."""
        return self._thread is not None and not self._ready.is_set()

    def _boot(self) -> None:
        try:
            from rlm_code.models.llm_connector import LLMConnector

            if self.config is None:
                from rlm_code.core.config import ConfigManager

                self.config = ConfigManager()
            connector = LLMConnector(config_manager=self.config)
            self._connector = connector
            if self.builtin:
                from rlm_code.cli.session import BUILTIN_MODEL, builtin_server

                url = self._stack.enter_context(builtin_server())
                connector.connect_to_model(
                    BUILTIN_MODEL, model_type="openai-compatible", base_url=url
                )
            elif self.first is not None:
                first = self.first
                connector.connect_to_model(
                    first.model, model_type=first.provider_id, base_url=first.base_url
                )
            elif self.model:
                connector.connect_to_model(self.model)
        except BaseException as exc:  # reported on the main thread by take_error()
            self._error = exc
        finally:
            self._ready.set()

    def wait(self, notice: Callable[[], object] | None = None) -> LLMConnector:
        """The connector, once the first connection attempt is over (Ctrl-C stops waiting).

        `notice` is called once if the wait lasts longer than `NOTICE_AFTER_S`, to tell the
        user why nothing happens yet.
        """
        self.start()
        waited = 0.0
        while not self._ready.wait(_WAIT_SLICE_S):
            waited += _WAIT_SLICE_S
            if notice is not None and waited >= NOTICE_AFTER_S:
                notice()
                notice = None
        if self._connector is None:  # the import or the constructor failed: try once more here
            from rlm_code.models.llm_connector import LLMConnector

            self._connector = LLMConnector(config_manager=self.config)
        return self._connector

    def take_error(self) -> BaseException | None:
        """The first connection's error, if it failed; returned once."""
        if not self._ready.is_set():
            return None
        error, self._error = self._error, None
        return error

    def peek(self) -> LLMConnector | None:
        """The connector if the first attempt is over, without waiting."""
        return self._connector if self._ready.is_set() else None

    def close(self) -> None:
        """Disconnect and stop the built-in server (only once the boot thread is done)."""
        connector = self._connector if self._ready.is_set() else None
        try:
            if connector is not None:
                connector.close()
        finally:
            self._stack.close()


def first_link(config: ConfigManager | None, note: Callable[[str], object]) -> Link:
    """The shell's link when no model is configured: a running local server's model, else
    the built-in server; `note` gets the one-line notice saying which (as `ask` prints it).

    `config` None means nothing is configured at all (`nothing_configured`): then a plain
    TCP pre-look (`first_model.nothing_listens`) usually settles it without loading aiohttp
    or the config module before the first prompt; otherwise the config is created here, once,
    for the discovery and then the connection.
    """
    from rlm_code.cli.first_model import first_model_note, nothing_listens, pick_first_model
    from rlm_code.cli.session import BUILTIN_NOTE

    if config is None and nothing_listens(os.environ):
        note(BUILTIN_NOTE)
        return Link(None, None, True)
    if config is None:
        from rlm_code.core.config import ConfigManager

        config = ConfigManager()
    pick = pick_first_model(config)
    if pick is None:
        note(BUILTIN_NOTE)
        return Link(config, None, True)
    note(first_model_note(pick))
    return Link(config, pick.name, False, first=pick)


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


__all__ = ["Link", "first_link", "nothing_configured"]
