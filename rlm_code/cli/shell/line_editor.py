"""Line editing for the interactive shell: stdlib `readline`, tab completion, history file.

Why stdlib readline: prompt_toolkit costs more start-up time than the whole rest of the shell.

History policy (the file is `<user config dir>/history`, mode 0600):

- lines are added by the shell, never by readline itself (auto-history is off), so every line
  is scrubbed first: the API key of a `/connect` line is dropped and anything that looks like
  a key (or a key registered with `rlm_code.core.redact`) is masked;
- a line starting with a space is not remembered (as in bash's `ignorespace`), nor is a line
  equal to the previous one;
- each line is appended at once (a crash loses nothing); the file is cut to the last
  `HISTORY_LENGTH` lines when the shell starts.

Only the standard library is imported at module level: this runs before the first prompt.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing and pathlib stay out of the start-up path
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

HISTORY_FILE = "history"
HISTORY_LENGTH = 1000
WORD_DELIMS = " \t\n"  # model names contain '/', ':', '-' and '.', so only spaces split words


def config_dir(environ: Mapping[str, str] | None = None) -> str:
    """The user config directory: `ConfigManager().user_config_dir`, without importing it.

    Kept in step with `rlm_code.core.config.user_config_dir` (a test compares the two): the
    shell needs the history file before its first prompt, and importing the config module
    (pathlib, dataclasses, logging) there costs a measurable share of the start-up budget.
    """
    env = os.environ if environ is None else environ
    explicit = env.get("RLM_CODE_CONFIG_DIR")
    if explicit:
        return os.path.expanduser(explicit)
    xdg = env.get("XDG_CONFIG_HOME")
    base = os.path.expanduser(xdg) if xdg else os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "rlm-code")


def history_path() -> str:
    return os.path.join(config_dir(), HISTORY_FILE)


class Completer:
    """Completes slash commands, provider ids/aliases, model names and `/reasoning on|off`.

    `providers()` and `models(provider)` are called lazily (on the first Tab), so building the
    completer costs nothing at start-up.
    """

    def __init__(
        self,
        commands: Sequence[str],
        providers: Callable[[], Iterable[str]],
        models: Callable[[str], Iterable[str]],
        model_filters: Sequence[str] = ("local", "cloud"),
    ) -> None:
        self.commands = list(commands)
        self.providers = providers
        self.models = models
        self.model_filters = list(model_filters)
        self._matches: list[str] = []

    def candidates(self, before: str, text: str) -> list[str]:
        """Completions of the word `text`, given the line up to that word (`before`)."""
        words = before.split()
        if not words:
            if text.startswith("/"):
                return [c for c in self.commands if c.startswith(text)]
            return []
        command, args = words[0], words[1:]
        options: list[str] = []
        if command == "/connect":
            if not args:
                if "/" in text:
                    provider = text.split("/", 1)[0]
                    options = [f"{provider}/{m}" for m in self.models(provider)]
                else:
                    options = [f"{p}/" for p in self.providers()] + list(self.providers())
            elif len(args) == 1:
                options = list(self.models(args[0]))
        elif command == "/models" and not args:
            options = [*self.model_filters, *self.providers()]
        elif command == "/reasoning" and not args:
            options = ["on", "off"]
        return sorted({o for o in options if o.startswith(text)})

    def complete(self, text: str, state: int) -> str | None:
        """The readline completer protocol: called with state 0, 1, 2... until None."""
        if state == 0:
            import readline

            line = readline.get_line_buffer()
            begin = readline.get_begidx()
            try:
                self._matches = self.candidates(line[:begin], text)
            except Exception:  # a completer must never break the prompt
                self._matches = []
        return self._matches[state] if state < len(self._matches) else None


class LineEditor:
    """Reads lines with readline on a terminal; plain stdin lines otherwise."""

    def __init__(
        self,
        interactive: bool,
        scrub: Callable[[str], str | None],
        path: str | None = None,
    ) -> None:
        self.interactive = interactive
        self.scrub = scrub
        self.path = path if path is not None else history_path()
        self._readline: Any = None
        self._kick: InterruptKick | None = None
        self._last: str | None = None

    def setup(self, completer: Completer | None) -> None:
        """Load readline and the history file (terminal only; failures just lose history)."""
        if not self.interactive:
            return
        try:
            import readline
        except ImportError:  # Python built without readline: input() still works
            return
        self._readline = readline
        self._kick = InterruptKick.install()
        readline.set_auto_history(False)
        readline.set_history_length(HISTORY_LENGTH)
        if completer is not None:
            readline.set_completer(completer.complete)
            readline.set_completer_delims(WORD_DELIMS)
            if "libedit" in (readline.__doc__ or ""):
                readline.parse_and_bind("bind ^I rl_complete")
            else:
                readline.parse_and_bind("tab: complete")
        try:
            if os.path.exists(self.path):
                readline.read_history_file(self.path)
                if readline.get_current_history_length() > HISTORY_LENGTH:
                    readline.write_history_file(self.path)
        except OSError:
            pass

    def read(self, prompt: str) -> str | None:
        """One line without its newline; None at end of input (Ctrl-D)."""
        if self.interactive:
            kick = self._kick
            saved = _keep_typeahead()
            if kick is not None:
                kick.enter()
            try:
                return input(prompt)
            except EOFError:
                return None
            finally:
                if kick is not None:
                    kick.leave()
                if saved is not None:
                    _restore_terminal(saved)
        import sys

        line = sys.stdin.readline()
        if not line:
            return None
        return line.rstrip("\r\n")

    def read_plain(self, prompt: str, choices: Sequence[str] = ()) -> str | None:
        """A sub-prompt (a model name, say): its own completions, never remembered."""
        readline = self._readline
        if readline is None or not choices:
            if self.interactive:
                return self.read(prompt)
            import sys

            # Piped input is not echoed: show the prompt and end its line, so a transcript
            # of the output reads one question per line.
            sys.stdout.write(prompt)
            answer = self.read(prompt)
            sys.stdout.write("\n")
            sys.stdout.flush()
            return answer
        previous = readline.get_completer()
        options = sorted(set(choices))

        def complete(text: str, state: int) -> str | None:
            found = [o for o in options if o.startswith(text)]
            return found[state] if state < len(found) else None

        readline.set_completer(complete)
        try:
            return self.read(prompt)
        finally:
            readline.set_completer(previous)

    def remember(self, line: str) -> None:
        """Add a line the user entered to the history (scrubbed) and append it to the file."""
        if self._readline is None or not line.strip() or line.startswith(" "):
            return
        entry = self.scrub(line)
        if not entry or entry == self._last:
            return
        self._last = entry
        readline = self._readline
        readline.add_history(entry)
        try:
            self._ensure_file()
            readline.append_history_file(1, self.path)
        except OSError:
            pass

    def _ensure_file(self) -> None:
        if os.path.exists(self.path):
            return
        os.makedirs(os.path.dirname(self.path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)


def _keep_typeahead() -> list[Any] | None:
    """Set NOFLSH on the terminal for the time of one prompt; returns the previous settings.

    Without it, a Ctrl-C makes the terminal drop keys readline has been told about but not
    read yet; readline then blocks reading them, retrying on every signal, and the Ctrl-C
    only takes effect at the next key press.
    """
    try:
        import termios

        fd = 0
        saved = termios.tcgetattr(fd)
        changed = list(saved)
        changed[3] = saved[3] | termios.NOFLSH
        termios.tcsetattr(fd, termios.TCSANOW, changed)
        return saved
    except (ImportError, OSError, ValueError, AttributeError):
        return None


def _restore_terminal(saved: list[Any]) -> None:
    try:
        import termios

        termios.tcsetattr(0, termios.TCSANOW, saved)
    except (ImportError, OSError, ValueError):
        pass


class InterruptKick:
    """Makes Ctrl-C at the prompt work even when it arrives while readline is busy.

    Python's readline loop runs signal handlers only when its `select()` is interrupted. A
    SIGINT that lands while readline is handling keys (typing fast, a paste, then Ctrl-C) is
    recorded but not acted on, and the prompt ignores it until the next key. So the signal is
    also written to a wakeup pipe (`signal.set_wakeup_fd`); a watcher thread that sees it while
    the same `input()` call is still running sends the main thread a few SIGUSR1s, 50 ms
    apart. Each one interrupts `select()`, which then runs the pending SIGINT handler
    (KeyboardInterrupt); SIGUSR1's own handler does nothing, so a late or extra one is harmless.
    """

    KICK_EVERY_S = 0.05
    KICKS = 10

    def __init__(self, read_fd: int) -> None:
        import threading

        self._read_fd = read_fd
        self._main = threading.main_thread().ident
        self._calls = 0  # how many input() calls have started
        self._active = 0  # the number of the input() call in progress, 0 for none
        thread = threading.Thread(target=self._watch, name="rlm-shell-ctrl-c", daemon=True)
        thread.start()

    @classmethod
    def install(cls) -> InterruptKick | None:
        """Set it up (main thread only); None where it cannot work."""
        import signal
        import threading

        if not hasattr(signal, "pthread_kill") or not hasattr(signal, "SIGUSR1"):
            return None
        if threading.current_thread() is not threading.main_thread():
            return None
        if signal.getsignal(signal.SIGUSR1) is not signal.SIG_DFL:
            return None  # someone else uses SIGUSR1
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        try:
            signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        except ValueError:
            os.close(read_fd)
            os.close(write_fd)
            return None
        signal.signal(signal.SIGUSR1, _ignore_signal)
        return cls(read_fd)

    def enter(self) -> None:
        self._calls += 1
        self._active = self._calls

    def leave(self) -> None:
        self._active = 0

    def _watch(self) -> None:
        import signal
        import time

        main = self._main
        while main is not None:
            try:
                data = os.read(self._read_fd, 64)
            except OSError:
                return
            if not data:
                return
            call = self._active
            if signal.SIGINT not in data or not call:
                continue
            for _ in range(self.KICKS):
                time.sleep(self.KICK_EVERY_S)
                if self._active != call:  # that input() call ended: the Ctrl-C was seen
                    break
                signal.pthread_kill(main, signal.SIGUSR1)


def _ignore_signal(signum: int, frame: object) -> None:
    """SIGUSR1 only interrupts a blocking call so that pending handlers run."""


__all__ = ["Completer", "InterruptKick", "LineEditor", "config_dir", "history_path"]
