"""The README documents what the code does: its providers table is the registry's."""

from __future__ import annotations

from pathlib import Path

from rlm_code.models.providers.docs_table import markdown_table
from rlm_code.models.providers.registry import ProviderRegistry

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_providers_table_is_generated_from_the_registry() -> None:
    assert markdown_table() in README.read_text(encoding="utf-8"), (
        "README's providers table is stale: paste the output of "
        "`python -m rlm_code.models.providers.docs_table`"
    )


def test_readme_names_every_env_var_of_the_registry() -> None:
    text = README.read_text(encoding="utf-8")
    for spec in ProviderRegistry.default().list_providers():
        for var in [*spec.api_key_env_vars, spec.base_url_env_var]:
            if var:
                assert f"`{var}`" in text, var
    for var in ("OLLAMA_HTTP_TIMEOUT", "RLM_CODE_MODEL", "RLM_CODE_CONFIG_DIR", "NO_COLOR"):
        assert f"`{var}`" in text, var


def test_readme_starts_with_the_two_commands() -> None:
    text = README.read_text(encoding="utf-8")
    head = text[: text.index("## Install")]
    assert 'rlm-code ask "Why is the sky blue?"' in head
    assert ".venv/bin/pytest" in head
