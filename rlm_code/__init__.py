"""RLM Code provider layer: one connector for local and bring-your-own-key LLM providers.

The front door is importable from here — `from rlm_code import LLMConnector, ConfigManager,
ModelError` — but lazily (PEP 562): `import rlm_code` alone loads nothing else, so tools that
only need the version or one submodule do not pay for the connector. Each name is imported
from its home module the first time it is asked for.

Type checkers read `__init__.pyi` beside this file, which declares the same names with their
real types; this module itself imports nothing but `importlib` (not even `typing`: it is on the
path of every `rlm-code` command).
"""

from __future__ import annotations

from importlib import import_module

__version__ = "0.2.0"

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "LLMConnector": "rlm_code.models.llm_connector",
    "ConfigManager": "rlm_code.core.config",
    "ProviderRegistry": "rlm_code.models.providers.registry",
    "ResponseStream": "rlm_code.models.streaming",
    "AsyncResponseStream": "rlm_code.models.streaming",
    "Budget": "rlm_code.models.budget",
    "Route": "rlm_code.models.routes",
    "ModelProfile": "rlm_code.models.profiles",
    **dict.fromkeys(
        (
            "Response",
            "Usage",
            "ToolCall",
            "TextDelta",
            "ReasoningDelta",
            "ToolCallDelta",
            "ToolCallDone",
            "UsageReport",
            "Finished",
        ),
        "rlm_code.models.types",
    ),
    **dict.fromkeys(
        (
            "RLMCodeError",
            "ConfigError",
            "ModelError",
            "InvalidInputError",
            "ProviderNotFoundError",
            "MissingAPIKeyError",
            "InvalidAPIKeyFormatError",
            "SDKNotInstalledError",
            "NotConnectedError",
            "ModelNotFoundError",
            "ProviderConnectionError",
            "AuthenticationError",
            "RateLimitError",
            "ModelTimeoutError",
            "ProviderError",
            "ResponseFormatError",
            "UnsupportedParameterError",
            "ContextLengthExceededError",
            "ContentFilterError",
            "BudgetExceededError",
        ),
        "rlm_code.core.exceptions",
    ),
}

# Spelled out (not derived from _EXPORTS) so linters and type checkers can read it.
__all__ = [
    "AsyncResponseStream",
    "AuthenticationError",
    "Budget",
    "BudgetExceededError",
    "ConfigError",
    "ConfigManager",
    "ContentFilterError",
    "ContextLengthExceededError",
    "Finished",
    "InvalidAPIKeyFormatError",
    "InvalidInputError",
    "LLMConnector",
    "MissingAPIKeyError",
    "ModelError",
    "ModelNotFoundError",
    "ModelProfile",
    "ModelTimeoutError",
    "NotConnectedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderRegistry",
    "RLMCodeError",
    "RateLimitError",
    "ReasoningDelta",
    "Response",
    "ResponseFormatError",
    "ResponseStream",
    "Route",
    "SDKNotInstalledError",
    "TextDelta",
    "ToolCall",
    "ToolCallDelta",
    "ToolCallDone",
    "UnsupportedParameterError",
    "Usage",
    "UsageReport",
    "__version__",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlm_code' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
