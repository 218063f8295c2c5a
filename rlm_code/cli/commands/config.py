"""`rlm-code config`: show the effective settings, set the default model, store keys.

Settings are written to the user config file only (never the project's `rlm_config.yaml`).
Keys go to the user key store (0600) and are read from stdin or a hidden prompt, never from
the command line, so they stay out of shell history; they are never printed back.

`config set` checks a value with the same rules as when the file is read
(`ConfigManager.set_user_setting`), so nothing it stores can break a later `config show` or
`ask`; each error is one line naming the user config file, which is left unchanged.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from rlm_code.core.config import ConfigManager

# CLI spelling -> config key
SETTABLE = {
    "default-model": "default_model",
    "ollama-endpoint": "ollama_endpoint",
    "timeout-connect": "timeouts.connect",
    "timeout-read": "timeouts.read",
    "max-attempts": "retries.max_attempts",
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "config",
        help="show settings, set the default model, store API keys",
        description="Show the effective settings, change user settings, manage stored keys.",
    )
    sub = parser.add_subparsers(dest="config_action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print the effective settings (never keys)")
    show.add_argument("--json", action="store_true", help="print JSON")
    setp = sub.add_parser("set", help="set a user setting: " + ", ".join(SETTABLE))
    setp.add_argument("key", choices=sorted(SETTABLE), metavar="KEY", help=", ".join(SETTABLE))
    setp.add_argument("value", help="the new value")
    key = sub.add_parser("set-key", help="store a provider's API key (read from stdin)")
    key.add_argument("provider", help="provider id or alias")
    delete = sub.add_parser("delete-key", help="remove a stored key")
    delete.add_argument("provider", help="provider id or alias")
    sub.add_parser("path", help="print where the config files are")
    parser.set_defaults(handler="rlm_code.cli.commands.config:run")


def _value(key: str, raw: str) -> Any:
    """The CLI text as the type the setting holds (ValueError when it cannot be)."""
    if key in ("timeouts.connect", "timeouts.read"):
        return float(raw)
    if key == "retries.max_attempts":
        return int(raw)
    return raw


def show_data(config: ConfigManager) -> dict[str, Any]:
    """The effective settings (never a key: only which providers have one stored)."""
    from rlm_code.models.providers.registry import ProviderRegistry

    t, r = config.timeouts, config.retries
    base_urls = {}
    for spec in ProviderRegistry.default().list_providers():
        found = config.provider_base_url_source(spec.provider_id)
        if found is not None:
            base_urls[spec.provider_id] = {"url": found[0], "file": str(found[1])}
    return {
        "default_model": config.default_model,
        "base_urls": base_urls,
        "timeouts": {"connect": t.connect, "read": t.read},
        "retries": {
            "max_attempts": r.max_attempts,
            "backoff_base": r.backoff_base,
            "backoff_max": r.backoff_max,
        },
        "trust_project_base_urls": config.trusts_project_urls,
        "allow_plain_http": config.allows_plain_http,
        "stored_keys_for": config.key_store.providers(),
    }


def set_setting(config: ConfigManager, name: str, raw: str) -> str:
    """Validate and write one user setting; returns the line to print.

    Raises `ConfigError` naming the user config file, for the CLI's own checks too, so every
    error of `config set` says which file was not changed.
    """
    from rlm_code.core.exceptions import ConfigError

    key = SETTABLE[name]
    where = config.user_config_file
    try:
        value = _value(key, raw)
    except ValueError:
        kind = "whole number" if key == "retries.max_attempts" else "number of seconds"
        raise ConfigError(f"{where}: not changed: {name} needs a {kind}, got {raw!r}") from None
    if key == "default_model" and "/" not in value:
        raise ConfigError(
            f"{where}: not changed: default-model must be provider/model, e.g. ollama/llama3.2"
        )
    path = config.set_user_setting(key, value)
    return f"{name} set in {path}"


def run(args: argparse.Namespace) -> int:
    import sys

    from rlm_code.cli._output import fail, print_json, write
    from rlm_code.cli.exit_codes import EXIT_OK, EXIT_USAGE
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import RLMCodeError
    from rlm_code.models.providers.registry import ProviderRegistry

    config = ConfigManager()
    action = args.config_action
    try:
        if action == "path":
            write(f"project file: {config.project_file}")
            write(f"user config:  {config.user_config_file}")
            write(f"key store:    {config.key_store.path}")
            return EXIT_OK
        if action == "show":
            data = show_data(config)
            if args.json:
                print_json(data)
            else:
                for name, value in data.items():
                    write(f"{name}: {value}")
            return EXIT_OK
        if action == "set":
            write(set_setting(config, args.key, args.value))
            return EXIT_OK
        spec = ProviderRegistry.default().get(args.provider)
        if spec is None:
            return fail(f"unknown provider {args.provider!r}; see `rlm-code providers`", EXIT_USAGE)
        if action == "delete-key":
            removed = config.key_store.delete(spec.provider_id)
            write(f"key for {spec.provider_id} {'removed' if removed else 'was not stored'}")
            return EXIT_OK
        if sys.stdin.isatty():
            import getpass

            secret = getpass.getpass(f"{spec.display_name} API key (hidden): ")
        else:
            secret = sys.stdin.readline()
        secret = secret.strip()
        if not secret:
            return fail("no key given; nothing stored", EXIT_USAGE)
        config.key_store.set(spec.provider_id, secret)
        write(f"key for {spec.provider_id} stored in {config.key_store.path} (mode 0600)")
        return EXIT_OK
    except RLMCodeError as exc:
        return fail(str(exc), EXIT_USAGE)
