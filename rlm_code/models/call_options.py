"""The optional settings of a `complete()`/`stream()` call, checked before any I/O.

- `tools`: a list of `{"name", "description", "parameters"}` dicts, OpenAI's
  `{"type": "function", "function": {...}}` form, or plain Python functions with type hints
  (`tool_schema.function_tool`). Names must be unique.
- `tool_choice`: "auto", "none", "required", or `{"name": ...}` (also OpenAI's
  `{"type": "function", "function": {"name": ...}}`); "required" and a named tool need tools,
  and the named tool must be one of them.
- `response_format`: a JSON schema dict, OpenAI's `{"type": "json_schema", "json_schema":
  {"name", "schema", "strict"}}`, or a pydantic model / dataclass / TypedDict class.
- `reasoning`: "low", "medium", "high", or a token budget (an int of at least 1).

Each adapter then maps them to its API, and refuses (with `UnsupportedParameterError`) what
its API cannot do — never silently dropping a setting.
"""

from __future__ import annotations

import contextlib
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.types import ReasoningSetting, ResponseFormat, ToolSpec

_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_EFFORTS = ("low", "medium", "high")
ToolChoice = Literal["auto", "none", "required", "tool"]
# A function's tool spec, made once: reading its signature and docstring costs ~40 µs, and an
# agent loop passes the same functions on every call. Weak keys: no function is kept alive.
_FUNCTION_TOOLS: weakref.WeakKeyDictionary[Callable[..., Any], ToolSpec] = (
    weakref.WeakKeyDictionary()
)


def _function_tool(fn: Callable[..., Any]) -> ToolSpec:
    from rlm_code.models.tool_schema import function_tool

    with contextlib.suppress(KeyError, TypeError):  # TypeError: not weakly referenceable
        return _FUNCTION_TOOLS[fn]
    spec = function_tool(fn)
    with contextlib.suppress(TypeError):
        _FUNCTION_TOOLS[fn] = spec
    return spec


def _tool(item: object, index: int) -> ToolSpec:
    if not isinstance(item, Mapping):
        if callable(item):
            return _function_tool(item)
        raise InvalidInputError(f"tools[{index}] must be a dict or a Python function")
    spec = item.get("function") if item.get("type") == "function" else item
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f'tools[{index}]: {{"type": "function"}} needs a "function" dict')
    name = spec.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.match(name):
        raise InvalidInputError(
            f"tools[{index}]: the name must be 1-64 letters, digits, '_' or '-' (got {name!r})"
        )
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise InvalidInputError(f"tools[{index}]: description must be a string")
    parameters = spec.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    elif not isinstance(parameters, Mapping) or parameters.get("type", "object") != "object":
        raise InvalidInputError(
            f"tools[{index}]: parameters must be a JSON schema of type 'object'"
        )
    return ToolSpec(name, description, dict(parameters))


def check_tools(tools: object) -> tuple[ToolSpec, ...]:
    if tools is None:
        return ()
    if not isinstance(tools, Sequence) or isinstance(tools, str):
        raise InvalidInputError("tools must be a list of tool dicts or Python functions")
    specs = tuple([_tool(item, i) for i, item in enumerate(tools)])
    if len(specs) > 1:
        names = [spec.name for spec in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInputError(f"tools has duplicate name(s): {', '.join(duplicates)}")
    return specs


def check_tool_choice(
    choice: object, tools: tuple[ToolSpec, ...]
) -> tuple[ToolChoice | None, str | None]:
    """(the choice word, the forced tool's name) for a valid `tool_choice`."""
    if choice is None:
        return None, None
    if isinstance(choice, Mapping):
        function = choice.get("function") if choice.get("type") == "function" else choice
        name = function.get("name") if isinstance(function, Mapping) else None
        if not isinstance(name, str) or not name:
            raise InvalidInputError('tool_choice as a dict must be {"name": "<tool name>"}')
        if name not in {t.name for t in tools}:
            raise InvalidInputError(
                f"tool_choice names {name!r}, which is not among the tools passed"
            )
        return "tool", name
    if choice not in ("auto", "none", "required"):
        raise InvalidInputError(
            'tool_choice must be "auto", "none", "required" or {"name": "<tool name>"}'
        )
    if choice == "required" and not tools:
        raise InvalidInputError('tool_choice "required" needs tools; pass tools=[...]')
    word: ToolChoice = choice
    return word, None


def check_response_format(value: object) -> ResponseFormat | None:
    if value is None:
        return None
    if isinstance(value, type):
        from rlm_code.models.tool_schema import model_schema

        name, schema = model_schema(value)
        return ResponseFormat(_schema_name(name), schema)
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            "response_format must be a JSON schema dict or a pydantic model class"
        )
    if value.get("type") == "json_schema":
        inner = value.get("json_schema")
        found = inner.get("schema") if isinstance(inner, Mapping) else None
        if not isinstance(inner, Mapping) or not isinstance(found, Mapping):
            raise InvalidInputError(
                'response_format {"type": "json_schema"} needs "json_schema": {"name", "schema"}'
            )
        strict = inner.get("strict", True)
        return ResponseFormat(
            _schema_name(inner.get("name", "response")), dict(found), strict is not False
        )
    if value.get("type") == "json_object":
        raise InvalidInputError(
            "response_format json_object (JSON without a schema) is not supported; pass a JSON "
            "schema, e.g. {'type': 'object'}"
        )
    if not any(key in value for key in ("type", "properties", "anyOf", "oneOf", "$ref", "enum")):
        raise InvalidInputError("response_format does not look like a JSON schema")
    return ResponseFormat("response", dict(value))


def _schema_name(name: object) -> str:
    text = re.sub(r"[^a-zA-Z0-9_-]", "_", name if isinstance(name, str) else "") or "response"
    return text[:64]


def check_reasoning(value: object) -> ReasoningSetting | None:
    if value is None:
        return None
    if isinstance(value, str) and value in _EFFORTS:
        effort: Literal["low", "medium", "high"] = value  # type: ignore[assignment]
        return ReasoningSetting(effort=effort)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return ReasoningSetting(budget_tokens=value)
    raise InvalidInputError('reasoning must be "low", "medium", "high" or a token budget (int)')
