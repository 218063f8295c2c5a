"""Curated model lists per provider, shown first by the model picker.

`SUPERQODE_MODEL_CATALOG` takes priority over a `ProviderSpec.example_models` list. Keys are
registry provider ids (a meta-test checks it); `get_superqode_models` also accepts aliases.
The lists are the spec's curated lists, in the spec's order.

This module looks aliases up in the registry; the registry never imports it (its rows carry
their own example models), so the two do not import each other. The one list of a provider's
curated models, as shown to users, is `rlm_code.models.resolve.curated_models`.
"""

from __future__ import annotations

from rlm_code.models.providers.registry import ProviderRegistry

SUPERQODE_MODEL_CATALOG: dict[str, list[str]] = {
    "openai": [
        "gpt-5.3-codex",
        "gpt-5.2",
        "gpt-5.2-pro",
        "gpt-5.2-codex",
        "gpt-5.1",
        "gpt-5.1-codex",
        "gpt-5.1-codex-mini",
        "gpt-4o-2024-11-20",
        "gpt-4o",
        "gpt-4o-mini",
        "o1",
        "o1-mini",
    ],
    "anthropic": [
        "claude-opus-4-6",
        "claude-opus-4-5-20251101",
        "claude-sonnet-4-5-20250929",
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-20250514",
        "claude-opus-4-20250514",
        "claude-haiku-4-20250514",
    ],
    "gemini": [
        "gemini-3-pro-preview",
        "gemini-3-flash-preview",
        "gemini-2.5-pro",
        "gemini-2.5-flash",
        "gemini-2.0-flash",
        "gemini-flash-latest",
    ],
    "xai": ["grok-3", "grok-3-mini", "grok-2", "grok-beta"],
    "perplexity": ["sonar-pro", "sonar", "sonar-reasoning"],
    "deepseek": [
        "deepseek-ai/DeepSeek-V3.2",
        "deepseek-ai/DeepSeek-R1",
        "deepseek-chat",
        "deepseek-coder",
        "deepseek-reasoner",
    ],
    "moonshot": ["moonshot-v1-128k", "moonshot-v1-32k", "moonshot-v1-8k", "kimi-k2"],
    "alibaba": [
        "qwen-max",
        "qwen-plus",
        "qwen-turbo",
        "qwen2.5-coder-32b-instruct",
        "qwen2.5-72b-instruct",
    ],
    "openrouter": [
        "anthropic/claude-sonnet-4",
        "openai/gpt-4o",
        "google/gemini-2.0-flash",
        "meta-llama/llama-3.3-70b-instruct",
    ],
    "opencode": [
        "glm-4.7-free",
        "grok-code",
        "kimi-k2.5-free",
        "gpt-5-nano",
        "minimax-m2.1-free",
        "big-pickle",
    ],
    "groq": [
        "llama-3.3-70b-versatile",
        "llama-3.1-8b-instant",
        "mixtral-8x7b-32768",
        "gemma2-9b-it",
    ],
    "together": [
        "meta-llama/Llama-3.3-70B-Instruct-Turbo",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "deepseek-ai/DeepSeek-R1",
        "mistralai/Mixtral-8x22B-Instruct-v0.1",
    ],
    "cerebras": ["llama-3.3-70b", "qwen-3-coder-480b"],
    "mistral": [
        "mistral-large-2411",
        "mistral-medium-2505",
        "mistral-nemo",
        "codestral-latest",
        "mistral-small-latest",
    ],
}


def get_superqode_models(provider_id: str) -> list[str]:
    """Return a copy of the curated models of a provider id or alias; `[]` when it has none."""
    models = SUPERQODE_MODEL_CATALOG.get(provider_id) if isinstance(provider_id, str) else None
    if models is None:
        spec = ProviderRegistry.default().get(provider_id) if isinstance(provider_id, str) else None
        models = SUPERQODE_MODEL_CATALOG.get(spec.provider_id) if spec else None
    return list(models or [])
