"""Configuration: defaults < user config < project file < `.env` < environment.

Where things live:

- project file: `rlm_config.yaml` in the project root (default: the working directory);
- user config: `config.yaml` in `$RLM_CODE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/rlm-code`, else
  `~/.config/rlm-code` (tests point `RLM_CODE_CONFIG_DIR` at a temp dir so a real home is never
  touched); the user's key store `keys.json` (0600) sits beside it;
- `.env` in the project root: read, never copied into `os.environ`;
- environment variables: the providers' own (`OLLAMA_HOST`, `OPENAI_API_KEY`, ...) and ours
  (`RLM_CODE_MODEL`, `RLM_CODE_CONNECT_TIMEOUT`, `RLM_CODE_READ_TIMEOUT`,
  `RLM_CODE_MAX_ATTEMPTS`, `OLLAMA_HTTP_TIMEOUT`).

Both YAML files accept the same keys (anything else is an error, so no setting silently does
nothing):

    default_model: ollama/llama3.2        # the default connection, as provider/model
    ollama_endpoint: http://localhost:11434
    providers:
      vllm: {base_url: http://gpu-box:8000/v1}
    timeouts: {connect: 10, read: 120}    # seconds
    retries: {max_attempts: 3, backoff_base: 0.5, backoff_max: 20}

API keys never go in these files: a project file holding one is refused with a pointer to the
env vars and the key store. Files are parsed lazily, on first use, so constructing a
`ConfigManager` costs nothing and imports no YAML parser.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rlm_code.core.exceptions import ConfigError

if TYPE_CHECKING:  # keeps the key store module out of import time
    from rlm_code.core.keystore import KeyStore

PROJECT_FILE_NAME = "rlm_config.yaml"
USER_FILE_NAME = "config.yaml"
KEY_STORE_NAME = "keys.json"
CONFIG_DIR_ENV = "RLM_CODE_CONFIG_DIR"

DEFAULT_OLLAMA_ENDPOINT = "http://localhost:11434"
DEFAULT_OLLAMA_TIMEOUT = 120.0


@dataclass(frozen=True)
class TimeoutSettings:
    """Seconds to wait: `connect` for a TCP/TLS connection, `read` between bytes of an answer."""

    connect: float = 10.0
    read: float = 120.0


@dataclass(frozen=True)
class RetrySettings:
    """Bounded exponential backoff with jitter; `max_attempts` counts the first try."""

    max_attempts: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 20.0


_SCHEMA: dict[str, Any] = {
    "default_model": str,
    "ollama_endpoint": str,
    "providers": {"*": {"base_url": str}},
    "timeouts": {"connect": float, "read": float},
    "retries": {"max_attempts": int, "backoff_base": float, "backoff_max": float},
}


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user config directory (XDG on Linux; `RLM_CODE_CONFIG_DIR` wins)."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "rlm-code"


def _load_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
    """Parse a YAML mapping, returning it with the line number of every key path."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.__class__.__name__})") from None
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(text, Loader=loader)
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}{line}: {problem}; fix the YAML syntax there") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}:1: the config file must be a mapping of settings")
    lines: dict[tuple[str, ...], int] = {}

    def walk(n: Any, prefix: tuple[str, ...]) -> None:
        if isinstance(n, yaml.MappingNode):
            for key_node, value_node in n.value:
                key_path = (*prefix, str(key_node.value))
                lines[key_path] = key_node.start_mark.line + 1
                walk(value_node, key_path)

    walk(node, ())
    return data, lines


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: expected a non-empty string")
        return value.strip()
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: expected a whole number of at least 1")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number of seconds")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{where}: expected a positive, finite number of seconds")
    return number


def _check_provider_name(name: str, where: str) -> None:
    """Settings under `providers:` must name a registry id, or they would do nothing."""
    import difflib

    from rlm_code.models.providers.registry import ProviderRegistry

    registry = ProviderRegistry.default()
    spec = registry.get(name)
    if spec is not None and spec.provider_id == name:
        return
    if spec is not None:
        raise ConfigError(f"{where}: use the provider id '{spec.provider_id}', not '{name}'")
    ids = [s.provider_id for s in registry.list_providers()]
    close = difflib.get_close_matches(name, ids, n=3)
    hint = f"did you mean: {', '.join(close)}?" if close else "known: " + ", ".join(ids)
    raise ConfigError(f"{where}: unknown provider 'providers.{name}'; {hint}")


def _validate(
    data: dict[str, Any], lines: dict[tuple[str, ...], int], path: Path, project: bool
) -> dict[str, Any]:
    def where(key_path: tuple[str, ...]) -> str:
        line = lines.get(key_path)
        return f"{path}:{line}" if line else str(path)

    def check(value: Any, schema: Any, key_path: tuple[str, ...]) -> Any:
        if isinstance(schema, dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where(key_path)}: '{'.'.join(key_path)}' must be a mapping")
            result = {}
            for key, sub in value.items():
                sub_path = (*key_path, str(key))
                if "key" in str(key).lower() and "api" in str(key).lower():
                    raise ConfigError(
                        f"{where(sub_path)}: API keys do not belong in config files; set the "
                        "provider's env var (e.g. OPENAI_API_KEY) or use the key store"
                    )
                if key_path == ("providers",):
                    _check_provider_name(str(key), where(sub_path))
                sub_schema = schema.get(str(key), schema.get("*"))
                if sub_schema is None:
                    allowed = ", ".join(k for k in schema if k != "*")
                    raise ConfigError(
                        f"{where(sub_path)}: unknown setting '{'.'.join(sub_path)}'"
                        f"; known here: {allowed}"
                    )
                result[str(key)] = check(sub, sub_schema, sub_path)
            return result
        return _coerce(value, schema, f"{where(key_path)}: '{'.'.join(key_path)}'")

    del project
    checked: dict[str, Any] = check(data, _SCHEMA, ())
    return checked


class ConfigManager:
    """Reads the layered configuration; never writes an API key anywhere but the key store."""

    def __init__(
        self,
        project_root: str | os.PathLike[str] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.project_root = Path(project_root) if project_root is not None else Path.cwd()
        self._environ = environ
        self._lock = threading.Lock()
        self._merged: dict[str, Any] | None = None
        self._dotenv: dict[str, str] | None = None

    def __repr__(self) -> str:
        return f"ConfigManager(project_root={str(self.project_root)!r})"

    # -- locations -------------------------------------------------------------------------

    @property
    def environ(self) -> Mapping[str, str]:
        return os.environ if self._environ is None else self._environ

    @property
    def project_file(self) -> Path:
        return self.project_root / PROJECT_FILE_NAME

    @property
    def dotenv_file(self) -> Path:
        return self.project_root / ".env"

    @property
    def user_config_dir(self) -> Path:
        return user_config_dir(self.environ)

    @property
    def user_config_file(self) -> Path:
        return self.user_config_dir / USER_FILE_NAME

    @property
    def key_store(self) -> KeyStore:
        from rlm_code.core.keystore import KeyStore

        return KeyStore(self.user_config_dir / KEY_STORE_NAME)

    # -- loading ---------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        merged = self._merged
        if merged is not None:
            return merged
        with self._lock:
            if self._merged is None:
                layered: dict[str, Any] = {}
                for path, project in ((self.user_config_file, False), (self.project_file, True)):
                    data, lines = _load_yaml(path)
                    _deep_merge(layered, _validate(data, lines, path, project))
                self._merged = layered
            return self._merged

    def reload(self) -> None:
        """Forget cached files so the next read sees changes on disk."""
        with self._lock:
            self._merged = None
            self._dotenv = None

    def get_env(self, name: str) -> str | None:
        """An environment variable, else the project's `.env` value; blank counts as unset."""
        value = self.environ.get(name)
        if value is not None and value.strip():
            return value.strip()
        if self._dotenv is None:
            from rlm_code.core.dotenv import parse_dotenv

            self._dotenv = parse_dotenv(self.dotenv_file)
        value = self._dotenv.get(name)
        return value.strip() if value and value.strip() else None

    def get(self, dotted_key: str, default: Any = None) -> Any:
        """A merged file setting by dotted path, e.g. `get("timeouts.read")`."""
        node: Any = self._settings()
        for part in dotted_key.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    # -- typed settings --------------------------------------------------------------------

    @property
    def default_model(self) -> str | None:
        """The default connection as `provider/model`: `RLM_CODE_MODEL`, else the files."""
        value: str | None = self.get_env("RLM_CODE_MODEL") or self.get("default_model")
        return value

    @property
    def ollama_endpoint(self) -> str:
        """Ollama's URL: `OLLAMA_HOST`, then the files, then http://localhost:11434."""
        value = self.get_env("OLLAMA_HOST") or self.provider_base_url("ollama")
        return normalize_ollama_host(value or DEFAULT_OLLAMA_ENDPOINT)

    def provider_base_url(self, provider_id: str) -> str | None:
        """A base URL set in the config files for one provider (env vars are the caller's)."""
        url = self.get(f"providers.{provider_id}.base_url")
        if url is None and provider_id == "ollama":
            url = self.get("ollama_endpoint")
        return str(url) if url else None

    @property
    def timeouts(self) -> TimeoutSettings:
        defaults = TimeoutSettings()
        return TimeoutSettings(
            connect=self._number("RLM_CODE_CONNECT_TIMEOUT", "timeouts.connect", defaults.connect),
            read=self._number("RLM_CODE_READ_TIMEOUT", "timeouts.read", defaults.read),
        )

    @property
    def retries(self) -> RetrySettings:
        defaults = RetrySettings()
        attempts = self._number("RLM_CODE_MAX_ATTEMPTS", "retries.max_attempts", None)
        return RetrySettings(
            max_attempts=int(attempts) if attempts is not None else defaults.max_attempts,
            backoff_base=self.get("retries.backoff_base", defaults.backoff_base),
            backoff_max=self.get("retries.backoff_max", defaults.backoff_max),
        )

    @property
    def ollama_timeout(self) -> float:
        """Read timeout for Ollama: `OLLAMA_HTTP_TIMEOUT`, else an explicitly configured read
        timeout (`RLM_CODE_READ_TIMEOUT` or `timeouts.read`), else 120 s (local models load
        slowly)."""
        value = self._number("OLLAMA_HTTP_TIMEOUT", None, None)
        if value is None:  # an explicitly configured read timeout applies to Ollama too
            value = self._number("RLM_CODE_READ_TIMEOUT", "timeouts.read", None)
        return DEFAULT_OLLAMA_TIMEOUT if value is None else float(value)

    def _number(self, env_name: str, key: str | None, default: Any) -> Any:
        raw = self.get_env(env_name)
        if raw is not None:
            try:
                value = float(raw)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"${env_name}: expected a positive number, got {raw!r}")
            return value
        return self.get(key, default) if key else default

    # -- writing (user config only) --------------------------------------------------------

    def set_user_setting(self, dotted_key: str, value: Any) -> Path:
        """Write one setting to the user config file (validated first); returns the path."""
        import yaml

        path = self.user_config_file
        data, _ = _load_yaml(path)
        node = data
        parts = dotted_key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{path}: '{dotted_key}' runs through '{part}', which is a value")
            node = child
        node[parts[-1]] = value
        _validate(data, {}, path, project=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        self.reload()
        return path


def normalize_ollama_host(value: str) -> str:
    """Accept Ollama's own OLLAMA_HOST forms, as its client reads them.

    `host`, `host:port`, `:port` and full URLs; no port means 11434, except after an explicit
    `http://` (80) or `https://` (443); `0.0.0.0` (a bind address) means this machine.
    """
    from urllib.parse import urlsplit

    raw = value.strip()
    scheme, sep, hostport = raw.partition("://")
    port = 11434
    if not sep:
        scheme, hostport = "http", raw
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    try:
        split = urlsplit(f"{scheme}://{hostport}")
        port = split.port or port
    except ValueError:
        raise ConfigError(f"OLLAMA_HOST: cannot parse {value!r} as host[:port] or a URL") from None
    host = split.hostname or "127.0.0.1"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}{split.path.rstrip('/')}"


def _deep_merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value
