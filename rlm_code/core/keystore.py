"""The user's own API key store: one JSON file, readable by its owner only (0600).

It is the last place the connector looks for a key, after the `api_key=` argument and the
provider's environment variables. It lives in the user config directory, never in a project,
and is written atomically with 0600 permissions from the first byte (the file is created with
that mode, not chmod-ed afterwards). A store that others can read is refused, as ssh does.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path

from rlm_code.core.exceptions import ConfigError
from rlm_code.core.redact import register_secret


class KeyStore:
    """Provider id -> API key, persisted in `path` with 0600 permissions."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"KeyStore({str(self.path)!r})"

    def _read(self) -> dict[str, str]:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return {}
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{self.path}: key store is readable by other users; run `chmod 600 {self.path}`"
            )
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            line = getattr(exc, "lineno", None)
            where = f"{self.path}:{line}" if line else str(self.path)
            raise ConfigError(
                f"{where}: key store is not valid JSON; fix it or delete it and store keys again"
            ) from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ConfigError(f"{self.path}: key store must be a JSON object of strings")
        for value in data.values():
            register_secret(value)
        return data

    def get(self, provider_id: str) -> str | None:
        return self._read().get(provider_id)

    def providers(self) -> list[str]:
        """Provider ids that have a stored key (never the keys)."""
        return sorted(self._read())

    def set(self, provider_id: str, key: str) -> None:
        register_secret(key)
        data = self._read()
        data[provider_id] = key
        self._write(data)

    def delete(self, provider_id: str) -> bool:
        data = self._read()
        if data.pop(provider_id, None) is None:
            return False
        self._write(data)
        return True

    def _write(self, data: dict[str, str]) -> None:
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
