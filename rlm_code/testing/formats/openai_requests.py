"""The request side of the OpenAI wire format beyond text: tools, tool choice, structured
output, reasoning knobs, image parts and the conversation checks of strict mode.

Apart from `openai` so each module stays small; the behaviour (and the real error bodies it
copies) is described in `rlm_code.testing.formats.openai`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from rlm_code.testing.wire import JsonObject, WireError, content_text

__all__ = [
    "asks_reasoning",
    "check_images",
    "conversation",
    "response_schema",
    "tool_choice",
    "tools_offered",
]


def _bad(message: str, param: str | None) -> WireError:
    return WireError("bad_request", message, param=param)


def _kind(value: object) -> str:
    """A JSON value's type as OpenAI's validation messages name it."""
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _object(value: object, param: str) -> dict[str, Any]:
    if value is None:
        raise _bad(f"Missing required parameter: '{param}'.", param)
    if not isinstance(value, dict):
        raise _bad(
            f"Invalid type for '{param}': expected an object, but got {_kind(value)} instead.",
            param,
        )
    return value


_DATA_URL_EXAMPLE = "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='"


def _check_image(part: dict[str, Any], where: str) -> None:
    image = _object(part.get("image_url"), where)
    url = image.get("url")
    if url is None:
        raise _bad(f"Missing required parameter: '{where}.url'.", f"{where}.url")
    if not isinstance(url, str):
        raise _bad(
            f"Invalid type for '{where}.url': expected a string, but got {_kind(url)} instead.",
            f"{where}.url",
        )
    if url.startswith(("https://", "http://")):
        return
    expected = (
        f"Invalid image URL: '{where}.url'. Expected a base64-encoded data URL with an image "
        f"MIME type (e.g. {_DATA_URL_EXAMPLE}), but got "
    )
    if not url.startswith("data:"):
        raise _bad(expected + "a value without the 'data:' prefix.", f"{where}.url")
    header, comma, data = url[5:].partition(",")
    if not comma or not header.startswith("image/") or not header.endswith(";base64"):
        raise _bad(expected + "a value that is not one.", f"{where}.url")
    try:
        decoded = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if not decoded:
        raise _bad("Invalid base64 image_url.", f"{where}.url")


def check_images(messages: list[Any]) -> None:
    """Image parts: recorded as sent, but a malformed one gets OpenAI's 400."""
    for index, message in enumerate(messages):
        content = message.get("content")
        if not isinstance(content, list):
            continue
        for number, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "image_url":
                continue
            role = message.get("role")
            if role != "user":
                raise _bad(
                    f"Invalid 'messages[{index}]'. Image URLs are only allowed for messages "
                    f"with role 'user', but this message with role '{role}' contains an image "
                    "URL.",
                    f"messages[{index}]",
                )
            _check_image(part, f"messages[{index}].content[{number}].image_url")


def tools_offered(value: object) -> tuple[tuple[str, JsonObject], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(
            f"Invalid type for 'tools': expected an array, but got {_kind(value)} instead.",
            "tools",
        )
    if not value:
        raise _bad(
            "Invalid 'tools': empty array. Expected an array with minimum length 1, but got an "
            "empty array instead.",
            "tools",
        )
    tools = []
    for index, item in enumerate(value):
        where = f"tools[{index}]"
        tool = _object(item, where)
        kind = tool.get("type")
        if kind is None:
            raise _bad(f"Missing required parameter: '{where}.type'.", f"{where}.type")
        if kind != "function":
            raise _bad(
                f"Invalid value: '{kind}'. Supported values are: 'function' and 'custom'.",
                f"{where}.type",
            )
        function = _object(tool.get("function"), f"{where}.function")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(
                f"Missing required parameter: '{where}.function.name'.", f"{where}.function.name"
            )
        parameters = function.get("parameters", {"type": "object", "properties": {}})
        tools.append((name, _object(parameters, f"{where}.function.parameters")))
    return tuple(tools)


def tool_choice(
    value: object, tools: tuple[tuple[str, JsonObject], ...]
) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not tools:
        raise _bad(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            "tool_choice",
        )
    if value in ("auto", "none", "required"):
        return str(value), None
    if isinstance(value, dict) and value.get("type") == "function":
        function = _object(value.get("function"), "tool_choice.function")
        name = function.get("name")
        if not isinstance(name, str) or name not in {n for n, _ in tools}:
            raise _bad(
                f"Invalid value for 'tool_choice': no function named {name!r} was specified in "
                "the 'tools' parameter.",
                "tool_choice",
            )
        return "tool", name
    raise _bad(
        f"Invalid value: {value!r}. Supported values are: 'none', 'auto', and 'required'.",
        "tool_choice",
    )


def response_schema(value: object) -> JsonObject | None:
    if value is None:
        return None
    form = _object(value, "response_format")
    kind = form.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind != "json_schema":
        raise _bad(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and "
            "'json_schema'.",
            "response_format.type",
        )
    inner = _object(form.get("json_schema"), "response_format.json_schema")
    if not isinstance(inner.get("name"), str):
        raise _bad(
            "Missing required parameter: 'response_format.json_schema.name'.",
            "response_format.json_schema.name",
        )
    return _object(inner.get("schema", {}), "response_format.json_schema.schema")


def asks_reasoning(data: JsonObject) -> bool:
    """Whether any host's reasoning knob is on (see the module docstring)."""
    effort = data.get("reasoning_effort")
    if isinstance(effort, str) and effort not in ("none", "minimal"):
        return True
    options = data.get("reasoning")  # OpenRouter
    if isinstance(options, dict) and options.get("enabled") is not False:
        if options.get("effort") not in (None, "none") or options.get("max_tokens"):
            return True
        if options.get("enabled") is True:
            return True
    thinking = data.get("thinking")  # DeepSeek, Moonshot
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        return True
    return data.get("enable_thinking") is True  # DashScope, SiliconFlow


def conversation(messages: list[Any], reasoning: bool) -> tuple[tuple[str, ...], WireError | None]:
    """(the tool results of the last turns, the first problem a strict server refuses)."""
    problem: WireError | None = None
    due: list[str] = []  # ids of the last assistant turn's calls still without a result
    calls: set[str] = set()  # ids of the last assistant turn's calls
    results: list[str] = []
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id in calls:
                if call_id in due:
                    due.remove(call_id)
            elif problem is None:
                problem = _bad(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            results.append(content_text(message.get("content")))
            continue
        if due and problem is None:
            problem = _unanswered(due, index)
        due, calls, results = [], set(), []
        made = message.get("tool_calls") if role == "assistant" else None
        if isinstance(made, list) and made:
            due = [str(c.get("id")) for c in made if isinstance(c, dict)]
            calls = set(due)
            if reasoning and message.get("reasoning_content") is None and problem is None:
                problem = _bad(
                    f"Missing `reasoning_content` field in the assistant message at message "
                    f"index {index}. For more information, please refer to "
                    "https://api-docs.deepseek.com/guides/thinking_mode#tool-calls",
                    None,
                )
    if due and problem is None:
        problem = _unanswered(due, len(messages) - 1)
    return tuple(results), problem


def _unanswered(ids: list[str], index: int) -> WireError:
    return _bad(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids),
        f"messages.[{index}].role",
    )
