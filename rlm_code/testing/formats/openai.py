"""OpenAI Chat Completions wire format (also served for TGI and llama.cpp under ``/v1``).

Shapes follow what api.openai.com sends and the ``openai`` SDK parses: ``chat.completion``
objects, ``chat.completion.chunk`` SSE events ending in ``data: [DONE]``, and
``{"error": {"message", "type", "param", "code"}}`` errors.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from rlm_code.testing.wire import (
    ErrorKind,
    ErrorSpec,
    JsonObject,
    StreamPlan,
    WireError,
    WireFormat,
    WireReply,
    WireRequest,
    content_text,
    dumps,
    message_texts,
    optional_int,
    require_object,
    required_text,
)

__all__ = ["OpenAIFormat", "bearer_token"]

_INVALID_KEY = (
    "Incorrect API key provided. You can find your API key at "
    "https://platform.openai.com/account/api-keys."
)

_ERRORS: dict[ErrorKind, ErrorSpec] = {
    "bad_request": ErrorSpec(400, "invalid_request_error", "Invalid request."),
    "auth_missing": ErrorSpec(
        401,
        "invalid_request_error",
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    ),
    "auth_invalid": ErrorSpec(401, "invalid_request_error", _INVALID_KEY, "invalid_api_key"),
    "unauthorized": ErrorSpec(401, "invalid_request_error", _INVALID_KEY, "invalid_api_key"),
    "not_found": ErrorSpec(
        404,
        "invalid_request_error",
        "The model `{model}` does not exist or you do not have access to it.",
        "model_not_found",
    ),
    "rate_limit": ErrorSpec(
        429,
        "requests",
        "Rate limit reached for {model} on requests per min (RPM): Limit 3, Used 3, "
        "Requested 1. Please try again in {retry}s.",
        "rate_limit_exceeded",
    ),
    "server_error": ErrorSpec(
        500,
        "server_error",
        "The server had an error while processing your request. Sorry about that!",
    ),
    "unavailable": ErrorSpec(
        503, "server_error", "The engine is currently overloaded, please try again later."
    ),
}

_OWNERS = (("gpt-", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"))


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class OpenAIFormat(WireFormat):
    name = "openai"
    stream_content_type = "text/event-stream; charset=utf-8"
    errors = _ERRORS

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def response_headers(self) -> dict[str, str]:
        return {"x-request-id": "req_" + uuid.uuid4().hex, "openai-processing-ms": "1"}

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        return {"error": {"message": text, "type": spec.type, "param": param, "code": spec.code}}

    def malformed_frame(self) -> bytes:
        return b'data: {"id":"chatcmpl-malformed","object":"chat.completion.chunk","choices":[{\n\n'

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        data = require_object(body)
        model = required_text(data, "model", "you must provide a model parameter")
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise WireError(
                "bad_request", "Missing required parameter: 'messages'.", param="messages"
            )
        texts, last_user = message_texts(
            messages, content_text, invalid="Invalid type for 'messages'.", param="messages"
        )
        max_tokens = optional_int(data.get("max_completion_tokens"), "max_completion_tokens")
        if max_tokens is None:
            max_tokens = optional_int(data.get("max_tokens"), "max_tokens")
        options = data.get("stream_options")
        stream_usage = isinstance(options, dict) and options.get("include_usage") is True
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=data.get("stream") is True,
            stream_usage=stream_usage,
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        answer: JsonObject = {
            "id": "chatcmpl-" + completion.id,
            "object": "chat.completion",
            "created": int(completion.created),
            "model": completion.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": completion.text,
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": _finish_reason(completion),
                }
            ],
            "service_tier": "default",
            "system_fingerprint": "fp_local",
        }
        if completion.usage:
            answer["usage"] = _usage(completion)
        return answer

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        base = {
            "id": "chatcmpl-" + completion.id,
            "object": "chat.completion.chunk",
            "created": int(completion.created),
            "model": completion.model,
            "service_tier": "default",
            "system_fingerprint": "fp_local",
        }
        with_usage = completion.request.stream_usage and completion.usage

        def chunk(delta: JsonObject, finish: str | None = None) -> bytes:
            event: JsonObject = dict(base)
            event["choices"] = [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            ]
            if with_usage:
                event["usage"] = None
            return _sse(event)

        head = [chunk({"role": "assistant", "content": "", "refusal": None})]
        pieces = completion.pieces
        content = (chunk({"content": piece}) for piece in pieces)
        tail = [chunk({}, _finish_reason(completion))]
        if with_usage:
            usage_event: JsonObject = dict(base)
            usage_event["choices"] = []
            usage_event["usage"] = _usage(completion)
            tail.append(_sse(usage_event))
        if terminate:
            tail.append(b"data: [DONE]\n\n")
        return StreamPlan(head=head, content=content, piece_count=len(pieces), tail=tail)

    def render_models(self, names: list[str], created: int) -> JsonObject:
        return {"object": "list", "data": [self.render_model(name, created) for name in names]}

    def render_model(self, name: str, created: int) -> JsonObject:
        owner = next((who for prefix, who in _OWNERS if name.startswith(prefix)), "local")
        return {"id": name, "object": "model", "created": created, "owned_by": owner}


def _sse(event: JsonObject) -> bytes:
    return b"data: " + dumps(event) + b"\n\n"


def _finish_reason(completion: WireReply) -> str:
    return "length" if completion.truncated else "stop"


def _usage(completion: WireReply) -> JsonObject:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
