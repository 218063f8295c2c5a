"""The provider table as callers see it: every registry row plus whether it is ready to use."""

from __future__ import annotations

from typing import Any

from rlm_code.core.config import ConfigManager
from rlm_code.models.providers.registry import ProviderRegistry
from rlm_code.models.resolve import key_present


def supported_providers(config: ConfigManager, registry: ProviderRegistry) -> list[dict[str, Any]]:
    """One dict per provider (sorted by id): its metadata, `has_api_key` and `configured`.

    `has_api_key` says a key is in the environment or the key store, never which key."""
    providers = []
    for spec in registry.list_providers():
        has_key = bool(spec.api_key_env_vars) and key_present(config, spec)
        providers.append(
            {
                "id": spec.provider_id,
                "name": spec.display_name,
                "adapter": spec.adapter_type,
                "aliases": list(spec.aliases),
                "docs_url": spec.docs_url,
                "configured": has_key or not spec.requires_api_key,
                "has_api_key": has_key,
                "requires_api_key": spec.requires_api_key,
                "api_key_env_vars": list(spec.api_key_env_vars),
                "base_url_env_var": spec.base_url_env_var,
                "default_base_url": spec.default_base_url,
                "connection_type": spec.connection_type,
                "category": spec.category,
                "example_models": list(spec.example_models),
            }
        )
    return providers
