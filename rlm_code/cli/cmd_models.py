"""`rlm-code models PROVIDER`: the curated models of one provider, one per line.

The list is the curated catalog (`get_superqode_models`), or the provider's `example_models`
when it has no curated list. `register` imports nothing but argparse (start-up is
benchmarked); everything else loads inside `run`, which stays small so that a live listing
can be added beside the curated one.
"""

from __future__ import annotations

import argparse

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~1.5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

    from rlm_code.models.providers.registry import ProviderSpec

EXIT_USAGE = 2


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
    parser.set_defaults(handler="rlm_code.cli.cmd_models:run")


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


def curated_models(spec: ProviderSpec) -> list[str]:
    """Curated catalog list, else the spec's example models; duplicates dropped, order kept."""
    from rlm_code.models.providers.model_catalog import get_superqode_models

    models = get_superqode_models(spec.provider_id) or list(spec.example_models)
    return list(dict.fromkeys(models))


def print_models(provider_id: str, models: list[str], as_json: bool) -> None:
    from rlm_code.cli._output import print_json, write

    if as_json:
        print_json({"provider": provider_id, "models": models})
    elif models:
        write("\n".join(models))
    else:
        import sys

        print(
            f"rlm-code: no curated models for {provider_id!r}; "
            "pass the model name your server serves",
            file=sys.stderr,
        )


def live_models(provider_id: str) -> list[str]:
    """What the provider's API lists for this account; raises the connector's typed errors."""
    from rlm_code.models.llm_connector import LLMConnector

    with LLMConnector() as connector:
        return connector.list_models(provider_id, live_only=True)


def run(args: argparse.Namespace) -> int:
    spec = resolve_provider(args.provider)
    if spec is None:
        return EXIT_USAGE
    if not args.live:
        print_models(spec.provider_id, curated_models(spec), args.json)
        return 0
    from rlm_code.cli._output import fail
    from rlm_code.cli.session import exit_code_for
    from rlm_code.core.exceptions import ModelError

    try:
        models = live_models(spec.provider_id)
    except ModelError as exc:
        if args.debug:
            raise
        return fail(str(exc), exit_code_for(exc))
    print_models(spec.provider_id, models, args.json)
    return 0
