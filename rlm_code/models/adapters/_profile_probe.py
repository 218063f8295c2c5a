"""Live probes of local servers for a model's profile: context size and capabilities.

Each probe asks its server one or two small GETs/POSTs on the connection's own client, with
the connect timeout as the whole budget and no retries, and returns the `ModelProfile` fields
it could read (anything it cannot read is left out, so the table or the defaults answer). A
probe that fails raises a `ModelError`, which `Adapter.profile` swallows: a profile is a
best effort, never a reason for a call to fail. Probes never run during discovery.

- Ollama ``POST /api/show {"model"}``: ``model_info["<arch>.context_length"]`` and
  ``capabilities`` ("tools", "vision", "thinking"); every Ollama model takes a JSON schema
  (``format``).
- llama.cpp ``GET /props``: ``default_generation_settings.n_ctx`` (older builds: ``n_ctx`` at
  the top), ``modalities.vision``.
- vLLM ``GET /v1/models``: the model's ``max_model_len``.
- LM Studio ``GET /api/v0/models``: ``loaded_context_length`` (else ``max_context_length``),
  ``type: "vlm"`` for vision, ``capabilities: ["tool_use"]``.
- SGLang ``GET /get_model_info``: ``has_image_understanding`` (and ``max_context_length`` where
  the server sends it), then ``/v1/models``' ``max_model_len``.

Server-root paths (``/props``, ``/api/v0/models``, ``/get_model_info``) are reached from a base
URL that ends in ``/v1`` by going up (``/../props``), which the HTTP client resolves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rlm_code.models.adapters.base import as_count

if TYPE_CHECKING:
    from rlm_code.models.adapters._transport import SyncHTTP

__all__ = ["PROBES", "ollama_profile", "probe"]

Probe = Callable[["SyncHTTP", str, float], dict[str, Any]]


def _root(http: SyncHTTP, path: str) -> str:
    """`path` at the server's root, relative to the client's base URL."""
    depth = len([p for p in urlsplit(http.base_url).path.split("/") if p])
    return "/.." * depth + path


def _get(http: SyncHTTP, path: str, timeout: float) -> Any:
    return http.request_json("GET", path, timeout=timeout, retry=False)


def _listed(data: Any, model: str) -> dict[str, Any] | None:
    """The entry of `model` in a `{"data": [...]}` list (the only one when it is alone)."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    entries = [i for i in items if isinstance(i, dict)]
    for item in entries:
        if item.get("id") == model:
            return item
    return entries[0] if len(entries) == 1 else None


def ollama_profile(data: Any) -> dict[str, Any]:
    """The fields of an Ollama ``/api/show`` answer."""
    found: dict[str, Any] = {}
    if not isinstance(data, dict):
        return found
    info = data.get("model_info")
    if isinstance(info, dict):
        for key, value in info.items():
            if isinstance(key, str) and key.endswith(".context_length"):
                count = as_count(value)
                if count:
                    found["context_window"] = count
                    break
    capabilities = data.get("capabilities")
    if isinstance(capabilities, list):
        found["supports_tools"] = "tools" in capabilities
        found["supports_vision"] = "vision" in capabilities
        found["supports_reasoning"] = "thinking" in capabilities
        found["supports_json_schema"] = True
    return found


def _llamacpp(http: SyncHTTP, model: str, timeout: float) -> dict[str, Any]:
    data = _get(http, _root(http, "/props"), timeout)
    found: dict[str, Any] = {}
    if not isinstance(data, dict):
        return found
    settings = data.get("default_generation_settings")
    n_ctx = settings.get("n_ctx") if isinstance(settings, dict) else None
    count = as_count(n_ctx if n_ctx is not None else data.get("n_ctx"))
    if count:
        found["context_window"] = count
    modalities = data.get("modalities")
    if isinstance(modalities, dict) and isinstance(modalities.get("vision"), bool):
        found["supports_vision"] = modalities["vision"]
    return found


def _max_model_len(http: SyncHTTP, model: str, timeout: float) -> dict[str, Any]:
    entry = _listed(_get(http, "/models", timeout), model)
    count = as_count(entry.get("max_model_len")) if entry else None
    return {"context_window": count} if count else {}


def _lmstudio(http: SyncHTTP, model: str, timeout: float) -> dict[str, Any]:
    entry = _listed(_get(http, _root(http, "/api/v0/models"), timeout), model)
    found: dict[str, Any] = {}
    if entry is None:
        return found
    count = as_count(entry.get("loaded_context_length")) or as_count(
        entry.get("max_context_length")
    )
    if count:
        found["context_window"] = count
    kind = entry.get("type")
    if isinstance(kind, str):
        found["supports_vision"] = kind == "vlm"
    capabilities = entry.get("capabilities")
    if isinstance(capabilities, list):
        found["supports_tools"] = "tool_use" in capabilities
    return found


def _sglang(http: SyncHTTP, model: str, timeout: float) -> dict[str, Any]:
    data = _get(http, _root(http, "/get_model_info"), timeout)
    found: dict[str, Any] = {}
    if isinstance(data, dict):
        if isinstance(data.get("has_image_understanding"), bool):
            found["supports_vision"] = data["has_image_understanding"]
        count = as_count(data.get("max_context_length"))
        if count:
            found["context_window"] = count
    if "context_window" not in found:
        found.update(_max_model_len(http, model, timeout))
    return found


PROBES: dict[str, Probe] = {
    "llamacpp": _llamacpp,
    "vllm": _max_model_len,
    "lmstudio": _lmstudio,
    "sglang": _sglang,
}


def probe(kind: str | None, http: SyncHTTP, model: str, timeout: float) -> dict[str, Any]:
    """Run the probe named `kind` (None: no probe for this provider)."""
    run = PROBES.get(kind) if kind else None
    if run is None:
        return {}
    try:
        return run(http, model, timeout)
    except (ValueError, TypeError, AttributeError):
        return {}  # an answer of an unexpected shape tells us nothing
