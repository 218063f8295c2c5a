"""`rlm-code models PROVIDER`: the curated models of one provider, one per line.

The list is the connector's curated list (`list_provider_example_models`: the catalog, else
the provider's example models, with OpenCode's free-model rule), so `rlm-code models`, the
shell and the library agree; `--live` asks the provider's API instead. `register` imports
nothing but argparse (start-up is benchmarked); everything else loads inside `run`.
"""

from __future__ import annotations

import argparse

from rlm_code.cli.exit_codes import EXIT_OK, EXIT_USAGE

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~1.5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

    from rlm_code.models.llm_connector import LLMConnector
    from rlm_code.models.providers.registry import ProviderSpec

CURATED_LIMIT = 10_000  # "all of them": the connector's method takes a limit


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list the curated models of a provider",
        description=(
            "List the curated models of a provider (id or alias, any case), one per line. "
            "Run `rlm-code providers` for the ids."
        ),
    )
    parser.add_argument("provider", metavar="PROVIDER", help="provider id or alias, e.g. claude")
    parser.add_argument("--json", action="store_true", help='print {"provider", "models"} JSON')
    parser.add_argument(
        "--live",
        action="store_true",
        help="ask the provider's own API (uses its configured key and base URL)",
    )
    parser.set_defaults(handler="rlm_code.cli.commands.models:run")


def resolve_provider(name: str) -> ProviderSpec | None:
    """The provider named `name` (id or alias); prints the one-line error when there is none."""
    from rlm_code.cli._output import fail, unknown_name_message
    from rlm_code.models.providers.registry import ProviderRegistry

    registry = ProviderRegistry.default()
    spec = registry.get(name)
    if spec is None:
        ids = [s.provider_id for s in registry.list_providers()]
        fail(unknown_name_message("provider", name, registry.names(), ids), EXIT_USAGE)
    return spec


def curated_models(connector: LLMConnector, spec: ProviderSpec) -> list[str]:
    """The provider's curated models as the connector and the shell see them (one list,
    OpenCode's free-model rule included); duplicates dropped, order kept."""
    models = connector.list_provider_example_models(spec.provider_id, limit=CURATED_LIMIT)
    return list(dict.fromkeys(models))


def print_models(provider_id: str, models: list[str], as_json: bool) -> None:
    """One name per line (filtered for the terminal: a live list is the provider's text)."""
    from rlm_code.cli._output import print_json, write_untrusted

    if as_json:
        print_json({"provider": provider_id, "models": models})
    elif models:
        write_untrusted("\n".join(models))
    else:
        import sys

        print(
            f"rlm-code: no curated models for {provider_id!r}; "
            "pass the model name your server serves",
            file=sys.stderr,
        )


def run(args: argparse.Namespace) -> int:
    spec = resolve_provider(args.provider)
    if spec is None:
        return EXIT_USAGE
    from rlm_code.cli._output import fail
    from rlm_code.cli.exit_codes import exit_code_for
    from rlm_code.core.exceptions import ConfigError, ModelError
    from rlm_code.models.llm_connector import LLMConnector

    try:
        with LLMConnector() as connector:
            if args.live:
                models = connector.list_models(spec.provider_id, live_only=True)
            else:
                models = curated_models(connector, spec)
    except (ConfigError, ModelError) as exc:
        if args.debug:
            raise
        return fail(str(exc), exit_code_for(exc))
    print_models(spec.provider_id, models, args.json)
    return EXIT_OK
