"""Anthropic Messages requests beyond text, as the local server reads them.

Tools (`{"name", "description", "input_schema"}`), `tool_choice` (`auto`, `any`, `none`,
`{"type": "tool", "name"}`), extended thinking (`thinking: {"type": "enabled",
"budget_tokens"}`), structured output (`output_config.format`, or the older beta
`output_format`: `{"type": "json_schema", "schema"}`), the tool results of the last turn and
images (`{"type": "image", "source": {"type": "base64" | "url" | "file", ...}}`).

Two kinds of refusals, each with the real API's 400 message:

- always: what the API refuses on the request itself (a malformed image block, a thinking
  budget under 1024 or not under `max_tokens`, `temperature` or a forced tool with thinking);
- strict mode only (`strict_problem`): a conversation the API refuses — a `tool_use` without
  its `tool_result` in the next message, a `tool_result` without its `tool_use`, a thinking
  block whose `signature` is not the one the server gave (`scripted.signature_of`), and, with
  thinking on, a tool loop whose last assistant turn does not start with its thinking block.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rlm_code.testing.scripted import signature_of
from rlm_code.testing.wire import JsonObject, WireError, text_of_parts

__all__ = [
    "check_images",
    "parse_schema",
    "parse_thinking",
    "parse_tool_choice",
    "parse_tools",
    "said",
    "strict_problem",
    "tool_results",
]

MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
MIN_BUDGET = 1024
_CONSIDERATIONS = "important-considerations-when-using-extended-thinking"


def _bad(message: str, param: str | None = None) -> WireError:
    return WireError("bad_request", message, param=param)


def _result_text(block: JsonObject) -> str:
    content = block.get("content")
    if isinstance(content, str):
        return content
    return text_of_parts(content) if isinstance(content, list) else ""


def said(content: Any) -> str:
    """The text a message carries for the "model": its text blocks and tool results."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    texts: list[str] = []
    for block in content:
        if isinstance(block, dict):
            if block.get("type") == "tool_result":
                texts.append(_result_text(block))
            elif block.get("type", "text") == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
        elif isinstance(block, str):
            texts.append(block)
    return "".join(texts)


def _blocks(message: object) -> list[JsonObject]:
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, list):
        return []
    return [block for block in content if isinstance(block, dict)]


# -- the request's own fields -------------------------------------------------------------------


def parse_tools(value: object) -> tuple[tuple[str, JsonObject], ...]:
    """(name, input schema) of every custom tool offered (server tools are accepted as is)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad("tools: Input should be a valid list", "tools")
    tools: list[tuple[str, JsonObject]] = []
    for index, tool in enumerate(value):
        if not isinstance(tool, dict):
            raise _bad(f"tools.{index}: Input should be a valid dictionary", "tools")
        if tool.get("type") not in (None, "custom"):
            continue  # a server tool (web search, ...): nothing for the local "model" to do
        name, schema = tool.get("name"), tool.get("input_schema")
        if not isinstance(name, str) or not name:
            raise _bad(f"tools.{index}.custom.name: Field required", "tools")
        if not isinstance(schema, dict):
            raise _bad(f"tools.{index}.custom.input_schema: Field required", "tools")
        tools.append((name, schema))
    return tuple(tools)


def parse_tool_choice(value: object) -> tuple[str | None, str | None]:
    """(our word for the choice, the forced tool's name)."""
    if value is None:
        return None, None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("auto", "none"):
        return str(kind), None
    if kind == "any":
        return "required", None
    if kind == "tool":
        name = value.get("name") if isinstance(value, dict) else None
        if not isinstance(name, str) or not name:
            raise _bad("tool_choice.tool.name: Field required", "tool_choice")
        return "tool", name
    raise _bad(
        f"tool_choice: Input tag {kind!r} found using 'type' does not match any of the expected "
        "tags: 'auto', 'any', 'tool', 'none'",
        "tool_choice",
    )


def parse_thinking(data: JsonObject, max_tokens: int | None, choice: str | None) -> bool:
    """Whether extended thinking is on, refusing what the API refuses along with it."""
    value = data.get("thinking")
    if value is None:
        return False
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "disabled":
        return False
    if kind == "enabled" and isinstance(value, dict):
        budget = value.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int):
            raise _bad("thinking.enabled.budget_tokens: Field required", "thinking")
        if budget < MIN_BUDGET:
            raise _bad(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                "thinking",
            )
        if max_tokens is not None and max_tokens <= budget:
            raise _bad(
                "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                f"documentation at {THINKING_DOCS}#max-tokens-and-context-window-size"
            )
    elif kind != "adaptive":
        raise _bad(
            f"thinking: Input tag {kind!r} found using 'type' does not match any of the expected "
            "tags: 'adaptive', 'disabled', 'enabled'",
            "thinking",
        )
    temperature = data.get("temperature")
    if temperature is not None and temperature != 1:
        raise _bad(
            "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
            f"documentation at {THINKING_DOCS}#{_CONSIDERATIONS}"
        )
    if choice in ("required", "tool"):
        raise _bad("Thinking may not be enabled when tool_choice forces tool use.")
    return True


def parse_schema(data: JsonObject) -> JsonObject | None:
    """The JSON schema of structured output (`output_config.format` or `output_format`)."""
    config = data.get("output_config")
    where = "output_config.format"
    found = config.get("format") if isinstance(config, dict) else None
    if found is None:
        found, where = data.get("output_format"), "output_format"
    if found is None:
        return None
    if not isinstance(found, dict) or found.get("type") != "json_schema":
        raise _bad(f"{where}.type: Input should be 'json_schema'", where)
    schema = found.get("schema")
    if not isinstance(schema, dict):
        raise _bad(f"{where}.schema: Field required", where)
    return schema


def check_images(messages: list[Any]) -> None:
    """Refuse a malformed image block the way the API does (the rest is only recorded)."""
    for i, message in enumerate(messages):
        for j, block in enumerate(_blocks(message)):
            if block.get("type") == "image":
                _check_image(block.get("source"), f"messages.{i}.content.{j}.image.source")


def _check_image(source: object, at: str) -> None:
    if not isinstance(source, dict):
        raise _bad(f"{at}: Field required", "messages")
    kind = source.get("type")
    if kind == "base64":
        if source.get("media_type") not in MEDIA_TYPES:
            raise _bad(
                f"{at}.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                "'image/gif' or 'image/webp'",
                "messages",
            )
        data = source.get("data")
        if not isinstance(data, str) or not data:
            raise _bad(f"{at}.base64: image cannot be empty", "messages")
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise _bad(f"{at}.base64: invalid base64 data", "messages") from None
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"]:
            raise _bad(f"{at}.url.url: Field required", "messages")
    elif kind == "file":
        if not isinstance(source.get("file_id"), str):
            raise _bad(f"{at}.file.file_id: Field required", "messages")
    else:
        raise _bad(
            f"{at}: Input tag {kind!r} found using 'type' does not match any of the expected "
            "tags: 'base64', 'file', 'url'",
            "messages",
        )


def tool_results(messages: list[Any]) -> tuple[str, ...]:
    """The tool results the last message holds (none when it is not a user's with results)."""
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return ()
    blocks = _blocks(messages[-1])
    return tuple(_result_text(b) for b in blocks if b.get("type") == "tool_result")


# -- strict mode --------------------------------------------------------------------------------


def _ids(message: object, kind: str, key: str) -> list[str]:
    return [str(b.get(key)) for b in _blocks(message) if b.get("type") == kind]


def strict_problem(messages: list[Any], thinking: bool) -> WireError | None:
    """What the real API would refuse in this conversation, first problem first."""
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            calls = _ids(message, "tool_use", "id")
            if calls and i + 1 < len(messages):
                answered = set(_ids(messages[i + 1], "tool_result", "tool_use_id"))
                missing = [call for call in calls if call not in answered]
                if missing:
                    return _bad(
                        f"messages.{i + 1}: `tool_use` ids were found without `tool_result` "
                        f"blocks immediately after: {', '.join(missing)}. Each `tool_use` block "
                        "must have a corresponding `tool_result` block in the next message."
                    )
            for j, block in enumerate(_blocks(message)):
                if block.get("type") == "thinking":
                    text = block.get("thinking")
                    if block.get("signature") != signature_of(
                        text if isinstance(text, str) else ""
                    ):
                        return _bad(
                            f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        )
        elif role == "user":
            before = set(_ids(messages[i - 1], "tool_use", "id")) if i else set()
            for j, block in enumerate(_blocks(message)):
                if block.get("type") == "tool_result" and block.get("tool_use_id") not in before:
                    return _bad(
                        f"messages.{i}.content.{j}: unexpected `tool_use_id` found in "
                        f"`tool_result` blocks: {block.get('tool_use_id')}. Each `tool_result` "
                        "block must have a corresponding `tool_use` block in the previous message."
                    )
    return _unthought_tool_loop(messages) if thinking else None


def _unthought_tool_loop(messages: list[Any]) -> WireError | None:
    """With thinking on, a conversation that ends in tool results must have its last assistant
    turn (the one that made those calls) start with a thinking block."""
    if len(messages) < 2 or not tool_results(messages):
        return None
    k = len(messages) - 2
    assistant = messages[k]
    if not isinstance(assistant, dict) or assistant.get("role") != "assistant":
        return None
    blocks = _blocks(assistant)
    first = blocks[0].get("type") if blocks else "text"
    if first in ("thinking", "redacted_thinking"):
        return None
    return _bad(
        f"messages.{k}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
        f"`{first}`. When `thinking` is enabled, a final `assistant` message must start with a "
        "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks). "
        "We recommend you include thinking blocks from previous turns. To avoid this "
        f"requirement, disable `thinking`. Please consult our documentation at {THINKING_DOCS}"
    )
