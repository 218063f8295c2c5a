"""Anthropic Messages on the wire: a `ChatRequest` as a request body, and a whole reply back
as our types (the stream parser, `anthropic_sdk.MessageEvents`, shares the helpers here).

Request, beyond text:

- Images are `image` blocks with a `base64` source (`media_type`, `data`) or a `url` source.
- An assistant turn replays, first and verbatim, its `reasoning_details` of type `thinking`
  (with `signature`) and `redacted_thinking` (the API refuses a tool loop whose last assistant
  turn does not start with them, and checks the signatures), then its text, then one
  `tool_use` block per call (`input` is the parsed arguments). Details of other providers'
  types are not sent.
- Consecutive tool turns become ONE user message of `tool_result` blocks (`tool_use_id`,
  `content`): the API wants every result of an assistant turn in the very next message.
- Tools are `{"name", "description", "input_schema"}`; `tool_choice` "auto", "required"
  ("any"), "none", or a named tool (`{"type": "tool", "name"}`). Without tools, "auto" and
  "none" are the API's behaviour anyway and are not sent (the API refuses a `tool_choice`
  without `tools`).
- `reasoning` is extended thinking: `thinking: {"type": "enabled", "budget_tokens": N}`, N the
  budget (an effort word maps to 1024 / 4096 / 16384) raised to the API's minimum of 1024.
  `max_tokens` counts the thinking too and must exceed N: when the caller gave none we send
  N + `DEFAULT_MAX_TOKENS`; when the caller's is not larger than N, the call is refused with
  `UnsupportedParameterError` (sending it would only earn a 400). The API also refuses
  `temperature` and a forced tool choice ("required" or a named tool) with thinking: both are
  refused here, before any I/O.
- `response_format` uses Anthropic's native structured output, `output_config: {"format":
  {"type": "json_schema", "schema"}}` (the installed SDK, anthropic 2.x, has `output_config`
  on `messages.create`; it is sent in the body so older SDKs work too). The schema goes
  through the SDK's own `transform_schema` (what `messages.parse` does): objects get
  `additionalProperties: false` and constraints the API does not enforce move into the
  descriptions. The reply's text is the JSON.

Reply: `text` blocks are the text; `thinking` blocks the reasoning, and together with
`redacted_thinking` blocks they are the replay details (`{"type": "thinking", "thinking",
"signature"}`, `{"type": "redacted_thinking", "data"}`); `tool_use` blocks the tool calls,
whose `arguments_json` is `canonical_json(input)` (the API sends an object, not text; a
stream's joined `input_json_delta` pieces are parsed and written the same way, so whole and
streamed replies carry the same text). Stop reason `tool_use` is "tool_calls". Usage:
Anthropic reports `input_tokens` without the cached tokens and the cache reads and writes
apart, exactly our buckets; thinking tokens are inside `output_tokens`, not reported apart.
`cache_creation.ephemeral_1h_input_tokens` is the part of the writes made with the 1-hour
lifetime (`Usage.cache_write_1h_tokens`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from rlm_code.core.exceptions import (
    ModelError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._tool_calls import canonical_json, tool_call
from rlm_code.models.adapters.base import as_count
from rlm_code.models.adapters.errors import stream_error
from rlm_code.models.types import (
    ChatRequest,
    ImagePart,
    Message,
    ToolCall,
    Usage,
)

DEFAULT_MAX_TOKENS = 4096
MIN_THINKING_BUDGET = 1024
REPLAYED_TYPES = ("thinking", "redacted_thinking")

Schema = dict[str, Any]


# -- request ------------------------------------------------------------------------------------


def _refuse(provider: str, setting: str, why: str) -> UnsupportedParameterError:
    return UnsupportedParameterError(f"{provider} cannot take {setting}: {why}", provider=provider)


def request_body(
    request: ChatRequest,
    stream: bool,
    provider: str,
    transform_schema: Callable[[Schema], Schema] | None = None,
) -> dict[str, Any]:
    """The `messages.create` arguments for `request` (refusing, before any I/O, what the API
    would refuse); `transform_schema` is the SDK's structured-output schema conversion."""
    p = request.params
    max_tokens = p.max_tokens if p.max_tokens is not None else DEFAULT_MAX_TOKENS
    args: dict[str, Any] = {
        "model": request.model,
        "max_tokens": max_tokens,
        "messages": wire_messages(request.messages),
    }
    extra: dict[str, Any] = {}
    if request.system:
        args["system"] = request.system
    if request.reasoning is not None:
        budget = max(MIN_THINKING_BUDGET, request.reasoning.budget())
        _check_thinking(request, budget, provider)
        if p.max_tokens is None:
            args["max_tokens"] = budget + DEFAULT_MAX_TOKENS
        args["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if p.temperature is not None:
        # anthropic 2.x no longer lists `temperature` among `create`'s arguments; the API
        # still takes it (for the models that support sampling settings).
        extra["temperature"] = p.temperature
    if p.stop:
        args["stop_sequences"] = list(p.stop)
    if request.tools:
        args["tools"] = [
            _tool(spec.name, spec.description, spec.parameters) for spec in request.tools
        ]
    choice = _tool_choice(request)
    if choice is not None:
        args["tool_choice"] = choice
    if request.response_format is not None:
        schema = request.response_format.schema
        if transform_schema is not None:
            try:
                schema = transform_schema(dict(schema))
            except (ValueError, TypeError, KeyError) as exc:
                raise _refuse(
                    provider, "this response_format schema", f"{exc} (structured output)"
                ) from None
        extra["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    if extra:
        args["extra_body"] = extra
    if stream:
        args["stream"] = True
    return args


def _check_thinking(request: ChatRequest, budget: int, provider: str) -> None:
    p = request.params
    if p.temperature is not None:
        raise _refuse(
            provider,
            "temperature together with reasoning",
            "extended thinking does not allow changing temperature; leave one of them out",
        )
    if request.tool_choice in ("required", "tool"):
        raise _refuse(
            provider,
            f'tool_choice "{request.tool_choice}" together with reasoning',
            'with extended thinking a tool call cannot be forced; use "auto" or leave '
            "reasoning out",
        )
    if p.max_tokens is not None and p.max_tokens <= budget:
        raise _refuse(
            provider,
            f"max_tokens={p.max_tokens} with a reasoning budget of {budget} tokens",
            "max_tokens counts the thinking too and must be larger than its budget; raise "
            "max_tokens or lower reasoning",
        )


def _tool(name: str, description: str, parameters: Schema) -> dict[str, Any]:
    tool: dict[str, Any] = {"name": name, "input_schema": parameters}
    if description:
        tool["description"] = description
    return tool


def _tool_choice(request: ChatRequest) -> dict[str, Any] | None:
    choice = request.tool_choice
    if choice is None or (not request.tools and choice in ("auto", "none")):
        return None
    if choice == "tool":
        return {"type": "tool", "name": request.forced_tool}
    return {"type": "any" if choice == "required" else choice}


def wire_messages(turns: Sequence[Message]) -> list[dict[str, Any]]:
    """Our turns as Messages API messages (a turn of text only stays a plain string)."""
    out: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the tool_result blocks being gathered
    for m in turns:
        role = m.role
        if role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id, "content": m.content}
            if results is None:
                results = [block]
                out.append({"role": "user", "content": results})
            else:
                results.append(block)
            continue
        results = None
        if role == "assistant" and (m.tool_calls or m.reasoning_details):
            out.append({"role": "assistant", "content": _assistant_blocks(m)})
        elif m.parts is not None:
            out.append({"role": role, "content": [_part(part) for part in m.parts]})
        else:
            out.append({"role": role, "content": m.content})
    return out


def _assistant_blocks(m: Message) -> list[dict[str, Any]]:
    """Replayed thinking first (verbatim), then the text, then the tool calls."""
    blocks = [dict(d) for d in m.reasoning_details if d.get("type") in REPLAYED_TYPES]
    if m.content:
        blocks.append({"type": "text", "text": m.content})
    blocks.extend(
        {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        for call in m.tool_calls
    )
    return blocks


def _part(part: object) -> dict[str, Any]:
    if isinstance(part, ImagePart):
        if part.url is not None:
            return {"type": "image", "source": {"type": "url", "url": part.url}}
        source = {"type": "base64", "media_type": part.media_type, "data": part.data}
        return {"type": "image", "source": source}
    return {"type": "text", "text": getattr(part, "text", "")}


# -- whole replies ------------------------------------------------------------------------------


def anthropic_usage(data: object) -> Usage | None:
    """A Messages `usage` object in our buckets; None when it is not an object."""
    if not isinstance(data, dict):
        return None
    creation = data.get("cache_creation")  # the writes by lifetime (the 1-hour ones cost more)
    return Usage(
        as_count(data.get("input_tokens")),
        as_count(data.get("output_tokens")),
        as_count(data.get("cache_read_input_tokens")),
        as_count(data.get("cache_creation_input_tokens")),
        cache_write_1h_tokens=as_count(creation.get("ephemeral_1h_input_tokens"))
        if isinstance(creation, dict)
        else None,
    )


def shape_error(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(f"{provider} sent a message without {what}", provider=provider)


def failed(data: dict[str, Any], provider: str) -> ModelError:
    """A stream's `error` event, typed by its body (the content filter stops streams too)."""
    return stream_error(provider, json.dumps(data))


class AnthropicReply(NamedTuple):
    """A whole Messages reply in our terms."""

    text: str
    usage: Usage
    stop_reason: str | None
    tool_calls: list[ToolCall]
    reasoning: str | None
    details: list[dict[str, Any]]


def text_field(block: dict[str, Any], key: str, provider: str) -> str:
    value = block.get(key, "")
    if not isinstance(value, str):
        raise shape_error(provider, f"a string {key!r} in a {block.get('type')} block")
    return value


def _whole_call(block: dict[str, Any], provider: str) -> ToolCall:
    arguments = block.get("input", {})
    if not isinstance(arguments, dict):
        raise ResponseFormatError(
            f"{provider} sent tool call {block.get('name')!r} whose input is not a JSON object",
            provider=provider,
        )
    call_id = block.get("id")
    return tool_call(
        provider,
        call_id if isinstance(call_id, str) else None,
        block.get("name"),
        canonical_json(arguments),
    )


def parse_message(data: object, provider: str) -> AnthropicReply:
    """A Messages API `message` body -> text, usage, raw stop reason, tool calls, reasoning
    and the blocks to replay."""
    if not isinstance(data, dict):
        raise shape_error(provider, "a JSON object")
    content = data.get("content")
    if not isinstance(content, list):
        if "error" in data:
            raise failed(data, provider)
        raise shape_error(provider, "content")
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    details: list[dict[str, Any]] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            if isinstance(text, str):
                texts.append(text)
        elif kind == "thinking":
            thinking = text_field(block, "thinking", provider)
            thoughts.append(thinking)
            signature = text_field(block, "signature", provider)
            details.append({"type": "thinking", "thinking": thinking, "signature": signature})
        elif kind == "redacted_thinking":
            details.append(
                {"type": "redacted_thinking", "data": text_field(block, "data", provider)}
            )
        elif kind == "tool_use":
            calls.append(_whole_call(block, provider))
    reason = data.get("stop_reason")
    return AnthropicReply(
        "".join(texts),
        anthropic_usage(data.get("usage")) or Usage(),
        reason if isinstance(reason, str) else None,
        calls,
        "".join(thoughts) or None,
        details,
    )


__all__ = [
    "DEFAULT_MAX_TOKENS",
    "MIN_THINKING_BUDGET",
    "AnthropicReply",
    "anthropic_usage",
    "failed",
    "parse_message",
    "request_body",
    "shape_error",
    "text_field",
    "wire_messages",
]
