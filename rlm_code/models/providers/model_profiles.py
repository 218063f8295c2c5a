"""Model profiles as data: the cloud table, per-provider defaults, and how local servers are
probed. Read by `rlm_code.models.profiles`; nothing here does I/O or imports beyond typing.

`CLOUD_PROFILES[provider_id]` maps a model-name *prefix* to its figures; the longest prefix of
a model name wins (`gpt-5.2-codex` takes the `gpt-5` row unless a longer one exists), so dated
snapshots (`gpt-4o-2024-11-20`, `claude-sonnet-4-5-20250929`) share their family's row. The
figures are the providers' published ones (context window in tokens, the largest output a
call may ask for) as of late 2025; a user whose account differs overrides them in the config
file (`model_profiles:`). A model not in the table keeps the defaults ("unknown": None).

`PROVIDER_PROFILES` holds what is true of every model of a provider: Mistral rejects
`stream_options` with a 422 and sends streamed usage unasked ("always").

`LOCAL_PROBES` names, per local provider, which live probe of `adapters/_profile_probe.py`
reads its server (Ollama's probe is its adapter's own `/api/show`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["CLOUD_PROFILES", "LOCAL_PROBES", "PROVIDER_PROFILES"]

_M = 1_048_576  # Gemini and GPT-4.1's one-million-token windows

# Shorthands for the capability sets that recur.
_ALL = {"supports_tools": True, "supports_vision": True, "supports_json_schema": True}
_TEXT = {"supports_tools": True, "supports_vision": False, "supports_json_schema": True}
# OpenAI's reasoning models refuse a temperature other than the default.
_O_SERIES = {**_ALL, "supports_reasoning": True, "accepts_temperature": False}
_THINKS = {**_ALL, "supports_reasoning": True}


def _p(context: int, output: int, flags: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"context_window": context, "max_output_tokens": output, **flags, **changes}


CLOUD_PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "openai": {
        "gpt-5": _p(400_000, 128_000, _O_SERIES),
        "gpt-5-chat": _p(128_000, 16_384, _ALL, supports_reasoning=False),
        "gpt-4.1": _p(1_047_576, 32_768, _ALL, supports_reasoning=False),
        "gpt-4o": _p(128_000, 16_384, _ALL, supports_reasoning=False),
        "o1": _p(200_000, 100_000, _O_SERIES),
        "o1-mini": _p(
            128_000,
            65_536,
            _O_SERIES,
            supports_tools=False,
            supports_vision=False,
            supports_json_schema=False,
        ),
        "o3": _p(200_000, 100_000, _O_SERIES),
        "o3-mini": _p(200_000, 100_000, _O_SERIES, supports_vision=False),
        "o4-mini": _p(200_000, 100_000, _O_SERIES),
    },
    "anthropic": {
        "claude-opus-4-6": _p(200_000, 128_000, _THINKS),
        "claude-opus-4-5": _p(200_000, 64_000, _THINKS),
        "claude-opus-4": _p(200_000, 32_000, _THINKS),
        "claude-sonnet-4": _p(200_000, 64_000, _THINKS),
        "claude-haiku-4": _p(200_000, 64_000, _THINKS),
        "claude-3-5-haiku": _p(200_000, 8_192, _ALL, supports_reasoning=False),
    },
    "gemini": {
        "gemini-3": _p(_M, 65_536, _THINKS),
        "gemini-2.5": _p(_M, 65_536, _THINKS),
        "gemini-2.0-flash": _p(_M, 8_192, _ALL, supports_reasoning=False),
        "gemini-flash-latest": _p(_M, 65_536, _THINKS),
    },
    "xai": {
        "grok-4": _p(256_000, 64_000, _THINKS),
        "grok-3": _p(131_072, 16_384, _TEXT, supports_reasoning=False),
        "grok-3-mini": _p(131_072, 16_384, _TEXT, supports_reasoning=True),
        "grok-2": _p(131_072, 16_384, _TEXT, supports_reasoning=False),
    },
    "mistral": {
        "mistral-large": _p(131_072, 131_072, _TEXT, supports_reasoning=False),
        "mistral-medium": _p(131_072, 131_072, _ALL, supports_reasoning=False),
        "mistral-small": _p(131_072, 131_072, _ALL, supports_reasoning=False),
        "mistral-nemo": _p(131_072, 131_072, _TEXT, supports_reasoning=False),
        "codestral": _p(256_000, 256_000, _TEXT, supports_reasoning=False),
    },
    "deepseek": {
        "deepseek-chat": _p(128_000, 8_192, _TEXT, supports_reasoning=False),
        "deepseek-reasoner": _p(128_000, 64_000, _TEXT, supports_reasoning=True),
    },
    "groq": {
        "llama-3.3-70b-versatile": _p(131_072, 32_768, _TEXT, supports_reasoning=False),
        "llama-3.1-8b-instant": _p(131_072, 131_072, _TEXT, supports_reasoning=False),
        "mixtral-8x7b-32768": _p(32_768, 32_768, _TEXT, supports_reasoning=False),
        "gemma2-9b-it": _p(8_192, 8_192, _TEXT, supports_reasoning=False),
    },
    "moonshot": {
        "moonshot-v1-128k": _p(131_072, 131_072, _TEXT, supports_reasoning=False),
        "moonshot-v1-32k": _p(32_768, 32_768, _TEXT, supports_reasoning=False),
        "moonshot-v1-8k": _p(8_192, 8_192, _TEXT, supports_reasoning=False),
        "kimi-k2": _p(131_072, 131_072, _TEXT, supports_reasoning=False),
    },
    "perplexity": {
        "sonar-pro": _p(200_000, 8_000, {}, supports_tools=False, supports_vision=True),
        "sonar": _p(128_000, 8_000, {}, supports_tools=False, supports_vision=True),
        "sonar-reasoning": _p(128_000, 8_000, {}, supports_tools=False, supports_reasoning=True),
    },
}

PROVIDER_PROFILES: dict[str, dict[str, Any]] = {
    # Mistral's API forbids unknown fields (a 422 "extra_forbidden" for `stream_options`)
    # and puts `usage` on the last streamed chunk without being asked.
    "mistral": {"stream_usage": "always"},
}

# provider id -> probe name (see `adapters/_profile_probe.PROBES`).
LOCAL_PROBES: dict[str, str] = {
    "llama-cpp": "llamacpp",
    "vllm": "vllm",
    "lmstudio": "lmstudio",
    "sglang": "sglang",
    "openai-compatible": "vllm",  # `max_model_len` on /models when the server sends it
}
