"""One resolver: provider, model, key and base URL, for the connector, discovery, config and CLI.

`resolve()` turns what a caller typed (`"anthropic/claude-..."`, `model_type=`, `api_key=`,
`base_url=`) into a `Resolved`: the `Endpoint` an adapter is built from, where the key and the
URL came from, and the adapter class to use. It does every check and no network I/O, and fails
with a typed one-line error (`InvalidInputError`, `ProviderNotFoundError`, `MissingAPIKeyError`,
`InvalidAPIKeyFormatError`). Every key and every credential inside a URL is registered as a
secret before it can reach a message.

Order of precedence:

- provider: `model_type`, else the `provider/` prefix of the model name (ids and aliases,
  case-insensitive);
- key: the argument, the row's env vars in order (environment, then `.env`), the key store;
- base URL: the argument, the row's env var (environment, then `.env`), the config files
  (project, then user), the row's default.

A cloned repository controls its `rlm_config.yaml` and `.env`. So for a cloud (key-bearing)
provider a base URL from those two files is ignored — with one warning on stderr — unless the
user opted in where the project cannot write (`RLM_CODE_TRUST_PROJECT_URLS=1` in the real
environment, or `trust_project_base_urls: true` in the user config). Plain-http cloud URLs are
refused unless the host is this machine or the user allowed it (`RLM_CODE_ALLOW_PLAIN_HTTP=1`
or `allow_plain_http: true` in the user config). Local providers take URLs from anywhere.

Provider quirks are data on the registry row (key prefixes, host[:port] URL forms, a read
timeout variable) or behaviour in the row's `hooks` module, which may define:

- `choose_adapter(endpoint, base_url_source) -> type[Adapter] | None` — another adapter;
- `live_models() -> list[str]` — models listed by a local tool, put first;
- `filter_models(models, key_present) -> list[str]` — e.g. free models only without a key.
"""

from __future__ import annotations

import importlib
import sys
import threading
from dataclasses import dataclass
from types import ModuleType

from rlm_code.core.config import ConfigManager, TimeoutSettings
from rlm_code.core.exceptions import (
    InvalidAPIKeyFormatError,
    InvalidInputError,
    MissingAPIKeyError,
    ProviderNotFoundError,
    RLMCodeError,
)
from rlm_code.core.redact import redact, register_secret
from rlm_code.core.urls import (
    check_base_url,
    has_userinfo,
    is_loopback,
    normalize_host_url,
    register_url_credentials,
)
from rlm_code.models.adapters.base import Adapter, Endpoint, load_adapter
from rlm_code.models.providers.model_catalog import get_superqode_models
from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec


@dataclass(frozen=True)
class Resolved:
    """Everything needed to open one connection; the key stays out of `repr` (Endpoint's)."""

    endpoint: Endpoint
    key_source: str | None  # "argument", "env:NAME", "key store", or None
    base_url_source: str  # "argument", "$ENV_VAR", a config or .env file path, or "default"
    adapter_class: type[Adapter]

    @property
    def route(self) -> str:
        """How calls travel: "http" (raw), "sdk" or "cli"."""
        return self.adapter_class.route

    @property
    def spec(self) -> ProviderSpec:
        return self.endpoint.spec


# -- input checks --------------------------------------------------------------------------


def check_model_name(model_name: object) -> str:
    """A non-empty model name without spaces, control characters or empty path parts."""
    if not isinstance(model_name, str):
        raise InvalidInputError(f"model_name must be a string, got {type(model_name).__name__}")
    name = model_name.strip()
    if not name:
        raise InvalidInputError("model name is empty; e.g. 'ollama/llama3.2' or 'gpt-4o'")
    if any(ch.isspace() or not ch.isprintable() for ch in name):
        raise InvalidInputError(
            f"model name {name!r} contains spaces or control characters; check the spelling"
        )
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise InvalidInputError(f"model name {name!r} has an empty part between slashes")
    return name


def check_optional_str(value: object, what: str) -> str | None:
    """None, or a stripped string (blank counts as None)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    return value.strip() or None


def check_key(spec: ProviderSpec, key: str) -> None:
    """Format checks from the row (prefixes, look-alikes) before any network I/O."""
    register_secret(key)
    if not key.isascii():
        raise InvalidAPIKeyFormatError(
            f"the {spec.display_name} API key contains non-ASCII characters (a pasted quote or "
            "dash?); copy it again",
            provider=spec.provider_id,
        )
    if any(ch.isspace() for ch in key) or not key.isprintable():
        raise InvalidAPIKeyFormatError(
            f"the {spec.display_name} API key contains spaces or control characters; "
            "copy it again without line breaks",
            provider=spec.provider_id,
        )
    if spec.key_prefixes and not key.startswith(spec.key_prefixes):
        wanted = " or ".join(f"'{p}'" for p in spec.key_prefixes)
        raise InvalidAPIKeyFormatError(
            f"{spec.display_name} API keys start with {wanted}; the key given does not",
            provider=spec.provider_id,
            hint=f"Check {' or '.join(spec.api_key_env_vars) or 'the api_key argument'}.",
        )
    for prefix, owner in spec.key_lookalikes:
        if key.startswith(prefix):
            raise InvalidAPIKeyFormatError(
                f"this looks like an {owner} key, not a {spec.display_name} key",
                provider=spec.provider_id,
            )


# -- provider, key ---------------------------------------------------------------------------


def resolve_provider(
    registry: ProviderRegistry, model_name: str, model_type: str | None
) -> ProviderSpec:
    """The row named by `model_type`, else by the model name's `provider/` prefix."""
    supported = ", ".join(s.provider_id for s in registry.list_providers())
    if model_type is not None:
        spec = registry.get(model_type)
        if spec is None:
            raise ProviderNotFoundError(f"unknown provider {model_type!r}; supported: {supported}")
        return spec
    spec = registry.infer_provider_from_model(model_name)
    if spec is None and "/" in model_name:
        prefix = model_name.split("/", 1)[0]
        raise ProviderNotFoundError(
            f"unknown provider {prefix!r} in {model_name!r}; supported: {supported}"
        )
    if spec is None:
        raise ProviderNotFoundError(
            f"cannot tell which provider serves {model_name!r}; name it as provider/model "
            "(e.g. 'anthropic/claude-sonnet-4-5-20250929') or pass model_type. Supported: "
            + supported
        )
    return spec


def find_key(
    config: ConfigManager, spec: ProviderSpec, api_key: str | None
) -> tuple[str | None, str | None]:
    """`(key, source)`: the argument, the row's env vars in order, then the key store."""
    if api_key:
        return api_key, "argument"
    for var in spec.api_key_env_vars:
        value = config.get_env(var)
        if value:
            return value, f"env:{var}"
    stored = config.key_store.get(spec.provider_id)
    if stored:
        return stored, "key store"
    return None, None


def key_present(config: ConfigManager, spec: ProviderSpec) -> bool:
    """Whether a key is set for the row: an env var or the key store (a broken store: False)."""
    if any(config.get_env(var) for var in spec.api_key_env_vars):
        return True
    if not spec.api_key_env_vars and spec.is_local:
        return False
    try:
        return config.key_store.get(spec.provider_id) is not None
    except (RLMCodeError, OSError):
        return False


# -- base URL --------------------------------------------------------------------------------

_warned: set[str] = set()
_warn_lock = threading.Lock()


def warn_once(message: str) -> None:
    """Print a warning to stderr once per process and message: the user must see that a
    setting was ignored, but not on every call."""
    with _warn_lock:
        if message in _warned:
            return
        _warned.add(message)
    print(f"rlm-code: warning: {redact(message)}", file=sys.stderr, flush=True)


def _normalise(spec: ProviderSpec, url: str, source: str) -> str:
    if spec.host_form_port is not None:
        url = normalize_host_url(url, spec.host_form_port, source)
    return check_base_url(url, source)


def configured_base_url(
    config: ConfigManager, spec: ProviderSpec, base_url: str | None = None
) -> tuple[str, str]:
    """`(url, source)` for a row, checked, after the project-file policy (module docstring)."""
    if base_url:
        return check_base_url(base_url, "the base_url argument"), "argument"
    trusted = spec.is_local or config.trusts_project_urls
    if spec.base_url_env_var:
        var = spec.base_url_env_var
        value, where = config.get_env_source(var)
        if value is not None and where is not None:
            register_url_credentials(value)
            if where == "environment" or trusted:
                source = f"${var}" if where == "environment" else where
                return _normalise(spec, value, source), source
            _ignored(spec, f"{var} in {where}")
    found = config.provider_base_url_source(spec.provider_id)
    if found is not None and found[2] and not trusted:
        register_url_credentials(found[0])
        _ignored(spec, f"its base URL in {found[1]}")
        found = config.provider_base_url_source(spec.provider_id, include_project=False)
    if found is not None:
        url, path, _ = found
        register_url_credentials(url)
        return _normalise(spec, url, str(path)), str(path)
    if spec.default_base_url:
        return spec.default_base_url.rstrip("/"), "default"
    raise InvalidInputError(
        f"{spec.display_name} has no default URL; pass base_url or set "
        f"{spec.base_url_env_var or 'its base URL in rlm_config.yaml'}",
        provider=spec.provider_id,
    )


def _ignored(spec: ProviderSpec, what: str) -> None:
    warn_once(
        f"ignoring {what} for {spec.display_name}: a project file may not redirect a cloud "
        "provider's key; set RLM_CODE_TRUST_PROJECT_URLS=1 or trust_project_base_urls: true "
        "in your user config to allow it"
    )


def _check_transport(
    config: ConfigManager, spec: ProviderSpec, url: str, source: str, key: str | None
) -> None:
    """Plain http to a cloud provider off this machine, and userinfo next to a key, are refused."""
    if source == "argument":
        source = "the base_url argument"
    if (
        not spec.is_local
        and url.lower().startswith("http://")
        and not is_loopback(url)
        and not config.allows_plain_http
    ):
        raise InvalidInputError(
            f"refusing plain-http base URL {redact(url)!r} from {source} for "
            f"{spec.display_name}: the key and prompts would travel unencrypted; use https, or "
            "set RLM_CODE_ALLOW_PLAIN_HTTP=1 (or allow_plain_http: true in your user config)",
            provider=spec.provider_id,
        )
    if key is not None and has_userinfo(url):
        raise InvalidInputError(
            f"the base URL from {source} carries user:password@ credentials and an API key is "
            "set too; use one of them",
            provider=spec.provider_id,
        )


def read_timeout(config: ConfigManager, spec: ProviderSpec) -> float:
    """The row's own read-timeout variable, else the configured read timeout."""
    if spec.read_timeout_env_var:
        value = config.env_seconds(spec.read_timeout_env_var)
        if value is not None:
            return value
    return config.timeouts.read


# -- hooks -----------------------------------------------------------------------------------


def provider_hooks(spec: ProviderSpec) -> ModuleType | None:
    """The row's hooks module, imported on first use; None for rows without one."""
    return importlib.import_module(spec.hooks) if spec.hooks else None


def curated_models(config: ConfigManager, spec: ProviderSpec) -> list[str]:
    """The one list of a provider's curated models (connector, `rlm-code models`, shell).

    The hook's live list first, then the catalog, then the row's examples, without
    duplicates; then the hook's filter (e.g. OpenCode without a key: free models only).
    """
    hooks = provider_hooks(spec)
    sources: list[list[str]] = []
    live = getattr(hooks, "live_models", None)
    if live is not None:
        sources.append(list(live()))
    sources += [get_superqode_models(spec.provider_id), list(spec.example_models)]
    models: list[str] = []
    for source in sources:
        for name in source:
            if name not in models:
                models.append(name)
    keep = getattr(hooks, "filter_models", None)
    if keep is not None:
        models = list(keep(models, key_present(config, spec)))
    return models


# -- the resolver ----------------------------------------------------------------------------


def resolve(
    config: ConfigManager,
    registry: ProviderRegistry,
    model_name: object,
    model_type: object = None,
    api_key: object = None,
    base_url: object = None,
) -> Resolved:
    """Resolve and check everything for one connection, without network I/O."""
    name = check_model_name(model_name)
    provider_arg = check_optional_str(model_type, "model_type")
    key_arg = check_optional_str(api_key, "api_key")
    url_arg = check_optional_str(base_url, "base_url")
    if key_arg:
        register_secret(key_arg)
    if url_arg:
        register_url_credentials(url_arg)
    spec = resolve_provider(registry, name, provider_arg)
    model = check_model_name(registry.normalize_model_name(spec.provider_id, name))
    key, key_source = find_key(config, spec, key_arg)
    if key is None and spec.requires_api_key:
        raise MissingAPIKeyError(
            f"{spec.display_name} needs an API key: set "
            + " or ".join(spec.api_key_env_vars)
            + f", pass api_key=, or store one with `rlm-code config set-key {spec.provider_id}`",
            provider=spec.provider_id,
            hint="",
        )
    if key is not None:
        check_key(spec, key)
    url, url_source = configured_base_url(config, spec, url_arg)
    _check_transport(config, spec, url, url_source, key)
    timeouts = config.timeouts
    endpoint = Endpoint(
        spec=spec,
        model=model,
        base_url=url,
        api_key=key,
        timeouts=TimeoutSettings(connect=timeouts.connect, read=read_timeout(config, spec)),
        retry=config.retries,
    )
    adapter_class: type[Adapter] | None = None
    choose = getattr(provider_hooks(spec), "choose_adapter", None)
    if choose is not None:
        adapter_class = choose(endpoint, url_source)
    if adapter_class is None:
        adapter_class = load_adapter(spec.adapter_type)
    return Resolved(endpoint, key_source, url_source, adapter_class)


__all__ = [
    "Resolved",
    "check_key",
    "check_model_name",
    "configured_base_url",
    "curated_models",
    "key_present",
    "read_timeout",
    "resolve",
    "resolve_provider",
    "warn_once",
]
