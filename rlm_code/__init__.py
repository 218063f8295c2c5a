"""RLM Code provider layer: one connector for local and bring-your-own-key LLM providers.

This module is deliberately tiny. Importing `rlm_code` must not import an HTTP stack,
a YAML parser or any provider SDK; those load when a command or a connection needs them.
"""

__version__ = "0.2.0"
__all__ = ["__version__"]
