"""`rlm-code models PROVIDER`: the curated models of one provider, one per line.

The list is the connector's curated list (`list_provider_example_models`: the catalog, else
the provider's example models, with OpenCode's free-model rule), so `rlm-code models`, the
shell and the library agree; `--live` asks the provider's API instead, and shows each model's
context window and capabilities from its profile (`rlm_code.models.profiles`: config overrides,
a local server's own answer, the cloud table), with `?` where nothing knows. `register` imports
nothing but argparse (start-up is benchmarked); everything else loads inside `run`.
"""

from __future__ import annotations

import argparse

from rlm_code.cli.exit_codes import EXIT_OK, EXIT_USAGE

TYPE_CHECKING = False  # not `from typing import ...`: typing costs ~1.5 ms at start-up
if TYPE_CHECKING:
    from typing import Any

    from rlm_code.models.llm_connector import LLMConnector
    from rlm_code.models.profiles import ModelProfile
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


def live_profiles(
    connector: LLMConnector, spec: ProviderSpec, models: list[str]
) -> dict[str, ModelProfile]:
    """Each model's profile: a local server is asked about every model (one small request
    each, within the connect timeout); cloud models come from the config and the table."""
    from rlm_code.core.exceptions import ModelError
    from rlm_code.models.connection import Connection
    from rlm_code.models.profiles import build_profile
    from rlm_code.models.resolve import resolve

    config = connector.config_manager
    profiles: dict[str, ModelProfile] = {}
    for model in models:
        if not spec.is_local:
            overrides = config.model_profile(f"{spec.provider_id}/{model}")
            profiles[model] = build_profile(spec, model, overrides)
            continue
        try:
            resolved = resolve(config, connector.provider_registry, model, spec.provider_id)
        except ModelError:  # a listed name we could not connect to (the server's text)
            profiles[model] = build_profile(spec, model)
            continue
        conn = Connection(resolved, resolved.adapter_class(resolved.endpoint), config)
        try:
            profiles[model] = conn.profile()
        finally:
            conn.retire()
    return profiles


def print_profiles(provider_id: str, profiles: dict[str, ModelProfile], as_json: bool) -> None:
    """`--live`: a table of model, context window and capabilities (or JSON with each
    profile and the source of each field)."""
    from rlm_code.cli._output import print_json, print_table
    from rlm_code.cli.sanitize import strip_controls_one_line

    if as_json:
        details = {name: p.as_dict() for name, p in profiles.items()}
        print_json({"provider": provider_id, "models": list(profiles), "profiles": details})
        return
    if not profiles:
        print_models(provider_id, [], False)
        return
    rows = [
        (
            strip_controls_one_line(name),  # the server's text
            f"{p.context_window:,}" if p.context_window else "?",
            ", ".join(p.capabilities()) or "-",
        )
        for name, p in profiles.items()
    ]
    print_table(("model", "context", "capabilities"), rows)


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
                profiles = live_profiles(connector, spec, list(dict.fromkeys(models)))
            else:
                models = curated_models(connector, spec)
    except (ConfigError, ModelError) as exc:
        if args.debug:
            raise
        return fail(str(exc), exit_code_for(exc))
    if args.live:
        print_profiles(spec.provider_id, profiles, args.json)
    else:
        print_models(spec.provider_id, models, args.json)
    return EXIT_OK
