"""Gemini API (generativelanguage ``v1beta``) wire format.

Shapes follow what the ``google-genai`` SDK parses: ``GenerateContentResponse`` objects with
``candidates``/``content``/``parts`` and ``usageMetadata``, SSE streams
(``streamGenerateContent?alt=sse``) whose every event is such a response, and
``{"error": {"code", "message", "status"}}`` errors. The model is part of the URL path.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from rlm_code.testing.text import count_tokens
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
    text_of_parts,
)

__all__ = ["GeminiFormat"]

_API_KEY_INVALID = "API key not valid. Please pass a valid API key."

_ERRORS: dict[ErrorKind, ErrorSpec] = {
    "bad_request": ErrorSpec(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "auth_missing": ErrorSpec(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    ),
    "auth_invalid": ErrorSpec(400, "INVALID_ARGUMENT", _API_KEY_INVALID),
    "unauthorized": ErrorSpec(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
    ),
    "not_found": ErrorSpec(
        404,
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    ),
    "rate_limit": ErrorSpec(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    "server_error": ErrorSpec(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "unavailable": ErrorSpec(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    ),
}


class GeminiFormat(WireFormat):
    name = "gemini"
    stream_content_type = "text/event-stream"
    errors = _ERRORS

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return (headers.get("x-goog-api-key") or query.get("key") or "").strip() or None

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        error: JsonObject = {"code": spec.status, "message": text, "status": spec.type}
        if kind == "auth_invalid":
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        elif kind == "rate_limit":
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after}s",
                }
            ]
        return {"error": error}

    def malformed_frame(self) -> bytes:
        return b'data: {"candidates":[{"content":{"parts":[{"text":\r\n\r\n'

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        data = require_object(body)
        model = path_model or ""
        contents = data.get("contents")
        if not isinstance(contents, list) or not contents:
            raise WireError(
                "bad_request", "* GenerateContentRequest.contents: contents is not specified\n"
            )
        texts: list[str] = []
        system = _field(data, "systemInstruction", "system_instruction")
        if isinstance(system, str):
            texts.append(system)
        elif isinstance(system, dict):
            texts.append(_parts_text(system.get("parts")))
        said, last_user = message_texts(
            contents,
            _parts_text,
            key="parts",
            invalid="Invalid value at 'contents'.",
            default_role="user",
        )
        texts += said
        config = _field(data, "generationConfig", "generation_config")
        max_tokens = None
        if isinstance(config, dict):
            max_tokens = optional_int(
                _field(config, "maxOutputTokens", "max_output_tokens"), "maxOutputTokens"
            )
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=endpoint == "streamGenerateContent",
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        return self._response(completion, completion.text, completion.completion_tokens, True)

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        pieces = completion.pieces
        if not pieces:  # an empty reply is still one event, with an empty text part
            last = self._event(completion, "", completion.completion_tokens, terminate)
            return StreamPlan(head=(), content=(), piece_count=0, tail=[last])
        return StreamPlan(
            head=(), content=self._events(completion, terminate), piece_count=len(pieces)
        )

    def _events(self, completion: WireReply, terminate: bool) -> Iterator[bytes]:
        """One event per piece, encoded when the writer asks for it.

        Usage is cumulative on every event and the last one carries the final numbers. The
        running count adds each piece's words: pieces split at whitespace, so this equals the
        word count of the text sent so far, without re-splitting that text (quadratic).
        """
        pieces = completion.pieces
        last = len(pieces) - 1
        tokens = 0
        for index, piece in enumerate(pieces):
            tokens += count_tokens(piece)
            final = index == last
            count = completion.completion_tokens if final else tokens
            yield self._event(completion, piece, count, final and terminate)

    def _event(self, completion: WireReply, text: str, tokens: int, finish: bool) -> bytes:
        return b"data: " + dumps(self._response(completion, text, tokens, finish)) + b"\r\n\r\n"

    def render_models(self, names: list[str]) -> JsonObject:
        return {"models": [self.render_model(name) for name in names]}

    def render_model(self, name: str) -> JsonObject:
        return {
            "name": "models/" + name,
            "version": "001",
            "displayName": name,
            "description": "Local protocol server model " + name,
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
        }

    def _response(
        self, completion: WireReply, text: str, completion_tokens: int, finish: bool
    ) -> JsonObject:
        candidate: JsonObject = {
            "content": {"parts": [{"text": text}], "role": "model"},
            "index": 0,
        }
        if finish:
            candidate["finishReason"] = "MAX_TOKENS" if completion.truncated else "STOP"
        response: JsonObject = {"candidates": [candidate]}
        if completion.usage:
            prompt = completion.prompt_tokens
            response["usageMetadata"] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": completion_tokens,
                "totalTokenCount": prompt + completion_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            }
        response["modelVersion"] = completion.model
        response["responseId"] = completion.id or uuid.uuid4().hex
        return response


def _field(data: Mapping[str, Any], camel: str, snake: str) -> Any:
    """Protobuf JSON accepts both spellings of a field name, so the real API does too."""
    return data[camel] if camel in data else data.get(snake)


def _parts_text(parts: Any) -> str:
    return text_of_parts(parts) if isinstance(parts, list) else ""
