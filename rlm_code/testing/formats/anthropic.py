"""Anthropic Messages wire format.

Shapes follow api.anthropic.com as parsed by the ``anthropic`` SDK: ``message`` objects, SSE
streams with ``event:`` lines (message_start, content_block_start, ping, content_block_delta...,
content_block_stop, message_delta, message_stop) and
``{"type": "error", "error": {"type", "message"}, "request_id"}`` errors.

The ``503`` fault answers status 503 with ``api_error``: Anthropic documents 529
``overloaded_error`` for overload and no 503 body, so 503 is treated like the other 5xx.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

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
    content_text,
    dumps,
    message_texts,
    optional_int,
    require_object,
    required_text,
    text_of_parts,
)

__all__ = ["AnthropicFormat"]

_ERRORS: dict[ErrorKind, ErrorSpec] = {
    "bad_request": ErrorSpec(400, "invalid_request_error", "Invalid request."),
    "auth_missing": ErrorSpec(401, "authentication_error", "x-api-key header is required"),
    "auth_invalid": ErrorSpec(401, "authentication_error", "invalid x-api-key"),
    "unauthorized": ErrorSpec(401, "authentication_error", "invalid x-api-key"),
    "not_found": ErrorSpec(404, "not_found_error", "model: {model}"),
    "rate_limit": ErrorSpec(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit "
        "(https://docs.anthropic.com/en/api/rate-limits); see the response headers for current "
        "usage. Please reduce the prompt length or the maximum tokens requested, or try again "
        "later.",
    ),
    "server_error": ErrorSpec(500, "api_error", "Internal server error"),
    "unavailable": ErrorSpec(503, "api_error", "Service unavailable"),
}

CREATED_AT = "2025-09-29T00:00:00Z"


class AnthropicFormat(WireFormat):
    name = "anthropic"
    stream_content_type = "text/event-stream; charset=utf-8"
    errors = _ERRORS

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        # ``x-api-key`` is the classic header; anthropic SDK 2.x sends ``Authorization: Bearer``.
        return headers.get("x-api-key", "").strip() or bearer_token(headers)

    def response_headers(self) -> dict[str, str]:
        return {"request-id": "req_" + uuid.uuid4().hex, "anthropic-organization-id": "local"}

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        return {
            "type": "error",
            "error": {"type": spec.type, "message": text},
            "request_id": "req_" + uuid.uuid4().hex,
        }

    def malformed_frame(self) -> bytes:
        return (
            b"event: content_block_delta\n"
            b'data: {"type":"content_block_delta","index":0,"delta":{\n\n'
        )

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        data = require_object(body)
        model = required_text(data, "model", "model: Field required")
        messages = data.get("messages")
        if not isinstance(messages, list):
            raise WireError("bad_request", "messages: Field required", param="messages")
        max_tokens = optional_int(data.get("max_tokens"), "max_tokens")
        if max_tokens is None and endpoint == "messages":
            raise WireError("bad_request", "max_tokens: Field required", param="max_tokens")
        texts: list[str] = []
        system = data.get("system")
        if isinstance(system, str):
            texts.append(system)
        elif isinstance(system, list):
            texts.append(text_of_parts(system))
        said, last_user = message_texts(
            messages, content_text, invalid="messages: Input should be a valid dictionary"
        )
        texts += said
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=data.get("stream") is True,
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        message = self._message(completion, content=[{"type": "text", "text": completion.text}])
        message["stop_reason"] = _stop_reason(completion)
        if completion.usage:
            message["usage"] = _usage(completion.prompt_tokens, completion.completion_tokens)
        return message

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        start = self._message(completion, content=[])
        start["stop_reason"] = None
        if completion.usage:
            # The real API reports a small provisional output count at message_start.
            start["usage"] = _usage(completion.prompt_tokens, min(1, completion.completion_tokens))
        head = [
            _event("message_start", {"type": "message_start", "message": start}),
            _event(
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            _event("ping", {"type": "ping"}),
        ]
        pieces = completion.pieces
        content = (
            _event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": piece},
                },
            )
            for piece in pieces
        )
        tail = [_event("content_block_stop", {"type": "content_block_stop", "index": 0})]
        message_delta: JsonObject = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(completion), "stop_sequence": None},
        }
        if completion.usage:
            message_delta["usage"] = {"output_tokens": completion.completion_tokens}
        tail.append(_event("message_delta", message_delta))
        if terminate:
            tail.append(_event("message_stop", {"type": "message_stop"}))
        return StreamPlan(head=head, content=content, piece_count=len(pieces), tail=tail)

    def render_models(self, names: list[str]) -> JsonObject:
        data = [self.render_model(name) for name in names]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def render_model(self, name: str) -> JsonObject:
        display = " ".join(part.capitalize() for part in name.replace(":", " ").split("-"))
        return {"type": "model", "id": name, "display_name": display, "created_at": CREATED_AT}

    def _message(self, completion: WireReply, *, content: list[JsonObject]) -> JsonObject:
        return {
            "id": "msg_" + completion.id,
            "type": "message",
            "role": "assistant",
            "model": completion.model,
            "content": content,
            "stop_reason": None,
            "stop_sequence": None,
        }


def _event(name: str, data: JsonObject) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(data) + b"\n\n"


def _stop_reason(completion: WireReply) -> str:
    return "max_tokens" if completion.truncated else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> JsonObject:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
