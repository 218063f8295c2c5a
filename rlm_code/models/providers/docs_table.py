"""The README's provider table, generated from the registry rows.

`python -m rlm_code.models.providers.docs_table` prints it; a test checks the README holds
exactly this text, so the documentation cannot drift from the table it documents.
"""

from __future__ import annotations

from rlm_code.models.providers.registry import ProviderRegistry


def markdown_table() -> str:
    rows = [
        "| Provider | Id | Aliases | Mode | Category | Adapter | Default URL | Key env vars "
        "| Base-URL env var |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    registry = ProviderRegistry.default()
    for connection_type in ("local", "byok"):
        for spec in registry.list_providers(connection_type):
            keys = ", ".join(f"`{v}`" for v in spec.api_key_env_vars) or "—"
            if spec.api_key_env_vars and not spec.requires_api_key:
                keys += " (optional)"
            rows.append(
                f"| {spec.display_name} | `{spec.provider_id}` | "
                f"{', '.join(f'`{a}`' for a in spec.aliases) or '—'} | "
                f"{'Local' if spec.is_local else 'BYOK'} | {spec.category} | "
                f"{spec.adapter_type} | {spec.default_base_url or '—'} | {keys} | "
                f"{'`' + spec.base_url_env_var + '`' if spec.base_url_env_var else '—'} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown_table())
