"""RLM Code provider layer: one connector for local and bring-your-own-key LLM providers.

The front door is importable from here — `from rlm_code import LLMConnector, ConfigManager,
ModelError` — but lazily (PEP 562): `import rlm_code` alone loads nothing else, so tools that
only need the version or one submodule do not pay for the connector. Each name is imported
from its home module the first time it is asked for.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# name -> the module that defines it
_EXPORTS: dict[str, str] = {
    "LLMConnector": "rlm_code.models.llm_connector",
    "ConfigManager": "rlm_code.core.config",
    "ProviderRegistry": "rlm_code.models.providers.registry",
    "ResponseStream": "rlm_code.models.streaming",
    "AsyncResponseStream": "rlm_code.models.streaming",
    **dict.fromkeys(
        ("Response", "Usage", "TextDelta", "UsageReport", "Finished"), "rlm_code.models.types"
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
        ),
        "rlm_code.core.exceptions",
    ),
}

# Spelled out (not derived from _EXPORTS) so linters and type checkers can read it.
__all__ = [
    "AsyncResponseStream",
    "AuthenticationError",
    "ConfigError",
    "ConfigManager",
    "Finished",
    "InvalidAPIKeyFormatError",
    "InvalidInputError",
    "LLMConnector",
    "MissingAPIKeyError",
    "ModelError",
    "ModelNotFoundError",
    "ModelTimeoutError",
    "NotConnectedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotFoundError",
    "ProviderRegistry",
    "RLMCodeError",
    "RateLimitError",
    "Response",
    "ResponseFormatError",
    "ResponseStream",
    "SDKNotInstalledError",
    "TextDelta",
    "Usage",
    "UsageReport",
    "__version__",
]

if TYPE_CHECKING:
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import (
        AuthenticationError,
        ConfigError,
        InvalidAPIKeyFormatError,
        InvalidInputError,
        MissingAPIKeyError,
        ModelError,
        ModelNotFoundError,
        ModelTimeoutError,
        NotConnectedError,
        ProviderConnectionError,
        ProviderError,
        ProviderNotFoundError,
        RateLimitError,
        ResponseFormatError,
        RLMCodeError,
        SDKNotInstalledError,
    )
    from rlm_code.models.llm_connector import LLMConnector
    from rlm_code.models.providers.registry import ProviderRegistry
    from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
    from rlm_code.models.types import Finished, Response, TextDelta, Usage, UsageReport


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'rlm_code' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
