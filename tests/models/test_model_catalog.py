"""Curated model catalog: every list typed out from the spec, in the spec's order."""

from __future__ import annotations

import pytest

from rlm_code.models.providers.model_catalog import SUPERQODE_MODEL_CATALOG, get_superqode_models
from rlm_code.models.providers.registry import ProviderRegistry

# Typed out by hand from the "Curated models" lines of shared/spec/llm-providers.md.
SPEC_CURATED: dict[str, list[str]] = {
    "openai": [
        "gpt-5.3-codex", "gpt-5.2", "gpt-5.2-pro", "gpt-5.2-codex",
        "gpt-5.1", "gpt-5.1-codex", "gpt-5.1-codex-mini",
        "gpt-4o-2024-11-20", "gpt-4o", "gpt-4o-mini", "o1", "o1-mini",
    ],
    "anthropic": [
        "claude-opus-4-6", "claude-opus-4-5-20251101",
        "claude-sonnet-4-5-20250929", "claude-haiku-4-5-20251001",
        "claude-sonnet-4-20250514", "claude-opus-4-20250514", "claude-haiku-4-20250514",
    ],
    "gemini": [
        "gemini-3-pro-preview", "gemini-3-flash-preview",
        "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.0-flash", "gemini-flash-latest",
    ],
    "xai": ["grok-3", "grok-3-mini", "grok-2", "grok-beta"],
    "perplexity": ["sonar-pro", "sonar", "sonar-reasoning"],
    "deepseek": [
        "deepseek-ai/DeepSeek-V3.2", "deepseek-ai/DeepSeek-R1",
        "deepseek-chat", "deepseek-coder", "deepseek-reasoner",
    ],
    "moonshot": ["moonshot-v1-128k", "moonshot-v1-32k", "moonshot-v1-8k", "kimi-k2"],
    "alibaba": [
        "qwen-max", "qwen-plus", "qwen-turbo", "qwen2.5-coder-32b-instruct",
        "qwen2.5-72b-instruct",
    ],
    "openrouter": [
        "anthropic/claude-sonnet-4", "openai/gpt-4o",
        "google/gemini-2.0-flash", "meta-llama/llama-3.3-70b-instruct",
    ],
    "opencode": [
        "glm-4.7-free", "grok-code", "kimi-k2.5-free", "gpt-5-nano", "minimax-m2.1-free",
        "big-pickle",
    ],
    "groq": ["llama-3.3-70b-versatile", "llama-3.1-8b-instant", "mixtral-8x7b-32768",
             "gemma2-9b-it"],
    "together": [
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "deepseek-ai/DeepSeek-R1",
        "mistralai/Mixtral-8x22B-Instruct-v0.1",
    ],
    "cerebras": ["llama-3.3-70b", "qwen-3-coder-480b"],
    "mistral": ["mistral-large-2411", "mistral-medium-2505", "mistral-nemo", "codestral-latest",
                "mistral-small-latest"],
}  # fmt: skip

REGISTRY = ProviderRegistry.default()


def test_every_catalog_key_is_a_registry_id() -> None:
    ids = {spec.provider_id for spec in REGISTRY.list_providers()}
    assert set(SUPERQODE_MODEL_CATALOG) <= ids
    for key in SUPERQODE_MODEL_CATALOG:
        spec = REGISTRY.get(key)
        assert spec is not None and spec.provider_id == key, "keys are ids, not aliases"


def test_catalog_has_exactly_the_spec_curated_providers() -> None:
    # SiliconFlow, Fireworks and the local servers have no curated list in the spec.
    assert set(SUPERQODE_MODEL_CATALOG) == set(SPEC_CURATED)


@pytest.mark.parametrize("provider_id", sorted(SPEC_CURATED))
def test_curated_list_equals_spec_in_order(provider_id: str) -> None:
    assert SUPERQODE_MODEL_CATALOG[provider_id] == SPEC_CURATED[provider_id]
    assert get_superqode_models(provider_id) == SPEC_CURATED[provider_id]


@pytest.mark.parametrize("provider_id", sorted(SPEC_CURATED))
def test_curated_lists_have_no_duplicates_or_blanks(provider_id: str) -> None:
    models = SUPERQODE_MODEL_CATALOG[provider_id]
    assert len(models) == len(set(models))
    assert all(m and m == m.strip() for m in models)


@pytest.mark.parametrize(
    ("name", "provider_id"),
    [("claude", "anthropic"), ("google", "gemini"), ("kimi", "moonshot"), ("qwen", "alibaba"),
     ("dashscope", "alibaba"), ("gpt", "openai"), ("togetherai", "together"),
     ("opencode-zen", "opencode"), ("ANTHROPIC", "anthropic"), ("  Claude ", "anthropic")],
)  # fmt: skip
def test_lookup_by_alias_and_any_case(name: str, provider_id: str) -> None:
    assert get_superqode_models(name) == SPEC_CURATED[provider_id]


@pytest.mark.parametrize(
    "name", ["unknown", "", "   ", "siliconflow", "fireworks", "ollama", "openai/gpt-4o"]
)
def test_unknown_or_uncurated_gives_empty_list(name: str) -> None:
    assert get_superqode_models(name) == []


def test_non_string_gives_empty_list() -> None:
    assert get_superqode_models(None) == []  # type: ignore[arg-type]
    assert get_superqode_models(3) == []  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["anthropic", "claude"])
def test_returns_a_copy(name: str) -> None:
    models = get_superqode_models(name)
    models.append("injected")
    models[0] = "changed"
    models.reverse()
    assert SUPERQODE_MODEL_CATALOG["anthropic"] == SPEC_CURATED["anthropic"]
    assert get_superqode_models(name) == SPEC_CURATED["anthropic"]
    assert get_superqode_models(name) is not get_superqode_models(name)


def test_catalog_takes_priority_over_example_models() -> None:
    # The spec's ProviderSpec example lists gpt-5 first; the catalog's own order wins.
    openai = REGISTRY.get("openai")
    assert openai is not None
    assert openai.example_models == ["gpt-5", "gpt-4o", "gpt-4o-mini"]
    assert get_superqode_models("openai")[0] == "gpt-5.3-codex"
