"""Native discovery routes of TGI (``/info``, ``/health``) and llama.cpp (``/props``, ``/health``).

Both servers also speak OpenAI Chat Completions under ``/v1``, which the server answers with
`rlm_code.testing.formats.openai`; this module only covers what tells them apart, which is what
a discovery probe looks at, and their own error bodies for those routes.
"""

from __future__ import annotations

from rlm_code.testing.formats.openai import OpenAIFormat
from rlm_code.testing.wire import ErrorKind, ErrorSpec, JsonObject

__all__ = ["LlamaCppFormat", "TgiFormat"]

_STATUS: dict[ErrorKind, ErrorSpec] = {
    # ``type`` is TGI's ``error_type`` and llama.cpp's ``error.type``
    "bad_request": ErrorSpec(400, "invalid_request_error", "Invalid request"),
    "auth_missing": ErrorSpec(401, "authentication_error", "Invalid API Key"),
    "auth_invalid": ErrorSpec(401, "authentication_error", "Invalid API Key"),
    "unauthorized": ErrorSpec(401, "authentication_error", "Invalid API Key"),
    "not_found": ErrorSpec(404, "not_found_error", "Model {model} not found"),
    "rate_limit": ErrorSpec(429, "overloaded", "Model is overloaded"),
    "server_error": ErrorSpec(500, "server_error", "Internal server error"),
    "unavailable": ErrorSpec(503, "unavailable_error", "Loading model"),
}


class TgiFormat(OpenAIFormat):
    """Text Generation Inference: OpenAI routes plus ``/info``; errors ``{error, error_type}``."""

    name = "tgi"
    errors = _STATUS

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        return {"error": text, "error_type": spec.type}

    def render_info(self, model: str) -> JsonObject:
        return {
            "model_id": model,
            "model_sha": None,
            "model_pipeline_tag": "text-generation",
            "max_concurrent_requests": 128,
            "max_best_of": 2,
            "max_stop_sequences": 4,
            "max_input_tokens": 4095,
            "max_total_tokens": 4096,
            "validation_workers": 2,
            "max_client_batch_size": 4,
            "router": "text-generation-router",
            "version": "3.3.6",
            "sha": None,
            "docker_label": None,
        }


class LlamaCppFormat(OpenAIFormat):
    """llama.cpp ``llama-server``: OpenAI routes plus ``/props`` and ``/health``."""

    name = "llamacpp"
    errors = _STATUS

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        return {"error": {"code": spec.status, "message": text, "type": spec.type}}

    def render_props(self, model: str) -> JsonObject:
        return {
            "default_generation_settings": {
                "id": 0,
                "n_ctx": 4096,
                "speculative": False,
                "is_processing": False,
                "params": {
                    "n_predict": -1,
                    "temperature": 0.8,
                    "top_k": 40,
                    "top_p": 0.95,
                    "stream": True,
                },
                "model": model,
            },
            "total_slots": 1,
            "model_path": f"models/{model}.gguf",
            "chat_template": "{{ messages }}",
            "modalities": {"vision": False, "audio": False},
            "build_info": "b6000-local",
        }
