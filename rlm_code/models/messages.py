"""`messages=`: OpenAI chat-style dicts, checked and turned into `Message`s before any I/O.

The lingua franca users already write (and what `Response.message` gives back):

- `{"role": "system" | "user" | "assistant" | "tool", "content": ...}`; `content` is a string
  or a list of parts `{"type": "text", "text": ...}` and
  `{"type": "image_url", "image_url": {"url": "https://..." | "data:image/png;base64,..."}}`
  (images in user turns only).
- An assistant turn may carry `tool_calls` (`[{"id", "type": "function", "function": {"name",
  "arguments": "<json>"}}]`, Gemini signatures in `extra_content`), `reasoning` (or DeepSeek's
  `reasoning_content`) and `reasoning_details` (provider blocks to replay); its content may then
  be empty or None.
- A tool turn carries `tool_call_id` (of a call made earlier in the conversation) and the
  result as `content`.

System turns are joined into the request's system prompt, which every API keeps apart.
Anything else is refused with a message naming the turn and what to fix: nothing is silently
dropped. (Keys the OpenAI SDK puts on its reply messages — `refusal`, `annotations`, `audio`,
`function_call` — are accepted when empty, so a dumped SDK message can be appended as is.)
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from typing import Any

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.types import (
    MESSAGE_ROLES,
    ContentPart,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
)

_KEYS = {
    "system": {"role", "content", "name"},
    "user": {"role", "content", "name"},
    "assistant": {
        "role",
        "content",
        "name",
        "tool_calls",
        "reasoning",
        "reasoning_content",
        "reasoning_details",
    },
    "tool": {"role", "content", "tool_call_id", "name"},
}
_EMPTY_SDK_KEYS = {"refusal", "annotations", "audio", "function_call"}


def _fail(where: str, problem: str) -> InvalidInputError:
    return InvalidInputError(f"{where}: {problem}")


def parse_image_url(url: object, where: str) -> ImagePart:
    """An `image_url` value -> `ImagePart`: an http(s) URL, or a base64 `data:image/...` URL."""
    if not isinstance(url, str) or not url:
        raise _fail(where, "image_url.url must be a non-empty string")
    if url.startswith(("https://", "http://")):
        return ImagePart(url=url)
    if not url.startswith("data:"):
        raise _fail(where, "image_url.url must be an https:// URL or a data:image/...;base64 URL")
    header, comma, data = url[5:].partition(",")
    media_type, _, encoding = header.partition(";")
    if not comma or encoding != "base64" or not media_type.startswith("image/"):
        raise _fail(where, "a data URL image must look like data:image/png;base64,<data>")
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise _fail(where, "the data URL's image is not valid base64") from None
    return ImagePart(media_type=media_type, data=data)


def _parts(content: object, where: str, images: bool) -> tuple[str, tuple[ContentPart, ...] | None]:
    """A turn's content -> (its text, its parts when it has images)."""
    if isinstance(content, str):
        return content, None
    if content is None:
        return "", None
    if not isinstance(content, Sequence) or isinstance(content, bytes | bytearray):
        raise _fail(where, "content must be a string or a list of content parts")
    parts: list[ContentPart] = []
    has_image = False
    for index, part in enumerate(content):
        at = f"{where}.content[{index}]"
        if not isinstance(part, Mapping):
            raise _fail(at, "a content part must be a dict with a 'type'")
        kind = part.get("type")
        if kind == "text":
            text = part.get("text")
            if not isinstance(text, str):
                raise _fail(at, "a text part needs a string 'text'")
            parts.append(TextPart(text))
        elif kind == "image_url":
            if not images:
                raise _fail(at, "images are accepted in user turns only")
            value = part.get("image_url")
            url = value.get("url") if isinstance(value, Mapping) else value
            parts.append(parse_image_url(url, at))
            has_image = True
        else:
            raise _fail(at, f"unknown content part type {kind!r}; use 'text' or 'image_url'")
    text = "".join(p.text for p in parts if isinstance(p, TextPart))
    return text, tuple(parts) if has_image else None


def _tool_calls(value: object, where: str) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _fail(where, "tool_calls must be a list")
    calls: list[ToolCall] = []
    for index, item in enumerate(value):
        at = f"{where}.tool_calls[{index}]"
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(item, Mapping) or not isinstance(function, Mapping):
            raise _fail(at, 'must be {"id", "type": "function", "function": {"name", "arguments"}}')
        call_id, name = item.get("id"), function.get("name")
        if not isinstance(call_id, str) or not call_id:
            raise _fail(at, "needs a string 'id'")
        if not isinstance(name, str) or not name:
            raise _fail(at, "needs function.name")
        raw = function.get("arguments", "")
        if isinstance(raw, Mapping):
            raw = json.dumps(raw, ensure_ascii=False)
        if not isinstance(raw, str):
            raise _fail(at, "function.arguments must be a JSON string (or a dict)")
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise _fail(at, "function.arguments is not valid JSON") from None
        if not isinstance(arguments, dict):
            raise _fail(at, "function.arguments must be a JSON object")
        extra = item.get("extra_content")
        if extra is not None and not isinstance(extra, Mapping):
            raise _fail(at, "extra_content must be a dict")
        calls.append(ToolCall(call_id, name, arguments, raw, dict(extra) if extra else None))
    return tuple(calls)


def _details(value: object, where: str) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise _fail(where, "reasoning_details must be a list of dicts")
    if not all(isinstance(d, Mapping) and isinstance(d.get("type"), str) for d in value):
        raise _fail(where, "each reasoning_details entry must be a dict with a 'type'")
    return tuple(dict(d) for d in value)


def parse_messages(messages: object) -> tuple[tuple[Message, ...], list[str]]:
    """Check `messages` and return (the non-system turns, the system texts in order)."""
    if not isinstance(messages, Sequence) or isinstance(messages, str | bytes):
        raise InvalidInputError("messages must be a list of {'role', 'content'} dicts")
    if not messages:
        raise InvalidInputError("messages is empty; pass at least one user turn")
    turns: list[Message] = []
    system: list[str] = []
    call_names: dict[str, str] = {}
    for index, item in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(item, Mapping):
            raise _fail(where, "must be a dict with 'role' and 'content'")
        role = item.get("role")
        if role not in MESSAGE_ROLES:
            raise _fail(where, f"role {role!r} is not one of {', '.join(MESSAGE_ROLES)}")
        unknown = sorted(
            key for key in set(item) - _KEYS[role] if not (key in _EMPTY_SDK_KEYS and not item[key])
        )
        if unknown:
            raise _fail(
                where,
                f"unknown key(s) {', '.join(map(repr, unknown))} for a {role} turn; "
                f"accepted: {', '.join(sorted(_KEYS[role]))}",
            )
        if "content" not in item and role != "assistant":
            raise _fail(where, "needs 'content'")
        text, parts = _parts(item.get("content"), where, images=role == "user")
        if role == "system":
            system.append(text)
        elif role == "user":
            turns.append(Message("user", text, parts))
        elif role == "assistant":
            calls = _tool_calls(item.get("tool_calls"), where)
            call_names.update((call.id, call.name) for call in calls)
            reasoning = item.get("reasoning", item.get("reasoning_content"))
            if reasoning is not None and not isinstance(reasoning, str):
                raise _fail(where, "reasoning must be a string")
            details = _details(item.get("reasoning_details"), where)
            turns.append(Message("assistant", text, None, calls, None, None, reasoning, details))
        else:
            call_id = item.get("tool_call_id")
            if not isinstance(call_id, str) or call_id not in call_names:
                raise _fail(
                    where,
                    "a tool turn needs the 'tool_call_id' of a tool call an earlier assistant "
                    "turn made",
                )
            turns.append(Message("tool", text, None, (), call_id, call_names[call_id]))
    if not turns:
        raise InvalidInputError("messages has only system turns; add a user turn")
    return tuple(turns), system
