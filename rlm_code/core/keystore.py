"""The user's own API key store: one JSON file, readable by its owner only (0600).

It is the last place the connector looks for a key, after the `api_key=` argument and the
provider's environment variables. It lives in the user config directory, never in a project,
and is written atomically with 0600 permissions from the first byte (the file is created with
that mode, not chmod-ed afterwards).

As ssh does with its own files, anything that would let another user read, swap or block the
store is refused with a clear error instead of being used: a store others can read, a
`keys.json` that is a symlink, a FIFO or any non-regular file (opened with `O_NOFOLLOW |
O_NONBLOCK` and checked with `fstat`, so nothing blocks or follows a link), a store owned by
another user, and a config directory every user may write to.

Writes are read-modify-write under an exclusive `flock` on the config directory itself, so
concurrent `rlm-code config set-key` runs never lose each other's keys (a lock on the
directory, rather than on a lock file, leaves nothing behind beside `keys.json`).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from rlm_code.core.exceptions import ConfigError
from rlm_code.core.redact import register_secret

_POSIX = os.name == "posix"
_MAX_BYTES = 1024 * 1024  # a store of keys is tiny; a huge file is not ours


def _check_dir(directory: Path) -> None:
    """Refuse a config directory every user may write to, or one another user owns."""
    if not _POSIX:
        return
    try:
        info = directory.stat()
    except FileNotFoundError:
        return
    if info.st_mode & stat.S_IWOTH:
        raise ConfigError(
            f"{directory}: config directory is writable by every user, so another user could "
            f"swap the key store; run `chmod 700 {directory}`"
        )
    if info.st_uid not in (os.getuid(), 0):
        raise ConfigError(
            f"{directory}: config directory belongs to another user; use a directory of your "
            "own (set RLM_CODE_CONFIG_DIR)"
        )


class KeyStore:
    """Provider id -> API key, persisted in `path` with 0600 permissions."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r})"

    def _read(self) -> dict[str, str]:
        _check_dir(self.path.parent)
        text = self._read_text()
        if text is None:
            return {}
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{self.path}:{exc.lineno}: key store is not valid JSON; fix it or delete it and "
                "store keys again"
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ConfigError(f"{self.path}: key store must be a JSON object of strings")
        for value in data.values():
            register_secret(value)
        return data

    def _read_text(self) -> str | None:
        """The store's text, or None when there is none; never follows a link or blocks."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP or self.path.is_symlink():
                raise ConfigError(
                    f"{self.path}: key store is a symlink; refusing to follow it (replace it "
                    "with a regular file of your own)"
                ) from None
            raise ConfigError(
                f"{self.path}: cannot open key store ({exc.strerror or type(exc).__name__})"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(
                    f"{self.path}: key store is not a regular file (a FIFO, device or "
                    "directory); remove it and store keys again"
                )
            if _POSIX and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ConfigError(
                    f"{self.path}: key store is readable by other users; "
                    f"run `chmod 600 {self.path}`"
                )
            if _POSIX and info.st_uid != os.getuid():
                raise ConfigError(f"{self.path}: key store belongs to another user; refusing it")
            chunks = []
            size = 0
            while chunk := os.read(fd, 65536):
                chunks.append(chunk)
                size += len(chunk)
                if size > _MAX_BYTES:
                    raise ConfigError(f"{self.path}: key store is too large to be a key store")
        finally:
            os.close(fd)
        try:
            return b"".join(chunks).decode("utf-8")
        except UnicodeDecodeError:
            raise ConfigError(
                f"{self.path}: key store is not valid JSON (not UTF-8); fix it or delete it"
            ) from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the config directory for a read-modify-write."""
        directory = self.path.parent
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_dir(directory)
        if not _POSIX:
            yield
            return
        import fcntl

        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def get(self, provider_id: str) -> str | None:
        return self._read().get(provider_id)

    def providers(self) -> list[str]:
        """Provider ids that have a stored key (never the keys)."""
        return sorted(self._read())

    def set(self, provider_id: str, key: str) -> None:
        register_secret(key)
        with self._locked():
            data = self._read()
            data[provider_id] = key
            self._write(data)

    def delete(self, provider_id: str) -> bool:
        with self._locked():
            data = self._read()
            if data.pop(provider_id, None) is None:
                return False
            self._write(data)
            return True

    def _write(self, data: dict[str, str]) -> None:
        import tempfile  # only when writing: every connect reads the store, few write it

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-", suffix=".tmp")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
