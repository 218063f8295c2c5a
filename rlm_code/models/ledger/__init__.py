"""The usage ledger: every call, one row in a SQLite file that outlives the process.

The call path hands each finished or failed call's `CallRecord` to `Ledger.write`, which
commits one INSERT before it returns, so a process killed right after a call has lost nothing
it finished. Why these choices:

- WAL journal, `synchronous=NORMAL`: a commit is one append to the WAL file, durable against
  a crash of the process (not of the machine), and readers never block the writer. Many
  processes share the file; each waits up to `BUSY_TIMEOUT_S` for the write lock.
- One connection per `Ledger`, opened on first use and guarded by a lock, so threads share it
  and `import rlm_code.models.ledger` imports no `sqlite3`. A forked child drops the
  connection it inherited (SQLite connections must not cross `fork`) and opens its own.
- A failed write (disk full, locked past the timeout, an unreadable file) logs one redacted
  warning and returns: the user's call succeeded and must not fail because its receipt
  could not be kept. After a failure to open, the ledger tries again after
  `REOPEN_AFTER_S` rather than on every call.
- Keys are never stored: every text column passes through `rlm_code.core.redact.redact`
  (registered keys and key shapes). Prompts and replies are stored only with `log_content`.

Settings (`Ledger.from_settings`) come from `ConfigManager.ledger`: `$RLM_CODE_LEDGER`, else
the user config's `ledger:` mapping, else on at `$XDG_DATA_HOME/rlm-code/ledger.sqlite3`.
The file is created 0600 (its WAL and shared-memory files inherit that) in a 0700 directory.
The schema and its migrations are in `schema`; the sums behind `rlm-code usage` in `summary`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import weakref
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlm_code.core.exceptions import InvalidInputError, RLMCodeError
from rlm_code.core.redact import redact
from rlm_code.models.ledger.schema import INSERT, NewerSchemaError, migrate
from rlm_code.models.ledger.summary import GROUPS, summarize

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

    from rlm_code.core.config import ConfigManager
    from rlm_code.models.call_record import CallRecord
    from rlm_code.models.types import Usage

__all__ = ["BUSY_TIMEOUT_S", "GROUPS", "Ledger", "LedgerError"]

log = logging.getLogger("rlm_code.ledger")

BUSY_TIMEOUT_S = 5.0  # how long a write waits for another process's write lock
REOPEN_AFTER_S = 30.0  # after the file could not be opened, when to try again
_TEXT_CACHE_MAX = 1024  # redacted model and scope names kept (they repeat on every call)


class LedgerError(RLMCodeError):
    """The ledger file cannot be read (not a database, a newer schema, no permission)."""


class Ledger:
    """One ledger file. Cheap to make (no I/O until the first write or summary); thread-safe.

    `log_content` says whether prompts and replies are stored (the call path reads it to
    decide whether to put them on the `CallRecord`; `write` drops them when it is off).
    """

    def __init__(self, path: str | os.PathLike[str], *, log_content: bool = False) -> None:
        self.path = Path(path)
        self.log_content = log_content
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._retry_at = 0.0  # time.monotonic() before which a failed open is not retried
        self._warned = False  # a failure was logged; quiet until a write succeeds again
        self._clean_cache: dict[str, str] = {}
        _LEDGERS.add(self)

    def __repr__(self) -> str:
        return f"Ledger(path={str(self.path)!r}, log_content={self.log_content})"

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def from_settings(cls, config_manager: ConfigManager | None = None) -> Ledger | None:
        """The ledger the settings ask for, or None when recording is off (see
        `ConfigManager.ledger`). No file is touched here."""
        if config_manager is None:
            from rlm_code.core.config import ConfigManager

            config_manager = ConfigManager()
        settings = config_manager.ledger
        if not settings.enabled:
            return None
        return cls(settings.path, log_content=settings.log_content)

    # -- opening ---------------------------------------------------------------------------

    def _open(self) -> sqlite3.Connection:
        """Open (creating the directory 0700 and the file 0600) and migrate. Lock held."""
        import sqlite3

        connection = self._connection
        if connection is not None:
            return connection
        if not self.path.parent.is_dir():
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        os.close(os.open(self.path, flags, 0o600))
        connection = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,  # autocommit: each INSERT is its own committed transaction
            check_same_thread=False,  # shared between threads, serialised by self._lock
        )
        try:
            mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                connection.execute("PRAGMA journal_mode = WAL")
            connection.execute("PRAGMA synchronous = NORMAL")
            migrate(connection)
        except BaseException:
            connection.close()
            raise
        self._connection = connection
        return connection

    def _read_connection(self) -> sqlite3.Connection:
        """The open connection for a read; `LedgerError` (one line) when the file is unusable.
        Lock held."""
        import sqlite3

        try:
            return self._open()
        except NewerSchemaError as exc:
            raise LedgerError(f"{self.path}: {exc}") from None
        except (sqlite3.Error, OSError) as exc:
            raise LedgerError(
                f"{self.path}: cannot read the usage ledger ({_reason(exc)}); "
                "check the file or point RLM_CODE_LEDGER at another one"
            ) from None

    # -- writing ---------------------------------------------------------------------------

    def write(self, record: CallRecord) -> None:
        """Store one call; committed when this returns. Never raises for a storage problem
        (see the module docstring): it logs one warning and the call goes on."""
        import sqlite3

        try:
            row = self._row(record)
        except (TypeError, ValueError) as exc:  # a malformed record: say so, do not crash
            self._failed(exc)
            return
        with self._lock:
            if self._connection is None and time.monotonic() < self._retry_at:
                return
            try:
                connection = self._open()
            except (sqlite3.Error, OSError, NewerSchemaError) as exc:
                self._retry_at = time.monotonic() + REOPEN_AFTER_S
                self._failed(exc)
                return
            try:
                connection.execute(INSERT, row)
            except sqlite3.Error as exc:
                self._failed(exc)
                return
            self._warned = False

    def _failed(self, exc: BaseException) -> None:
        if self._warned:
            return
        self._warned = True
        log.warning(
            "%s",
            redact(
                f"usage ledger: could not record a call in {self.path} ({_reason(exc)}); "
                "the call itself is not affected"
            ),
        )

    def _row(self, record: CallRecord) -> tuple[Any, ...]:
        usage = record.usage
        cost_usd: float | None = None
        cost_source: str | None = None
        if record.error_type is None or usage.known or usage.reported_cost_usd is not None:
            if usage.priced_as is None and record.provider:
                usage = replace(usage, priced_as=(record.provider, record.model))
            cost_usd, cost_source = _price(usage)
        log_content = self.log_content
        return (
            float(record.at),
            self._clean(record.provider),
            self._clean(record.model),
            self._clean("/".join(record.scopes)) if record.scopes else None,
            _tags_json(record.tags) if record.tags else None,
            usage.input_tokens,
            usage.output_tokens,
            usage.cache_read_tokens,
            usage.cache_write_tokens,
            usage.cache_write_1h_tokens,
            usage.reasoning_tokens,
            cost_usd,
            cost_source,
            None if record.latency_ms is None else float(record.latency_ms),
            None if record.finish_reason is None else self._clean(record.finish_reason),
            int(bool(record.streamed)),
            int(bool(record.interrupted)),
            None if record.error_type is None else self._clean(record.error_type),
            redact(record.prompt) if log_content and record.prompt is not None else None,
            redact(record.reply) if log_content and record.reply is not None else None,
        )

    def _clean(self, text: str) -> str:
        """`redact(text)`, remembered: model and scope names repeat on every call."""
        cache = self._clean_cache
        clean = cache.get(text)
        if clean is None:
            if len(cache) >= _TEXT_CACHE_MAX:
                cache.clear()
            clean = cache[text] = redact(str(text))
        return clean

    # -- reading ---------------------------------------------------------------------------

    def summary(self, since: float | None = None, by: str | None = None) -> dict[str, Any]:
        """Totals since `since` (Unix time; None: every call) and, when `by` is "model",
        "day", "scope" or "provider", one row per group (see `summary.summarize` for the
        figures). A ledger file that does not exist yet reads as empty and is not created."""
        if by is not None and by not in GROUPS:
            raise InvalidInputError(
                f"cannot group usage by {by!r}; use one of: {', '.join(GROUPS)}"
            )
        with self._lock:
            if self._connection is None and not self.path.exists():
                result = summarize(None, since, by)
            else:
                import sqlite3

                connection = self._read_connection()
                try:
                    result = summarize(connection, since, by)
                except sqlite3.Error as exc:
                    raise LedgerError(
                        f"{self.path}: cannot read the usage ledger ({_reason(exc)})"
                    ) from None
        result["path"] = str(self.path)
        return result

    def close(self) -> None:
        """Release the connection (a later write or summary opens it again)."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None:
                connection.close()


def _price(usage: Usage) -> tuple[float | None, str | None]:
    """The usage's cost, or unknown when pricing itself fails: the ledger records what it
    knows and never turns a pricing problem into a failed call."""
    try:
        cost, source = usage.cost
    except Exception as exc:
        log.debug("usage ledger: pricing failed (%s)", type(exc).__name__)
        return None, None
    return (None if cost is None else float(cost)), source


def _tags_json(tags: Mapping[str, Any]) -> str:
    """Tags as a JSON object, each name and value redacted on its own (redacting the JSON
    text as a whole could cut a quoted value and break the JSON)."""
    clean = {redact(str(key)): redact(str(value)) for key, value in tags.items()}
    return json.dumps(clean, sort_keys=True, ensure_ascii=False)


def _reason(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# -- fork safety: a child must not use the SQLite connection its parent opened ------------------

_LEDGERS: weakref.WeakSet[Ledger] = weakref.WeakSet()
_INHERITED: list[object] = []  # parents' connections: kept, never closed, in a forked child


def _after_fork_in_child() -> None:
    for ledger in list(_LEDGERS):
        ledger._lock = threading.Lock()  # another thread may have held it at the fork
        if ledger._connection is not None:
            _INHERITED.append(ledger._connection)
            ledger._connection = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
