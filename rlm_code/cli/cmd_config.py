"""`rlm-code config`: show the effective settings, set the default model, store keys.

Settings are written to the user config file only (never the project's `rlm_config.yaml`).
Keys go to the user key store (0600) and are read from stdin or a hidden prompt, never from
the command line, so they stay out of shell history; they are never printed back.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

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
    parser.set_defaults(handler="rlm_code.cli.cmd_config:run")


def _value(key: str, raw: str) -> Any:
    if key in ("timeouts.connect", "timeouts.read"):
        return float(raw)
    if key == "retries.max_attempts":
        return int(raw)
    return raw


def run(args: argparse.Namespace) -> int:
    import sys

    from rlm_code.cli._output import fail, print_json, write
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import RLMCodeError
    from rlm_code.models.providers.registry import ProviderRegistry

    config = ConfigManager()
    action = args.config_action
    try:
        if action == "path":
            write(f"project file: {config.project_file}")
            write(f"user config:  {config.user_config_file}")
            write(f"key store:    {config.user_config_dir / 'keys.json'}")
            return 0
        if action == "show":
            t, r = config.timeouts, config.retries
            data = {
                "default_model": config.default_model,
                "ollama_endpoint": config.ollama_endpoint,
                "timeouts": {"connect": t.connect, "read": t.read},
                "retries": {
                    "max_attempts": r.max_attempts,
                    "backoff_base": r.backoff_base,
                    "backoff_max": r.backoff_max,
                },
                "ollama_timeout": config.ollama_timeout,
                "stored_keys_for": config.key_store.providers(),
            }
            if args.json:
                print_json(data)
            else:
                for name, value in data.items():
                    write(f"{name}: {value}")
            return 0
        if action == "set":
            key = SETTABLE[args.key]
            try:
                value = _value(key, args.value)
            except ValueError:
                return fail(f"{args.key} needs a number, got {args.value!r}", 2)
            if key == "default_model" and "/" not in value:
                return fail("default-model must be provider/model, e.g. ollama/llama3.2", 2)
            path = config.set_user_setting(key, value)
            write(f"{args.key} set in {path}")
            return 0
        spec = ProviderRegistry.default().get(args.provider)
        if spec is None:
            return fail(f"unknown provider {args.provider!r}; see `rlm-code providers`", 2)
        if action == "delete-key":
            removed = config.key_store.delete(spec.provider_id)
            write(f"key for {spec.provider_id} {'removed' if removed else 'was not stored'}")
            return 0
        if sys.stdin.isatty():
            import getpass

            secret = getpass.getpass(f"{spec.display_name} API key (hidden): ")
        else:
            secret = sys.stdin.readline()
        secret = secret.strip()
        if not secret:
            return fail("no key given; nothing stored", 2)
        config.key_store.set(spec.provider_id, secret)
        write(f"key for {spec.provider_id} stored in {config.key_store.path} (mode 0600)")
        return 0
    except RLMCodeError as exc:
        return fail(str(exc), 2)
