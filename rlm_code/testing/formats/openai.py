"""OpenAI Chat Completions wire format (also served for TGI and llama.cpp under ``/v1``).

Shapes follow what api.openai.com sends and the ``openai`` SDK parses: ``chat.completion``
objects, ``chat.completion.chunk`` SSE events ending in ``data: [DONE]``, and
``{"error": {"message", "type", "param", "code"}}`` errors.

Beyond text, as OpenAI and the OpenAI-compatible servers do it:

* Requests: ``tools`` (``{"type": "function", "function": {"name", "description",
  "parameters"}}``), ``tool_choice`` ("auto" / "none" / "required" / ``{"type": "function",
  "function": {"name"}}``), ``response_format`` (``json_schema`` with its ``schema``, or
  ``json_object``), reasoning asked for by any of the hosts' knobs (``reasoning_effort``,
  OpenRouter's ``reasoning`` object, DeepSeek's ``thinking: {"type": "enabled"}``, DashScope's
  ``enable_thinking``), tool turns ``{"role": "tool", "tool_call_id", "content"}``, and image
  parts ``{"type": "image_url", "image_url": {"url"}}`` (recorded; a malformed one gets
  OpenAI's own 400: not an object, no ``url``, not http(s) or a ``data:image/...;base64`` URL,
  bad base64, or an image outside a user turn).
* Replies: ``message.reasoning_content`` (as DeepSeek, vLLM, SGLang and llama.cpp send the
  reasoning) when the reply has reasoning, ``message.tool_calls`` (``"type": "function"``,
  content null when the reply is only calls) with ``finish_reason: "tool_calls"``, and
  ``usage.completion_tokens_details.reasoning_tokens``. Streams send the reasoning deltas, then
  the content, then each tool call (a first delta with ``index``, ``id``, ``type`` and
  ``function.name`` with ``arguments: ""``, then one delta per argument fragment), then the
  finish chunk, the usage chunk and ``[DONE]``. Every one of those deltas is a content frame,
  so ``truncate`` cuts a tool-call reply inside its arguments.
* Strict mode (``strict=True``) answers what the real services refuse, with their bodies:

  - an assistant message with ``tool_calls`` not followed by a tool message for each id:
    OpenAI's "An assistant message with 'tool_calls' must be followed by tool messages
    responding to each 'tool_call_id'. The following tool_call_ids did not have response
    messages: ..." (param ``messages.[N].role``, N the turn where a result was due);
  - a tool message that answers no call of the assistant turn before it: OpenAI's "Invalid
    parameter: messages with role 'tool' must be a response to a preceeding message with
    'tool_calls'." (their spelling);
  - when the request asks for reasoning, an earlier assistant turn with tool calls but no
    ``reasoning_content``: DeepSeek's thinking-mode 400 "Missing `reasoning_content` field in
    the assistant message at message index N. ..." (N counts every message, system included).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

from rlm_code.testing.faults import Fault
from rlm_code.testing.formats.openai_requests import (
    asks_reasoning,
    check_images,
    conversation,
    response_schema,
    tool_choice,
    tools_offered,
)
from rlm_code.testing.scripted import WireToolCall
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

# The body faults (`rlm_code.testing.faults.BODY_FAULTS`): OpenAI's context error, Azure
# OpenAI's prompt filter (api.openai.com itself answers chat prompts it refuses with
# ``invalid_prompt``; Azure's ``content_filter`` is what most OpenAI-protocol clients meet), and
# a reasoning model refusing ``temperature``.
_CONTEXT = (
    "This model's maximum context length is {limit} tokens. However, your messages resulted in "
    "{requested} tokens. Please reduce the length of the messages."
)
_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content management "
    "policy. Please modify your prompt and retry. To learn more about our content filtering "
    "policies please read our documentation: https://go.microsoft.com/fwlink/?linkid=2198766"
)
_SAFE = {"filtered": False, "severity": "safe"}
_FILTER_RESULT = {
    "hate": _SAFE,
    "jailbreak": {"filtered": True, "detected": True},
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
_UNSUPPORTED = "Unsupported parameter: 'temperature' is not supported with this model."


def _openai_fault_error(fault: Fault) -> ErrorReply | None:
    """OpenAI's (and Azure's) 400 for a body fault."""
    error: JsonObject
    if fault.mode == "context_length":
        message = _CONTEXT.format(limit=fault.context_limit, requested=fault.context_requested)
        error = {
            "message": message,
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    elif fault.mode == "content_filter":
        error = {
            "message": _FILTERED,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": _FILTER_RESULT,
            },
        }
    elif fault.mode == "unsupported_parameter":
        error = {
            "message": _UNSUPPORTED,
            "type": "invalid_request_error",
            "param": "temperature",
            "code": "unsupported_parameter",
        }
    else:
        return None
    return ErrorReply(400, {"error": error})


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

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        return _openai_fault_error(fault)

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
        check_images(messages)
        tools = tools_offered(data.get("tools"))
        choice, forced = tool_choice(data.get("tool_choice"), tools)
        reasoning = asks_reasoning(data)
        tool_results, problem = conversation(messages, reasoning)
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=data.get("stream") is True,
            stream_usage=stream_usage,
            tools=tools,
            tool_choice=choice,
            forced_tool=forced,
            schema=response_schema(data.get("response_format")),
            reasoning=reasoning,
            tool_results=tool_results,
            strict_problem=problem,
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        calls = completion.tool_calls
        message: JsonObject = {
            "role": "assistant",
            "content": completion.text if completion.text or not calls else None,
            "refusal": None,
            "annotations": [],
        }
        if completion.reasoning is not None:
            message["reasoning_content"] = completion.reasoning
        if calls:
            message["tool_calls"] = [_call(call) for call in calls]
        answer: JsonObject = {
            "id": "chatcmpl-" + completion.id,
            "object": "chat.completion",
            "created": int(completion.created),
            "model": completion.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
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

        empty = None if completion.tool_calls and not completion.text else ""
        head = [chunk({"role": "assistant", "content": empty, "refusal": None})]
        deltas = _deltas(completion)
        count = len(completion.reasoning_pieces) + len(completion.pieces)
        for call in completion.tool_calls:
            count += 1 + len(completion.argument_pieces(call))
        content = (chunk(delta) for delta in deltas)
        tail = [chunk({}, _finish_reason(completion))]
        if with_usage:
            usage_event: JsonObject = dict(base)
            usage_event["choices"] = []
            usage_event["usage"] = _usage(completion)
            tail.append(_sse(usage_event))
        if terminate:
            tail.append(b"data: [DONE]\n\n")
        return StreamPlan(head=head, content=content, piece_count=count, tail=tail)

    def render_models(self, names: list[str], created: int) -> JsonObject:
        return {"object": "list", "data": [self.render_model(name, created) for name in names]}

    def render_model(self, name: str, created: int) -> JsonObject:
        owner = next((who for prefix, who in _OWNERS if name.startswith(prefix)), "local")
        return {"id": name, "object": "model", "created": created, "owned_by": owner}


def _sse(event: JsonObject) -> bytes:
    return b"data: " + dumps(event) + b"\n\n"


def _finish_reason(completion: WireReply) -> str:
    if completion.truncated:
        return "length"
    return "tool_calls" if completion.tool_calls else "stop"


def _call(call: WireToolCall) -> JsonObject:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments_json},
    }


def _deltas(completion: WireReply) -> Iterator[JsonObject]:
    """The content deltas of a stream, in OpenAI's order: reasoning, text, tool calls."""
    for piece in completion.reasoning_pieces:
        yield {"reasoning_content": piece}
    for piece in completion.pieces:
        yield {"content": piece}
    for index, call in enumerate(completion.tool_calls):
        first = _call(call)
        first["function"]["arguments"] = ""
        yield {"tool_calls": [{"index": index, **first}]}
        for piece in completion.argument_pieces(call):
            yield {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}


def _usage(completion: WireReply) -> JsonObject:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": completion.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
