"""`rlm-code providers`: the supported providers and whether each is ready to use.

`register` imports nothing but argparse (start-up is benchmarked); the registry, the config
and the output helpers load inside `run`. Key values are never printed: "configured" only says
whether one of the provider's key env vars (or the project's `.env`) has a value.
"""

from __future__ import annotations

import argparse

from rlm_code.cli.exit_codes import EXIT_OK, EXIT_USAGE

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~1.5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

    from rlm_code.core.config import ConfigManager
    from rlm_code.models.providers.registry import ProviderSpec

HEADERS = ("id", "name", "mode", "category", "configured", "default URL")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "providers",
        help="list the supported providers and whether each is configured",
        description=(
            "List every supported provider: local servers (no key) and bring-your-own-key "
            "cloud providers. 'configured' says whether a key env var is set (in the "
            "environment or the project's .env); key values are never shown."
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--local", action="store_true", help="only local providers (no key)")
    mode.add_argument("--byok", action="store_true", help="only bring-your-own-key providers")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead")
    parser.set_defaults(handler="rlm_code.cli.commands.providers:run")


def configured_status(spec: ProviderSpec, config: ConfigManager) -> str:
    """`yes` when a key env var has a value, `yes (no key needed)` when none is required
    (local servers, keyless providers), else `no`."""
    if any(config.get_env(name) for name in spec.api_key_env_vars):
        return "yes"
    if spec.connection_type == "local" or not spec.requires_api_key:
        return "yes (no key needed)"
    return "no"


def provider_record(spec: ProviderSpec, configured: bool) -> dict[str, Any]:
    """The JSON object of one provider: metadata and env var names, never a key value."""
    return {
        "id": spec.provider_id,
        "name": spec.display_name,
        "mode": spec.connection_type,
        "category": spec.category,
        "configured": configured,
        "default_url": spec.default_base_url,
        "aliases": list(spec.aliases),
        "adapter_type": spec.adapter_type,
        "api_key_env_vars": list(spec.api_key_env_vars),
        "base_url_env_var": spec.base_url_env_var,
        "docs_url": spec.docs_url,
        "requires_api_key": spec.requires_api_key,
    }


def _configured_style(column: int, value: str) -> str | None:
    if HEADERS[column] != "configured":
        return None
    return "green" if value.startswith("yes") else "dim"


def run(args: argparse.Namespace) -> int:
    from rlm_code.cli._output import fail, print_json, print_table
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import ConfigError
    from rlm_code.models.providers.registry import ProviderRegistry

    mode = "local" if args.local else "byok" if args.byok else None
    specs = ProviderRegistry.default().list_providers(mode)
    config = ConfigManager()
    try:
        statuses = [configured_status(spec, config) for spec in specs]
    except ConfigError as exc:  # a malformed .env
        return fail(str(exc), EXIT_USAGE)

    if args.json:
        print_json([provider_record(s, st != "no") for s, st in zip(specs, statuses, strict=True)])
        return EXIT_OK
    rows = [
        (
            spec.provider_id,
            spec.display_name,
            spec.connection_type,
            spec.category,
            status,
            spec.default_base_url or "-",
        )
        for spec, status in zip(specs, statuses, strict=True)
    ]
    print_table(HEADERS, rows, cell_style=_configured_style)
    return EXIT_OK
