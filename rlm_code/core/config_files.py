"""Config files: parse them safely and check every value, with one rule for reading and writing.

`load_yaml` parses a file into a mapping plus the line of every key, refusing YAML anchors and
aliases (a few hundred bytes of aliases can expand without bound). `validate_settings` is the
one check for a file's content, used when `ConfigManager` reads a file and before
`ConfigManager.set_user_setting` writes one: known keys, the right types, `provider/model`
names, parseable base URLs (in each row's accepted forms), no API keys and, in a project file,
none of the user-only settings. Errors are `ConfigError`s naming the file and line.

Provider rows are read from the registry (their ids, their legacy URL keys, their URL forms);
no provider is named here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rlm_code.core.exceptions import ConfigError, InvalidInputError
from rlm_code.core.urls import check_base_url, normalize_host_url
from rlm_code.models.providers.registry import ProviderRegistry

__all__ = ["USER_ONLY", "load_yaml", "url_keys", "validate_settings"]

_SCHEMA: dict[str, Any] = {
    "default_model": str,
    "providers": {
        "*": {
            "base_url": str,
            "max_concurrency": int,
            "requests_per_minute": float,
            "tokens_per_minute": float,
        }
    },
    "timeouts": {"connect": float, "read": float},
    "retries": {"max_attempts": int, "backoff_base": float, "backoff_max": float},
    "trust_project_base_urls": bool,
    "allow_plain_http": bool,
    "ledger": {"enabled": bool, "path": str, "log_content": bool},
    # Overrides of a model's profile (`rlm_code.models.profiles`), keyed by provider/model.
    "model_profiles": {
        "*": {
            "context_window": int,
            "max_output_tokens": int,
            "supports_tools": bool,
            "supports_vision": bool,
            "supports_reasoning": bool,
            "supports_json_schema": bool,
            "accepts_temperature": bool,
            "stream_usage": str,
        }
    },
    # Named routes and their cooldown (`rlm_code.models.route_api`, `rlm_code.models.fallback`).
    "routes": {
        "*": {
            "model": str,
            "base_url": str,
            "fallbacks": list,
            "max_concurrency": int,
            "requests_per_minute": float,
            "tokens_per_minute": float,
        }
    },
    "route_cooldown": {"failures": int, "seconds": float},
}
# Settings a project file may not hold: the first two relax what a project file may do; the
# usage ledger is the user's own record (a project must not move it into the repository, turn
# on prompt logging, or switch it off behind the user's back).
USER_ONLY = ("trust_project_base_urls", "allow_plain_http", "ledger")


def _schema() -> dict[str, Any]:
    """The schema plus each registry row's top-level URL key (e.g. a legacy endpoint key)."""
    schema = dict(_SCHEMA)
    for spec in ProviderRegistry.default().list_providers():
        if spec.config_url_key:
            schema[spec.config_url_key] = str
    return schema


def url_keys() -> dict[str, str]:
    """Top-level URL key -> provider id, from the registry rows."""
    return {
        spec.config_url_key: spec.provider_id
        for spec in ProviderRegistry.default().list_providers()
        if spec.config_url_key
    }


def load_yaml(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], int]]:
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
        for event in yaml.parse(text, Loader=loader):  # linear: aliases are not expanded here
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
                mark = event.start_mark
                line = f":{mark.line + 1}" if mark is not None else ""
                raise ConfigError(
                    f"{path}{line}: YAML anchors and aliases (&name, *name) are not supported "
                    "in config files; write the value out"
                )
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


def _fallbacks(value: Any, where: str) -> list[Any]:
    """A route's `fallbacks`: model names or `{model, base_url}` mappings."""
    if not isinstance(value, list):
        raise ConfigError(f"{where}: expected a list of models or {{model, base_url}} mappings")
    items: list[Any] = []
    for item in value:
        if isinstance(item, dict) and set(item) <= {"model", "base_url"} and "model" in item:
            entry = {k: _coerce(v, str, where) for k, v in item.items()}
            _check_model(entry["model"], where)
            if "base_url" in entry:
                _check_url(entry["model"], entry["base_url"], where)
            items.append(entry)
        elif isinstance(item, str) and item.strip():
            items.append(_check_model(item.strip(), where))
        else:
            raise ConfigError(f"{where}: each fallback is a model or a {{model, base_url}} mapping")
    return items


def _check_model(value: str, where: str) -> str:
    """A `provider/model` name (or a bare model): no spaces, no empty parts, known provider."""
    provider, slash, model = value.partition("/")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ConfigError(f"{where}: '{value}' contains spaces or control characters")
    if slash and (not provider or not model or model.endswith("/") or "//" in model):
        raise ConfigError(f"{where}: '{value}' must be provider/model, e.g. vllm/my-model")
    if slash and ProviderRegistry.default().get(provider) is None:
        raise ConfigError(f"{where}: '{value}' names unknown provider '{provider}'")
    return value


def _check_url(model: str, url: str, where: str) -> None:
    spec = ProviderRegistry.default().infer_provider_from_model(model)
    try:
        if spec is not None and spec.host_form_port is not None:
            url = normalize_host_url(url, spec.host_form_port, "'base_url'")
        check_base_url(url, "'base_url'")
    except InvalidInputError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def _coerce(value: Any, kind: type, where: str) -> Any:
    if kind is list:
        return _fallbacks(value, where)
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    if kind is str:
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{where}: expected a non-empty string")
        return value.strip()
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{where}: expected a whole number of at least 1")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: expected a number")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{where}: expected a positive, finite number")
    return number


def _check_provider_name(name: str, where: str) -> None:
    """Settings under `providers:` must name a registry id, or they would do nothing."""
    registry = ProviderRegistry.default()
    spec = registry.get(name)
    if spec is not None and spec.provider_id == name:
        return
    if spec is not None:
        raise ConfigError(f"{where}: use the provider id '{spec.provider_id}', not '{name}'")
    import difflib  # only on this error path: every start-up reads config files

    ids = [s.provider_id for s in registry.list_providers()]
    close = difflib.get_close_matches(name, ids, n=3)
    hint = f"did you mean: {', '.join(close)}?" if close else "known: " + ", ".join(ids)
    raise ConfigError(f"{where}: unknown provider 'providers.{name}'; {hint}")


def _check_value(key_path: tuple[str, ...], value: Any, where: str) -> Any:
    """Checks beyond the type: what `ask` and the resolver would otherwise trip over later."""
    registry = ProviderRegistry.default()
    name = ".".join(key_path)
    if len(key_path) == 3 and key_path[0] == "routes":
        if key_path[2] == "model":
            _check_model(value, where)
        elif key_path[2] == "base_url":  # the form here; the row's rules when it is used
            _check_url("", value, where)
        return value
    if key_path == ("default_model",):
        provider, slash, model = value.partition("/")
        if any(ch.isspace() or not ch.isprintable() for ch in value):
            raise ConfigError(f"{where}: '{name}' contains spaces or control characters")
        if slash and (not provider or not model or model.endswith("/") or "//" in model):
            raise ConfigError(f"{where}: '{name}' must be provider/model, e.g. vllm/my-model")
        if slash and registry.get(provider) is None:
            raise ConfigError(f"{where}: '{name}' names unknown provider '{provider}'")
        return value
    if len(key_path) == 3 and key_path[0] == "model_profiles" and key_path[2] == "stream_usage":
        if value not in ("stream_options", "always", "none"):
            raise ConfigError(f"{where}: '{name}' must be stream_options, always or none")
        return value
    if key_path == ("ledger", "path"):
        if not Path(value).expanduser().is_absolute():
            raise ConfigError(f"{where}: '{name}' must be an absolute path (or start with ~/)")
        return value
    provider_id = None
    if len(key_path) == 3 and key_path[0] == "providers" and key_path[2] == "base_url":
        provider_id = key_path[1]
    elif len(key_path) == 1:
        provider_id = url_keys().get(key_path[0])
    spec = registry.get(provider_id) if provider_id else None
    if spec is not None:
        try:
            url = value
            if spec.host_form_port is not None:
                url = normalize_host_url(value, spec.host_form_port, f"'{name}'")
            check_base_url(url, f"'{name}'")
        except InvalidInputError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return value


def validate_settings(
    data: dict[str, Any],
    path: Path,
    lines: dict[tuple[str, ...], int] | None = None,
    *,
    project: bool = False,
) -> dict[str, Any]:
    """Check a parsed config file; returns the cleaned settings or raises `ConfigError`.

    The one rule for every config file, used when files are read and before
    `set_user_setting` writes: known keys, the right types, `provider/model` names, parseable
    base URLs, no API keys, and (in a project file) none of the user-only settings. Errors
    name `path` and, when known, the line.
    """
    lines = lines or {}
    schema = _schema()

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
                if project and sub_path[0] in USER_ONLY:
                    raise ConfigError(
                        f"{where(sub_path)}: '{sub_path[0]}' is honoured only in the user config "
                        "file, which a cloned project cannot write; remove it here"
                    )
                sub_schema = schema.get(str(key), schema.get("*"))
                if sub_schema is None:
                    allowed = ", ".join(k for k in schema if k != "*")
                    raise ConfigError(
                        f"{where(sub_path)}: unknown setting '{'.'.join(sub_path)}'"
                        f"; known here: {allowed}"
                    )
                result[str(key)] = check(sub, sub_schema, sub_path)
            return result
        value = _coerce(value, schema, f"{where(key_path)}: '{'.'.join(key_path)}'")
        return _check_value(key_path, value, where(key_path))

    checked: dict[str, Any] = check(data, schema, ())
    return checked
