"""OpenCode Zen's provider hooks: its free-model rule, its CLI route and `opencode models`.

OpenCode Zen works without a key on its free models. Without `OPENCODE_API_KEY` the curated
list is therefore filtered to them, and — when no base URL was configured and the `opencode`
CLI is on PATH — replies go through that CLI (which holds its own session) instead of HTTP.
The resolver (`rlm_code.models.resolve`) calls these hooks through the registry row's `hooks`
path; nothing else names OpenCode.
"""

from __future__ import annotations

import importlib
import logging
import shutil
import subprocess
import threading
import time

from rlm_code.models.adapters.base import Adapter, Endpoint

LOGGER_NAME = "rlm_code.providers.opencode"
EXECUTABLE = "opencode"
CLI_ADAPTER = "rlm_code.models.adapters.opencode_cli:OpenCodeCLIAdapter"
OPENCODE_MODELS_TTL = 30.0  # seconds `opencode models` output is reused
OPENCODE_MODELS_TIMEOUT = 5.0  # seconds `opencode models` may take
OPENCODE_FREE_MODELS = frozenset({"big-pickle", "grok-code", "gpt-5-nano"})

_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, list[str]]] = {}  # executable path -> (time, models)


def is_free_opencode_model(name: str) -> bool:
    """OpenCode Zen's free tier: `*-free` models and the named free ones."""
    base = name.split("/")[-1]
    return base.endswith("-free") or base in OPENCODE_FREE_MODELS


def choose_adapter(endpoint: Endpoint, base_url_source: str) -> type[Adapter] | None:
    """The CLI adapter when keyless, no base URL configured and `opencode` on PATH; else None
    (the row's HTTP adapter, without an `Authorization` header when keyless)."""
    if endpoint.api_key is not None or base_url_source != "default":
        return None
    if shutil.which(EXECUTABLE) is None:
        return None
    module_name, _, class_name = CLI_ADAPTER.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{CLI_ADAPTER} is not an Adapter")
    return cls


def live_models() -> list[str]:
    """OpenCode Zen models from `opencode models` (lines `opencode/<model>`), cached 30 s.

    Empty when the CLI is missing, slow or failing: the catalog still applies.
    """
    executable = shutil.which(EXECUTABLE)
    if executable is None:
        return []
    with _cache_lock:
        cached = _cache.get(executable)
    if cached is not None and time.monotonic() - cached[0] < OPENCODE_MODELS_TTL:
        return list(cached[1])
    models: list[str] = []
    try:
        done = subprocess.run(
            [executable, "models"],
            capture_output=True,
            text=True,
            timeout=OPENCODE_MODELS_TIMEOUT,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired, UnicodeDecodeError) as exc:
        logging.getLogger(LOGGER_NAME).info("`opencode models` failed: %s", type(exc).__name__)
    else:
        for line in done.stdout.splitlines() if done.returncode == 0 else []:
            token = line.strip().split(" ", 1)[0]
            if token.startswith("opencode/") and len(token) > len("opencode/"):
                name = token[len("opencode/") :]
                if name not in models:
                    models.append(name)
    with _cache_lock:
        _cache[executable] = (time.monotonic(), models)
    return list(models)


def filter_models(models: list[str], key_present: bool) -> list[str]:
    """Without a key only the free models can be used, so only they are offered."""
    return list(models) if key_present else [m for m in models if is_free_opencode_model(m)]


__all__ = [
    "OPENCODE_FREE_MODELS",
    "choose_adapter",
    "filter_models",
    "is_free_opencode_model",
    "live_models",
]
