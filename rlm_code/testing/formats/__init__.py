"""Per-protocol wire formats of the local protocol server, one module per service family."""

from __future__ import annotations

from rlm_code.testing.formats.anthropic import AnthropicFormat
from rlm_code.testing.formats.gemini import GeminiFormat
from rlm_code.testing.formats.native import LlamaCppFormat, TgiFormat
from rlm_code.testing.formats.ollama import OllamaFormat
from rlm_code.testing.formats.openai import OpenAIFormat

__all__ = [
    "AnthropicFormat",
    "GeminiFormat",
    "LlamaCppFormat",
    "OllamaFormat",
    "OpenAIFormat",
    "TgiFormat",
]
