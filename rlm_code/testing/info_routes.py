"""The local server's GET documents about models: lists, probes and health.

Split from `app` (which keeps the request flow and the chat routes) so both stay small. These
are what discovery and a model profile read: ``/v1/models`` (OpenAI's list; vLLM's
``max_model_len`` on a model with a ``ctxN`` name, see `modes`), ``/props`` (llama.cpp's
``n_ctx``), ``/info`` and ``/health`` (TGI, llama.cpp), Gemini's ``/v1beta/models``, LM
Studio's ``/api/v0/models`` and SGLang's ``/get_model_info``. Every route goes through
`_Routes._document` (the shared prelude: recording, faults, keys).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from rlm_code.testing.formats import (
    AnthropicFormat,
    GeminiFormat,
    LlamaCppFormat,
    OpenAIFormat,
    TgiFormat,
)
from rlm_code.testing.formats.ollama import _details
from rlm_code.testing.modes import DEFAULT_MODEL_CONTEXT, capabilities, context_limit
from rlm_code.testing.state import DEFAULT_MODELS, ServerConfig
from rlm_code.testing.wire import JsonObject, WireFormat

__all__ = ["CREATED", "InfoRoutes"]

CREATED = 1_735_689_600  # 2025-01-01, "created" of every listed model
# llama.cpp's and LM Studio's loaded context when the name sets none.
LOADED_CONTEXT = 4096

Document = Callable[..., Coroutine[Any, Any, web.StreamResponse]]


def _with_max_model_len(document: JsonObject) -> JsonObject:
    """vLLM's field on each listed model whose name sets its context."""
    for entry in document.get("data", ()):
        limit = context_limit(str(entry.get("id", "")))
        if limit is not None:
            entry["max_model_len"] = limit
    return document


def lmstudio_entry(model: str) -> JsonObject:
    """One model of LM Studio's ``/api/v0/models`` (a loaded GGUF model)."""
    limit = context_limit(model)
    can = capabilities(model)
    return {
        "id": model,
        "object": "model",
        "type": "vlm" if can["vision"] else "llm",
        "publisher": "local",
        "arch": _details(model)["family"],
        "compatibility_type": "gguf",
        "quantization": "Q4_K_M",
        "state": "loaded",
        "max_context_length": limit or DEFAULT_MODEL_CONTEXT,
        "loaded_context_length": limit or LOADED_CONTEXT,
        "capabilities": ["tool_use"] if can["tools"] else [],
    }


def sglang_info(model: str) -> JsonObject:
    """SGLang's ``/get_model_info`` for its one served model."""
    family = _details(model)["family"]
    return {
        "model_path": model,
        "tokenizer_path": model,
        "is_generation": True,
        "preferred_sampling_params": None,
        "weight_version": "default",
        "has_image_understanding": capabilities(model)["vision"],
        "has_audio_understanding": False,
        "model_type": family,
        "architectures": ["Qwen2ForCausalLM" if family == "qwen2" else "LlamaForCausalLM"],
    }


class InfoRoutes:
    """Mixed into `app._Routes`, which provides the formats, the config and `_document`."""

    config: ServerConfig
    openai: OpenAIFormat
    anthropic: AnthropicFormat
    gemini: GeminiFormat
    tgi: TgiFormat
    llamacpp: LlamaCppFormat
    _document: Document

    def _openai_family(self) -> OpenAIFormat:
        """Whose error bodies the shared ``/v1`` routes use when OpenAI itself is off."""
        if self.config.enabled("openai"):
            return self.openai
        if self.config.enabled("llamacpp"):
            return self.llamacpp
        return self.tgi

    async def gemini_models(self, request: web.Request) -> web.StreamResponse:
        names = list(self.config.models)
        return await self._document(request, self.gemini, lambda: self.gemini.render_models(names))

    async def gemini_model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]
        fmt = self.gemini
        return await self._document(request, fmt, lambda: fmt.render_model(model), model)

    async def v1_models(self, request: web.Request) -> web.StreamResponse:
        owner = self._v1_models_format(request)
        if owner == "anthropic":
            return await self._document(request, self.anthropic, self._anthropic_models)
        if owner == "gemini":
            return await self.gemini_models(request)
        family = self._openai_family()
        names = list(self.config.models)
        return await self._document(
            request, family, lambda: _with_max_model_len(family.render_models(names, CREATED))
        )

    async def v1_model(self, request: web.Request) -> web.StreamResponse:
        model = request.match_info["model"]
        owner = self._v1_models_format(request)
        if owner == "anthropic":
            fmt: WireFormat = self.anthropic
            return await self._document(
                request, fmt, lambda: self.anthropic.render_model(model), model
            )
        if owner == "gemini":
            return await self.gemini_model(request)
        family = self._openai_family()
        return await self._document(
            request, family, lambda: family.render_model(model, CREATED), model
        )

    def _anthropic_models(self) -> JsonObject:
        return self.anthropic.render_models(list(self.config.models))

    def _v1_models_format(self, request: web.Request) -> str:
        """Who asks ``GET /v1/models``: the SDKs differ only in their headers.

        Anthropic's SDK always sends ``anthropic-version``; Google's sends ``x-goog-api-key``
        (or ``?key=``) and ``x-goog-api-client``; anything else is an OpenAI-style client.
        """
        enabled = self.config.enabled
        headers = request.headers
        if "anthropic-version" in headers and enabled("anthropic"):
            return "anthropic"
        google = "x-goog-api-key" in headers or "x-goog-api-client" in headers
        if (google or "key" in request.query) and enabled("gemini"):
            return "gemini"
        if enabled("openai", "tgi", "llamacpp"):
            return "openai"
        if enabled("anthropic"):
            return "anthropic"
        return "gemini"

    async def health(self, request: web.Request) -> web.StreamResponse:
        if self.config.enabled("llamacpp"):
            return await self._document(
                request, self.llamacpp, lambda: {"status": "ok"}, auth=False
            )
        return await self._document(request, self.tgi, None, auth=False)

    async def tgi_info(self, request: web.Request) -> web.StreamResponse:
        model = self.config.models[0]
        return await self._document(request, self.tgi, lambda: self.tgi.render_info(model))

    def _served(self) -> str:
        """The one model a single-model server (llama.cpp, SGLang) serves: the first added
        with `models=`, else the first default."""
        extra = [name for name in self.config.models if name not in DEFAULT_MODELS]
        return (extra or list(self.config.models))[0]

    async def llamacpp_props(self, request: web.Request) -> web.StreamResponse:
        model = self._served()
        fmt = self.llamacpp

        def render() -> JsonObject:
            props = fmt.render_props(model)
            props["default_generation_settings"]["n_ctx"] = context_limit(model) or LOADED_CONTEXT
            props["modalities"]["vision"] = capabilities(model)["vision"]
            return props

        return await self._document(request, fmt, render)

    async def lmstudio_models(self, request: web.Request) -> web.StreamResponse:
        names = list(self.config.models)
        return await self._document(
            request,
            self._openai_family(),
            lambda: {"object": "list", "data": [lmstudio_entry(name) for name in names]},
        )

    async def sglang_model_info(self, request: web.Request) -> web.StreamResponse:
        model = self._served()
        return await self._document(request, self._openai_family(), lambda: sglang_info(model))
