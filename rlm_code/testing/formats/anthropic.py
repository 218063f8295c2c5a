"""Anthropic Messages wire format.

Shapes follow api.anthropic.com as parsed by the ``anthropic`` SDK: ``message`` objects, SSE
streams with ``event:`` lines (message_start, content_block_start, ping, content_block_delta...,
content_block_stop, message_delta, message_stop) and
``{"type": "error", "error": {"type", "message"}, "request_id"}`` errors.

Beyond text (requests read by `anthropic_requests`, which also holds the 400s): a reply is
content blocks in the API's order, a ``thinking`` block (with ``signature`` =
`WireReply.signature`) first, then ``text``, then one ``tool_use`` block per call (ids
``toolu_...``, ``input`` the arguments object), and ``stop_reason`` ``tool_use`` when it calls
tools. A stream sends each block as the API does: ``content_block_start`` (a ``tool_use``
block with an empty ``input``), its deltas (``thinking_delta`` pieces then one
``signature_delta``; ``input_json_delta`` pieces of the arguments, the first one empty;
``text_delta`` pieces), ``content_block_stop``. Every frame between the first block's start and
the last block's stop is a content frame of the `StreamPlan`, so the ``truncate`` fault cuts
inside them (inside a call's arguments too).

The ``503`` fault answers status 503 with ``api_error``: Anthropic documents 529
``overloaded_error`` for overload and no 503 body, so 503 is treated like the other 5xx.

Body faults, each with the API's own ``invalid_request_error`` 400: ``context_length`` "prompt
is too long: N tokens > M maximum"; ``unsupported_parameter`` "`temperature` and `top_p`
cannot both be specified for this model"; ``content_filter`` "Output blocked by content
filtering policy", which on a streamed request arrives as the API sends it, an ``error``
event after the reply has begun (message_start, a text block start and one text delta).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from rlm_code.testing.faults import Fault
from rlm_code.testing.formats.anthropic_requests import (
    check_images,
    parse_schema,
    parse_thinking,
    parse_tool_choice,
    parse_tools,
    said,
    strict_problem,
    tool_results,
)
from rlm_code.testing.formats.openai import bearer_token
from rlm_code.testing.scripted import WireToolCall
from rlm_code.testing.text import total_tokens
from rlm_code.testing.wire import (
    ErrorKind,
    ErrorReply,
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
_BLOCKED = "Output blocked by content filtering policy"


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

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        if fault.mode == "context_length":
            text = (
                f"prompt is too long: {fault.context_requested} tokens > "
                f"{fault.context_limit} maximum"
            )
        elif fault.mode == "unsupported_parameter":
            text = (
                "`temperature` and `top_p` cannot both be specified for this model. Please use "
                "only one."
            )
        elif fault.mode == "content_filter":
            text = _BLOCKED
            if isinstance(body, dict) and body.get("stream") is True:
                return self._blocked_stream(model, body)
        else:
            return None
        return ErrorReply(
            400, self.error_body("bad_request", self.errors["bad_request"], text, None, 1)
        )

    def _blocked_stream(self, model: str, body: JsonObject) -> ErrorReply:
        """A reply that has begun, then the filter's ``error`` event (the API closes after it)."""
        try:
            prompt = total_tokens(self.parse(body, endpoint="messages", path_model=None).texts)
        except WireError:
            prompt = 0
        start: JsonObject = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": _usage(prompt, 1),
        }
        delta = {"type": "text_delta", "text": "I"}
        frames = [
            _event("message_start", {"type": "message_start", "message": start}),
            _block_start(0, {"type": "text", "text": ""}),
            _event(
                "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
            ),
            _event(
                "error",
                {
                    "type": "error",
                    "error": {
                        "details": None,
                        "type": "invalid_request_error",
                        "message": _BLOCKED,
                    },
                    "request_id": "req_" + uuid.uuid4().hex,
                },
            ),
        ]
        text = b"".join(frames).decode("utf-8")
        return ErrorReply(200, text, {"Content-Type": "text/event-stream"})

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
        turns, last_user = message_texts(
            messages, said, invalid="messages: Input should be a valid dictionary"
        )
        texts += turns
        check_images(messages)
        choice, forced = parse_tool_choice(data.get("tool_choice"))
        thinking = parse_thinking(data, max_tokens, choice)
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=data.get("stream") is True,
            tools=parse_tools(data.get("tools")),
            tool_choice=choice,
            forced_tool=forced,
            schema=parse_schema(data),
            reasoning=thinking,
            tool_results=tool_results(messages),
            strict_problem=strict_problem(messages, thinking),
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        content: list[JsonObject] = []
        if completion.reasoning is not None:
            content.append(
                {
                    "type": "thinking",
                    "thinking": completion.reasoning,
                    "signature": completion.signature,
                }
            )
        if completion.text or not completion.tool_calls:
            content.append({"type": "text", "text": completion.text})
        for call in completion.tool_calls:
            arguments = call.arguments if isinstance(call.arguments, dict) else call.arguments_json
            content.append({**_tool_use(call), "input": arguments})
        message = self._message(completion, content=content)
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
        blocks = _stream_blocks(completion)
        head = [
            _event("message_start", {"type": "message_start", "message": start}),
            _block_start(0, blocks[0][0]),
            _event("ping", {"type": "ping"}),
        ]
        count = sum(block[1] for block in blocks) + 2 * (len(blocks) - 1)
        tail = [_block_stop(len(blocks) - 1)]
        message_delta: JsonObject = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(completion), "stop_sequence": None},
        }
        if completion.usage:
            message_delta["usage"] = {"output_tokens": completion.completion_tokens}
        tail.append(_event("message_delta", message_delta))
        if terminate:
            tail.append(_event("message_stop", {"type": "message_stop"}))
        return StreamPlan(head=head, content=_content(blocks), piece_count=count, tail=tail)

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
    if completion.truncated:
        return "max_tokens"
    return "tool_use" if completion.tool_calls else "end_turn"


def _tool_use(call: WireToolCall) -> JsonObject:
    """A call's block without its input; the id in Anthropic's ``toolu_`` form."""
    return {"type": "tool_use", "id": "toolu_" + call.id.removeprefix("call_"), "name": call.name}


# One streamed block: (its content_block_start body, its delta count, its deltas on demand).
_Block = tuple[JsonObject, int, Callable[[], Iterator[JsonObject]]]


def _stream_blocks(completion: WireReply) -> list[_Block]:
    blocks: list[_Block] = []
    if completion.reasoning is not None:
        thinking = completion.reasoning_pieces

        def thoughts() -> Iterator[JsonObject]:
            for piece in thinking:
                yield {"type": "thinking_delta", "thinking": piece}
            yield {"type": "signature_delta", "signature": completion.signature}

        start = {"type": "thinking", "thinking": "", "signature": ""}
        blocks.append((start, len(thinking) + 1, thoughts))
    if completion.text or not completion.tool_calls:
        pieces = completion.pieces

        def text() -> Iterator[JsonObject]:
            return ({"type": "text_delta", "text": piece} for piece in pieces)

        blocks.append(({"type": "text", "text": ""}, len(pieces), text))
    for call in completion.tool_calls:
        blocks.append(_call_block(call))
    return blocks


def _call_block(call: WireToolCall) -> _Block:
    # As the API: an empty first piece, then the argument text in pieces.
    pieces = ["", *WireReply.argument_pieces(call)]

    def arguments() -> Iterator[JsonObject]:
        return ({"type": "input_json_delta", "partial_json": piece} for piece in pieces)

    return ({**_tool_use(call), "input": {}}, len(pieces), arguments)


def _block_start(index: int, block: JsonObject) -> bytes:
    body = {"type": "content_block_start", "index": index, "content_block": block}
    return _event("content_block_start", body)


def _block_stop(index: int) -> bytes:
    return _event("content_block_stop", {"type": "content_block_stop", "index": index})


def _content(blocks: list[_Block]) -> Iterator[bytes]:
    """Every frame between the first block's start and the last block's stop."""
    for index, (start, _, deltas) in enumerate(blocks):
        if index:
            yield _block_stop(index - 1)
            yield _block_start(index, start)
        for delta in deltas():
            body: dict[str, Any] = {"type": "content_block_delta", "index": index, "delta": delta}
            yield _event("content_block_delta", body)


def _usage(input_tokens: int, output_tokens: int) -> JsonObject:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }
