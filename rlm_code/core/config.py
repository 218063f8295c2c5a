"""Configuration: defaults < user config < project file < `.env` < environment.

Where things live:

- project file: `rlm_config.yaml` in the project root (default: the working directory);
- user config: `config.yaml` in `$RLM_CODE_CONFIG_DIR`, else `$XDG_CONFIG_HOME/rlm-code`, else
  `~/.config/rlm-code` (tests point `RLM_CODE_CONFIG_DIR` at a temp dir so a real home is never
  touched); the user's key store `keys.json` (0600) sits beside it;
- `.env` in the project root: read, never copied into `os.environ`;
- environment variables: the providers' own (named by their registry rows: key, base-URL and
  read-timeout variables) and ours (`RLM_CODE_MODEL`, `RLM_CODE_CONNECT_TIMEOUT`,
  `RLM_CODE_READ_TIMEOUT`, `RLM_CODE_MAX_ATTEMPTS`, `RLM_CODE_TRUST_PROJECT_URLS`,
  `RLM_CODE_ALLOW_PLAIN_HTTP`).

Both YAML files accept the same keys (anything else is an error, so no setting silently does
nothing), plus a top-level URL key for each registry row that names one (`config_url_key`,
kept for users of older versions):

    default_model: provider/model         # the default connection
    providers:
      vllm: {base_url: http://gpu-box:8000/v1}
    timeouts: {connect: 10, read: 120}    # seconds
    retries: {max_attempts: 3, backoff_base: 0.5, backoff_max: 20}
    routes:                               # named routes (see rlm_code.models.route_api)
      sub: {model: provider/model, fallbacks: [other/model], max_concurrency: 8}
    route_cooldown: {failures: 3, seconds: 30}

Two settings are honoured only where a cloned project cannot write them — the user config file
(or the real environment, never `.env`): `trust_project_base_urls: true` lets a project's
`rlm_config.yaml`/`.env` set a cloud provider's base URL, and `allow_plain_http: true` allows
plain-http base URLs for cloud providers on hosts other than this machine. A project file
holding either is refused. This module only reports where each value came from; the resolver
(`rlm_code.models.resolve`) applies the policy.

The usage ledger (`rlm_code.models.ledger`) is configured the same way, user config only (a
cloned project must not move it into its own tree, turn on content logging or switch it off):

    ledger: {enabled: true, path: ~/ledgers/rlm.sqlite3, log_content: false}

`$RLM_CODE_LEDGER` (the real environment only, never `.env`) beats the file: `off`/`0`/`false`/
`no` turns recording off, `on`/`1`/`true`/`yes` on, anything else is the database path. The
default path is `$XDG_DATA_HOME/rlm-code/ledger.sqlite3`, else
`~/.local/share/rlm-code/ledger.sqlite3` (the same rule on every platform).

A model's profile (context window, capabilities, `stream_usage`; see
`rlm_code.models.profiles`) may be overridden per `provider/model`, and beats what a live
server or the built-in table says:

    model_profiles: {"PROVIDER/MODEL": {context_window: 32768, supports_tools: true}}

Values are checked when read and, with the same function (`validate_settings`, from
`config_files`, importable from here too), before `set_user_setting` writes them: types,
`provider/model` names, base URLs. API keys never go in these files. YAML anchors and aliases
are refused (an alias bomb would expand without bound). Files are parsed lazily, on first use,
so constructing a `ConfigManager` costs nothing and imports no YAML parser.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlm_code.core.config_files import load_yaml, url_keys, validate_settings
from rlm_code.core.dotenv import parse_dotenv
from rlm_code.core.exceptions import ConfigError
from rlm_code.core.keystore import KeyStore

PROJECT_FILE_NAME = "rlm_config.yaml"
USER_FILE_NAME = "config.yaml"
KEY_STORE_NAME = "keys.json"
CONFIG_DIR_ENV = "RLM_CODE_CONFIG_DIR"
TRUST_PROJECT_URLS_ENV = "RLM_CODE_TRUST_PROJECT_URLS"
ALLOW_PLAIN_HTTP_ENV = "RLM_CODE_ALLOW_PLAIN_HTTP"
LEDGER_ENV = "RLM_CODE_LEDGER"
LEDGER_FILE_NAME = "ledger.sqlite3"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


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


def user_config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The user config directory (XDG on Linux; `RLM_CODE_CONFIG_DIR` wins)."""
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "rlm-code"


@dataclass(frozen=True)
class LedgerSettings:
    """Where the usage ledger lives and what it records.

    `path` is known even when recording is off (`rlm-code usage` still reads an old ledger);
    `source` says what decided `enabled` and `path`: "environment" (`$RLM_CODE_LEDGER`), the
    user config file's path, or "default"."""

    enabled: bool
    path: Path
    log_content: bool = False
    source: str = "default"


def user_data_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Our data directory: `$XDG_DATA_HOME/rlm-code`, else `~/.local/share/rlm-code`."""
    env = os.environ if environ is None else environ
    xdg = env.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg and Path(xdg).is_absolute() else None
    return (base or Path.home() / ".local" / "share") / "rlm-code"


@dataclass(frozen=True)
class _Layer:
    """One parsed config file and whether it belongs to the project (untrusted) or the user."""

    path: Path
    project: bool
    settings: dict[str, Any]


def _lookup(settings: dict[str, Any], dotted_key: str) -> Any:
    node: Any = settings
    for part in dotted_key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


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
        self._layers: tuple[_Layer, ...] = ()
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
        return KeyStore(self.user_config_dir / KEY_STORE_NAME)

    # -- loading ---------------------------------------------------------------------------

    def _settings(self) -> dict[str, Any]:
        merged = self._merged
        if merged is not None:
            return merged
        with self._lock:
            if self._merged is None:
                layered: dict[str, Any] = {}
                layers = []
                for path, project in ((self.user_config_file, False), (self.project_file, True)):
                    data, lines = load_yaml(path)
                    checked = validate_settings(data, path, lines, project=project)
                    layers.append(_Layer(path, project, checked))
                    _deep_merge(layered, copy.deepcopy(checked))  # layers stay unmerged
                self._layers = tuple(layers)
                self._merged = layered
            return self._merged

    def reload(self) -> None:
        """Forget cached files so the next read sees changes on disk."""
        with self._lock:
            self._merged = None
            self._layers = ()
            self._dotenv = None

    def get_env(self, name: str) -> str | None:
        """An environment variable, else the project's `.env` value; blank counts as unset."""
        return self.get_env_source(name)[0]

    def get_env_source(self, name: str) -> tuple[str | None, str | None]:
        """`(value, where)`: `where` is "environment" for the real environment, else the path of
        the project's `.env` file (which a cloned project controls); `(None, None)` if unset."""
        value = self.environ.get(name)
        if value is not None and value.strip():
            return value.strip(), "environment"
        if self._dotenv is None:
            self._dotenv = parse_dotenv(self.dotenv_file)
        value = self._dotenv.get(name)
        if value and value.strip():
            return value.strip(), str(self.dotenv_file)
        return None, None

    def _env_flag(self, name: str) -> bool:
        """A yes/no switch read from the real environment only (never from `.env`)."""
        return self.environ.get(name, "").strip().lower() in _TRUE

    def get(self, dotted_key: str, default: Any = None) -> Any:
        """A merged file setting by dotted path, e.g. `get("timeouts.read")`."""
        value = _lookup(self._settings(), dotted_key)
        return default if value is None else value

    # -- typed settings --------------------------------------------------------------------

    @property
    def default_model(self) -> str | None:
        """The default connection as `provider/model`: `RLM_CODE_MODEL`, else the files."""
        value: str | None = self.get_env("RLM_CODE_MODEL") or self.get("default_model")
        return value

    def provider_base_url(self, provider_id: str) -> str | None:
        """A base URL set in the config files for one provider (env vars are the caller's)."""
        found = self.provider_base_url_source(provider_id)
        return found[0] if found else None

    def provider_base_url_source(
        self, provider_id: str, *, include_project: bool = True
    ) -> tuple[str, Path, bool] | None:
        """`(url, file, from_project)` for the file that sets a provider's base URL: the project
        file beats the user file; in each, `providers.<id>.base_url` beats the row's top-level
        URL key. None when no file sets one (or only the project file, unless included)."""
        self._settings()
        names = [k for k, pid in url_keys().items() if pid == provider_id]
        for layer in reversed(self._layers):
            if layer.project and not include_project:
                continue
            for key in (f"providers.{provider_id}.base_url", *names):
                value = _lookup(layer.settings, key)
                if value:
                    return str(value), layer.path, layer.project
        return None

    @property
    def trusts_project_urls(self) -> bool:
        """The user let project files set cloud base URLs (`$RLM_CODE_TRUST_PROJECT_URLS=1` in
        the real environment, or `trust_project_base_urls: true` in the user config)."""
        return self._env_flag(TRUST_PROJECT_URLS_ENV) or self._user_flag("trust_project_base_urls")

    @property
    def allows_plain_http(self) -> bool:
        """The user allowed plain-http cloud base URLs off this machine
        (`$RLM_CODE_ALLOW_PLAIN_HTTP=1` in the real environment, or `allow_plain_http: true` in
        the user config)."""
        return self._env_flag(ALLOW_PLAIN_HTTP_ENV) or self._user_flag("allow_plain_http")

    def _user_flag(self, key: str) -> bool:
        self._settings()
        return any(
            _lookup(layer.settings, key) is True for layer in self._layers if not layer.project
        )

    def model_profile(self, model_id: str) -> dict[str, Any]:
        """The config files' `model_profiles` overrides for `provider/model` ({} if none)."""
        table = self.get("model_profiles")
        row = table.get(model_id) if isinstance(table, dict) else None
        return dict(row) if isinstance(row, dict) else {}

    @property
    def ledger(self) -> LedgerSettings:
        """The usage ledger's settings: `$RLM_CODE_LEDGER` (real environment only: a project's
        `.env` must not move or silence it), else the user config's `ledger:`, else on at the
        default path (see the module docstring)."""
        enabled = self.get("ledger.enabled", True) is not False
        configured = self.get("ledger.path")
        source = str(self.user_config_file) if configured is not None else "default"
        if configured is not None:
            path = Path(str(configured)).expanduser()
        else:
            path = user_data_dir(self.environ) / LEDGER_FILE_NAME
        if self.get("ledger.enabled") is not None:
            source = str(self.user_config_file)
        raw = self.environ.get(LEDGER_ENV, "").strip()
        if raw:
            source = "environment"
            if raw.lower() in _FALSE:
                enabled = False
            elif raw.lower() in _TRUE:
                enabled = True
            else:
                enabled, path = True, Path(os.path.abspath(Path(raw).expanduser()))
        log_content = self.get("ledger.log_content", False) is True
        return LedgerSettings(enabled, path, log_content, source)

    # -- routes (rlm_code.models.route_api) -------------------------------------------------

    def route_settings(self, name: str) -> tuple[dict[str, Any], bool] | None:
        """`(settings, from_project)` of the route `name` under `routes:` (the project file's
        beats the user's), or None when no file names it."""
        self._settings()
        for layer in reversed(self._layers):
            found = _lookup(layer.settings, "routes")
            if isinstance(found, dict) and isinstance(found.get(name), dict):
                return found[name], layer.project
        return None

    @property
    def route_cooldown(self) -> tuple[int, float]:
        """`(failures, seconds)`: a route target that fails this many times in a row (with an
        error another target could fix) is skipped for that long; `route_cooldown:
        {failures: 3, seconds: 30}` by default."""
        return (
            int(self.get("route_cooldown.failures", 3)),
            float(self.get("route_cooldown.seconds", 30.0)),
        )

    def provider_limits(self, provider_id: str) -> tuple[Any, Any, Any] | None:
        """`(max_concurrency, requests_per_minute, tokens_per_minute)` set for a provider under
        `providers.<id>`, shared by every route to it with the same key and URL; None if unset."""
        values = tuple(
            self.get(f"providers.{provider_id}.{name}")
            for name in ("max_concurrency", "requests_per_minute", "tokens_per_minute")
        )
        return None if values == (None, None, None) else values

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

    def env_seconds(self, env_name: str) -> float | None:
        """A positive number of seconds from an env var (or `.env`); None when unset."""
        value = self._number(env_name, None, None)
        return None if value is None else float(value)

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
        """Write one setting to the user config file, checked first by `validate_settings`
        (the rules used when reading), so nothing stored can break a later read; returns the
        path. Errors name the user config file."""
        import yaml

        path = self.user_config_file
        data, _ = load_yaml(path)
        node = data
        parts = dotted_key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{path}: '{dotted_key}' runs through '{part}', which is a value")
            node = child
        node[parts[-1]] = value
        validate_settings(data, path, project=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".yaml.tmp")
        tmp.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
        self.reload()
        return path


def _deep_merge(target: dict[str, Any], source: dict[str, Any]) -> None:
    for key, value in source.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = value
