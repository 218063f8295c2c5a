"""Ollama native API wire format (``/api/chat``, ``/api/generate``, ``/api/tags`` ...).

Shapes follow a real Ollama server as parsed by the ``ollama`` SDK: NDJSON streams (the default
when ``stream`` is absent) ending in a ``"done": true`` object with ``prompt_eval_count``,
``eval_count``, ``done_reason`` and nanosecond durations, and ``{"error": "..."}`` errors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rlm_code.testing.formats.openai import bearer_token
from rlm_code.testing.wire import (
    ErrorKind,
    ErrorSpec,
    JsonObject,
    StreamPlan,
    WireError,
    WireFormat,
    WireReply,
    WireRequest,
    dumps,
    message_texts,
    optional_int,
    require_object,
    required_text,
)

__all__ = ["OLLAMA_VERSION", "OllamaFormat", "ollama_name"]

OLLAMA_VERSION = "0.12.6"
MODIFIED_AT = "2025-01-01T00:00:00Z"

# Ollama errors are a bare ``{"error": text}``: no type.
_ERRORS: dict[ErrorKind, ErrorSpec] = {
    "bad_request": ErrorSpec(400, "", "invalid request"),
    "auth_missing": ErrorSpec(401, "", "unauthorized"),
    "auth_invalid": ErrorSpec(401, "", "unauthorized"),
    "unauthorized": ErrorSpec(401, "", "unauthorized"),
    "not_found": ErrorSpec(404, "", 'model "{model}" not found, try pulling it first'),
    "rate_limit": ErrorSpec(429, "", "too many requests, please try again later"),
    "server_error": ErrorSpec(500, "", "llama runner process has terminated: exit status 2"),
    "unavailable": ErrorSpec(
        503, "", "server busy, please try again.  maximum pending requests exceeded"
    ),
}


def ollama_name(model: str) -> str:
    """Ollama's canonical model name: a missing tag means ``:latest``."""
    return model if ":" in model else model + ":latest"


class OllamaFormat(WireFormat):
    name = "ollama"
    stream_content_type = "application/x-ndjson"
    errors = _ERRORS

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        return {"error": text}

    def malformed_frame(self) -> bytes:
        return b'{"model":"malformed","message":{"role":"assistant","content":\n'

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        data = require_object(body)
        model = required_text(data, "model", "model is required")
        texts: list[str] = []
        last_user = ""
        if endpoint == "generate":
            system = data.get("system")
            if isinstance(system, str) and system:
                texts.append(system)
            prompt = data.get("prompt")
            last_user = prompt if isinstance(prompt, str) else ""
            texts.append(last_user)
        else:
            messages = data.get("messages") or []
            if not isinstance(messages, list):
                raise WireError("bad_request", "invalid messages")
            texts, last_user = message_texts(messages, _plain_text, invalid="invalid message")
        options = data.get("options")
        max_tokens = None
        if isinstance(options, dict):
            max_tokens = optional_int(options.get("num_predict"), "num_predict")
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=data.get("stream", True) is not False,
            endpoint=endpoint,
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        answer = self._chunk(completion, completion.text)
        answer.update(self._done(completion))
        return answer

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        pieces = completion.pieces
        content = (dumps(self._chunk(completion, piece, done=False)) + b"\n" for piece in pieces)
        tail: list[bytes] = []
        if terminate:
            final = self._chunk(completion, "")
            final.update(self._done(completion))
            tail.append(dumps(final) + b"\n")
        return StreamPlan(head=(), content=content, piece_count=len(pieces), tail=tail)

    def render_tags(self, names: list[str]) -> JsonObject:
        return {"models": [self.render_tag(name) for name in names]}

    def render_tag(self, name: str) -> JsonObject:
        full = ollama_name(name)
        return {
            "name": full,
            "model": full,
            "modified_at": MODIFIED_AT,
            "size": 1_000_000 * (len(full) + 100),
            "digest": hashlib.sha256(full.encode()).hexdigest(),
            "details": _details(full),
        }

    def render_show(self, name: str) -> JsonObject:
        family = _details(name)["family"]
        return {
            "modelfile": f"FROM {ollama_name(name)}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": _details(name),
            "model_info": {
                "general.architecture": family,
                f"{family}.context_length": 131072,
            },
            "capabilities": ["completion"],
            "modified_at": MODIFIED_AT,
        }

    def _chunk(self, completion: WireReply, text: str, *, done: bool = True) -> JsonObject:
        created = datetime.fromtimestamp(completion.created, UTC)
        chunk: JsonObject = {
            "model": completion.model,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if completion.request.endpoint == "generate":
            chunk["response"] = text
        else:
            chunk["message"] = {"role": "assistant", "content": text}
        chunk["done"] = done
        return chunk

    def _done(self, completion: WireReply) -> JsonObject:
        prompt_ns = 1_000_000 * max(1, completion.prompt_tokens)
        eval_ns = 10_000_000 * max(1, completion.completion_tokens)
        done: JsonObject = {
            "done_reason": "length" if completion.truncated else "stop",
            "total_duration": 1_000_000 + prompt_ns + eval_ns,
            "load_duration": 1_000_000,
        }
        if completion.usage:
            done["prompt_eval_count"] = completion.prompt_tokens
        done["prompt_eval_duration"] = prompt_ns
        if completion.usage:
            done["eval_count"] = completion.completion_tokens
        done["eval_duration"] = eval_ns
        return done


def _details(name: str) -> dict[str, Any]:
    base = name.split(":", 1)[0].split("/")[-1]
    family = "qwen2" if base.startswith("qwen") else "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "7.6B" if "7b" in name else "3.2B",
        "quantization_level": "Q4_K_M",
    }


def _plain_text(content: Any) -> str:
    """Ollama message content is a plain string (images go in a separate field)."""
    return content if isinstance(content, str) else ""
