"""Native discovery routes of TGI (``/info``, ``/health``) and llama.cpp (``/props``, ``/health``).

Both servers also speak OpenAI Chat Completions under ``/v1``, which the server answers with
`rlm_code.testing.formats.openai`; this module only covers what tells them apart, which is what
a discovery probe looks at, and their own error bodies for those routes.

When they own the ``/v1`` routes (OpenAI disabled), the body faults get their own bodies:
llama.cpp's ``exceed_context_size_error`` (with ``n_prompt_tokens`` and ``n_ctx``) and its
"Unsupported param" 400; TGI's 422 validation error for a prompt plus ``max_new_tokens`` over
``max_total_tokens``. Neither server filters content, and TGI accepts and ignores parameters
it does not use, so those faults get a normal answer there.
"""

from __future__ import annotations

from rlm_code.testing.faults import Fault
from rlm_code.testing.formats.openai import OpenAIFormat
from rlm_code.testing.wire import ErrorKind, ErrorReply, ErrorSpec, JsonObject

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

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        if fault.mode != "context_length":
            return None
        new_tokens = min(1000, fault.context_requested)
        message = (
            f"Input validation error: `inputs` tokens + `max_new_tokens` must be <= "
            f"{fault.context_limit}. Given: {fault.context_requested - new_tokens} `inputs` "
            f"tokens and {new_tokens} `max_new_tokens`"
        )
        return ErrorReply(422, {"error": message, "error_type": "validation"})

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

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        error: JsonObject
        if fault.mode == "context_length":
            requested, limit = fault.context_requested, fault.context_limit
            error = {
                "code": 400,
                "message": f"request ({requested} tokens) exceeds the available context size "
                f"({limit} tokens), try increasing it",
                "type": "exceed_context_size_error",
                "n_prompt_tokens": requested,
                "n_ctx": limit,
            }
        elif fault.mode == "unsupported_parameter":
            error = {
                "code": 400,
                "message": "Unsupported param: best_of",
                "type": "invalid_request_error",
            }
        else:
            return None
        return ErrorReply(400, {"error": error})

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
