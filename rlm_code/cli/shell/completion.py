"""Names for Tab completion: provider ids and aliases, and model names per provider.

Why a module of its own: completion must never block or break the prompt, so the live model
list of the connected provider is fetched once, on a background thread, at the first Tab that
asks for it; until then (and if it fails) the curated list is offered. Live names come from
the provider, so they are filtered for the terminal before readline lists them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from rlm_code.cli.sanitize import strip_controls_one_line

if TYPE_CHECKING:
    from rlm_code.models.llm_connector import LLMConnector

CURATED_LIMIT = 1000


def provider_names() -> list[str]:
    """Provider ids and aliases (the registry's `names()`)."""
    from rlm_code.models.providers.registry import ProviderRegistry

    return ProviderRegistry.default().names()


class ModelNames:
    """The model names offered per provider: curated, plus the provider's own list once known."""

    def __init__(self) -> None:
        self._live: dict[str, list[str]] = {}
        self._fetching: set[str] = set()

    def live(self, provider_id: str) -> list[str]:
        """The provider's own list as fetched so far (empty until a fetch has finished)."""
        return list(self._live.get(provider_id, ()))

    def for_completion(self, provider: str, connector: LLMConnector | None) -> list[str]:
        """Curated names for `provider` (id or alias), plus the live ones when fetched; starts
        the fetch when the connector is connected to that provider."""
        if connector is None:  # still connecting: nothing to ask yet
            return []
        spec = connector.provider_registry.get(provider)
        if spec is None:
            return []
        names = connector.list_provider_example_models(spec.provider_id, limit=CURATED_LIMIT)
        status = connector.get_connection_status()
        if status["connected"] and status["provider"] == spec.provider_id:
            self._fetch(connector, spec.provider_id)
        return names + self.live(spec.provider_id)

    def _fetch(self, connector: LLMConnector, provider_id: str) -> None:
        if provider_id in self._live or provider_id in self._fetching:
            return
        self._fetching.add(provider_id)

        def fetch() -> None:
            try:
                names = [strip_controls_one_line(n) for n in connector.list_models()]
                self._live[provider_id] = [n for n in names if n]
            except Exception:  # completion is best effort
                self._live[provider_id] = []

        threading.Thread(target=fetch, name="rlm-shell-models", daemon=True).start()


__all__ = ["ModelNames", "provider_names"]
