"""Chat-completions request bodies beyond text: the one builder of `openai_compatible` (raw
HTTP) and `openai_sdk` (the `openai` SDK's `chat.completions.create` arguments).

- Turns: user content with images becomes parts (`{"type": "text"}` and `{"type":
  "image_url", "image_url": {"url": ...}}`, inline bytes as a `data:` URL); assistant turns carry
  `tool_calls` (`{"id", "type": "function", "function": {"name", "arguments"}}`, content None
  when the turn is only calls); tool turns are `{"role": "tool", "tool_call_id", "content"}`.
- Replay: a reply whose reasoning came in a message field (`reasoning_content` from DeepSeek,
  vLLM, SGLang, llama.cpp; `reasoning` from OpenRouter, Groq, newer vLLM) left a
  `{"type": "openai.reasoning_field", "field", "text"}` detail on its `Response.message`; that
  field, and only that field, is sent back on the assistant turn (DeepSeek refuses a
  thinking-mode tool loop without it). Only details of that type are read: the message's
  own `reasoning` and `reasoning_details` keys are never sent (OpenAI refuses unknown keys),
  and OpenAI itself never sends such a field, so it never gets one back.
- `tools` as `{"type": "function", "function": {"name", "description", "parameters"}}`;
  `tool_choice` "auto" / "none" / "required" / `{"type": "function", "function": {"name"}}`;
  structured output as `response_format: {"type": "json_schema", "json_schema": {"name",
  "schema", "strict"}}`.
- Reasoning goes under the knob the host's registry row names (`ProviderSpec.reasoning_param`):
  "reasoning_effort" (OpenAI and most hosts: a token budget becomes the nearest effort word),
  "reasoning" (OpenRouter: `{"effort": word}` or `{"max_tokens": budget}`), "thinking"
  (DeepSeek, Moonshot: `{"thinking": {"type": "enabled"}}` plus `reasoning_effort`),
  "enable_thinking" (DashScope, SiliconFlow: `enable_thinking` and `thinking_budget`); a host
  with no knob (None) refuses the setting with `UnsupportedParameterError` before any I/O.

A text-only request costs what it did before: one small dict per turn.
"""

from __future__ import annotations

from typing import Any

from rlm_code.core.exceptions import UnsupportedParameterError
from rlm_code.models.adapters.base import add_sampling
from rlm_code.models.types import ChatRequest, ImagePart, Message, ReasoningSetting, TextPart

REPLAY_TYPE = "openai.reasoning_field"
REASONING_FIELDS = ("reasoning_content", "reasoning")
REASONING_PARAMS = ("reasoning_effort", "reasoning", "thinking", "enable_thinking")


def replay_detail(field: str, text: str) -> dict[str, Any]:
    """The replay detail of a reply whose reasoning came in message field `field`."""
    return {"type": REPLAY_TYPE, "field": field, "text": text}


def _parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for part in message.parts or ():
        if isinstance(part, TextPart):
            parts.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.url or f"data:{part.media_type};base64,{part.data}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _assistant(message: Message) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.tool_calls:
        if not message.content:
            turn["content"] = None
        turn["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                # Servers that render the call into a chat template parse this: never "".
                "function": {"name": call.name, "arguments": call.arguments_json or "{}"},
            }
            for call in message.tool_calls
        ]
    for detail in message.reasoning_details:
        field = detail.get("field")
        text = detail.get("text")
        if (
            detail.get("type") == REPLAY_TYPE
            and field in REASONING_FIELDS
            and isinstance(text, str)
        ):
            turn[field] = text
    return turn


def chat_messages(request: ChatRequest) -> list[dict[str, Any]]:
    """The `messages` array: the system prompt first, then every turn in its chat shape."""
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for m in request.messages:
        if m.parts is None and not m.tool_calls and m.tool_call_id is None:
            if m.reasoning_details and m.role == "assistant":
                messages.append(_assistant(m))
            else:
                messages.append({"role": m.role, "content": m.content})
        elif m.role == "tool":
            messages.append({"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content})
        elif m.role == "assistant":
            messages.append(_assistant(m))
        else:
            messages.append({"role": m.role, "content": _parts(m)})
    return messages


def _reasoning(
    into: dict[str, Any], setting: ReasoningSetting, param: str | None, provider: str
) -> None:
    if param is None or param not in REASONING_PARAMS:
        raise UnsupportedParameterError(
            f"reasoning is not supported by {provider}: its API has no reasoning setting",
            provider=provider,
            hint="Leave reasoning=None, or pick a reasoning model on a provider that has a "
            "setting for it.",
        )
    if param == "reasoning_effort":
        into["reasoning_effort"] = setting.effort_word()
    elif param == "reasoning":
        if setting.budget_tokens is not None:
            into["reasoning"] = {"max_tokens": setting.budget_tokens}
        else:
            into["reasoning"] = {"effort": setting.effort_word()}
    elif param == "thinking":
        into["thinking"] = {"type": "enabled"}
        into["reasoning_effort"] = setting.effort_word()
    else:
        into["enable_thinking"] = True
        into["thinking_budget"] = setting.budget()


def add_features(
    into: dict[str, Any],
    request: ChatRequest,
    provider: str,
    reasoning_param: str | None = "reasoning_effort",
) -> dict[str, Any]:
    """Put tools, tool choice, structured output and reasoning into `into` (in place)."""
    if request.tools:
        into["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in request.tools
        ]
    choice = request.tool_choice
    if choice == "tool":
        into["tool_choice"] = {"type": "function", "function": {"name": request.forced_tool}}
    elif choice is not None and request.tools:
        # Without tools, "auto" and "none" already hold; OpenAI refuses the key alone.
        into["tool_choice"] = choice
    schema = request.response_format
    if schema is not None:
        into["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema.name, "schema": schema.schema, "strict": schema.strict},
        }
    if request.reasoning is not None:
        _reasoning(into, request.reasoning, reasoning_param, provider)
    return into


def chat_payload(
    request: ChatRequest,
    stream: bool,
    provider: str = "openai-compatible",
    reasoning_param: str | None = "reasoning_effort",
    stream_usage: bool = True,
) -> dict[str, Any]:
    """The raw-HTTP request body of `openai_compatible`: `max_tokens` (the name every
    chat-completions host takes; OpenAI's SDK adapter sends `max_completion_tokens`), the
    turns, tools, structured output and reasoning (above). `stream_usage`: ask a stream for
    usage with `stream_options` (False where the host refuses it and reports usage unasked)."""
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request),
        "stream": stream,
    }
    if stream and stream_usage:
        payload["stream_options"] = {"include_usage": True}
    add_sampling(payload, request.params, "max_tokens", "stop")
    return add_features(payload, request, provider, reasoning_param)


__all__ = [
    "REASONING_FIELDS",
    "REASONING_PARAMS",
    "REPLAY_TYPE",
    "add_features",
    "chat_messages",
    "chat_payload",
    "replay_detail",
]
