"""Gemini `generateContent` requests as the local server reads them, beyond text included.

Protobuf JSON accepts both spellings of every field name (`inlineData` / `inline_data`), and
so does this parser: the `google-genai` SDK itself writes the objects nested in a part with
their snake_case names (`{"inlineData": {"data", "mime_type"}}`).

Read: `systemInstruction`; `contents` (roles `user` and `model`) with `text`, `inlineData`,
`fileData`, `functionCall` and `functionResponse` parts and `thoughtSignature`s; `tools[]
.functionDeclarations` (`parametersJsonSchema`, or the OpenAPI-style `parameters` whose
upper-case types are read as JSON schema types); `toolConfig.functionCallingConfig` (mode
AUTO / ANY / NONE / VALIDATED, `allowedFunctionNames`: ANY with one name forces that tool);
`generationConfig` (`maxOutputTokens`, `responseMimeType` with `responseJsonSchema` or
`responseSchema`, `thinkingConfig`: a budget other than 0, a thinking level or
`includeThoughts` turn reasoning on; thought parts are sent only with `includeThoughts`).

Refused always, with the API's protobuf messages: a `data` or `thoughtSignature` that is not
base64, an `inlineData` / `fileData` that is not an object or lacks its `mimeType` /
`fileUri`. Refused in strict mode only (`strict_problem`), with the API's 400 messages: a
function call turn not answered by as many function responses in the next content, function
responses that follow no function call turn, a function call turn that follows no user turn,
a signature the server could not have given (`scripted.signature_of` gives 32 bytes:
"Corrupted thought signature."), and, with thinking on, a function call turn of the current
turn (since the last user text) whose first `functionCall` part lacks its `thoughtSignature`
(Gemini 3 validates exactly those; the position is the content's 1-based index).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rlm_code.testing.wire import JsonObject, WireError, WireRequest, optional_int

__all__ = ["GeminiRequest", "field", "parse_request"]

SIGNATURE_DOCS = "https://ai.google.dev/gemini-api/docs/thought-signatures"
_COUNT_MISMATCH = (
    "Please ensure that the number of function response parts is equal to the number of "
    "function call parts of the function call turn."
)
_RESPONSE_ORDER = (
    "Please ensure that function response turn comes immediately after a function call turn."
)
_CALL_ORDER = (
    "Please ensure that function call turn comes immediately after a user turn or after a "
    "function response turn."
)
_CORRUPTED = "Corrupted thought signature."
_SIGNATURE_BYTES = 32  # a sha256 digest, what `scripted.signature_of` gives


@dataclass(frozen=True)
class GeminiRequest(WireRequest):
    """A `WireRequest` that also knows whether thought parts were asked for."""

    include_thoughts: bool = False


def field(data: Mapping[str, Any], camel: str, snake: str) -> Any:
    """Protobuf JSON accepts both spellings of a field name, so the real API does too."""
    return data[camel] if camel in data else data.get(snake)


def _bad(message: str) -> WireError:
    return WireError("bad_request", message)


def _bytes(value: object, where: str) -> bytes:
    """A protobuf `bytes` field: standard or URL-safe base64, else the API's 400."""
    if isinstance(value, str):
        for altchars in (None, b"-_"):
            try:
                return base64.b64decode(value, altchars=altchars, validate=True)
            except (binascii.Error, ValueError):
                continue
    shown = value if isinstance(value, str) else json.dumps(value)
    raise _bad(f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed for \"{shown}\"")


def _object(part: Mapping[str, Any], camel: str, snake: str, where: str, kind: str) -> Any:
    value = field(part, camel, snake)
    if value is not None and not isinstance(value, dict):
        raise _bad(
            f"Invalid value at '{where}.{snake}' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta.{kind}), "
            f"{json.dumps(value)}"
        )
    return value


@dataclass
class _Content:
    """What one content holds, for the conversation checks."""

    role: str
    text: str
    calls: list[tuple[str, bool]]  # (name, has a thoughtSignature) per functionCall part
    results: list[str]  # one text per functionResponse part
    other: bool  # a part that is neither a function call nor a function response


def _result_text(response: Any) -> str:
    if isinstance(response, dict) and set(response) == {"result"}:
        result = response["result"]
        if isinstance(result, str):
            return result
    return json.dumps(response, ensure_ascii=False)


def _content(index: int, content: object, signatures: list[bytes]) -> _Content:
    if not isinstance(content, dict):
        raise _bad("Invalid value at 'contents'.")
    role = content.get("role") or "user"
    parts = content.get("parts")
    texts: list[str] = []
    calls: list[tuple[str, bool]] = []
    results: list[str] = []
    other = False
    for number, part in enumerate(parts if isinstance(parts, list) else ()):
        where = f"contents[{index}].parts[{number}]"
        if isinstance(part, str):
            texts.append(part)
            other = True
            continue
        if not isinstance(part, dict):
            continue
        signature = field(part, "thoughtSignature", "thought_signature")
        if signature is not None:
            signatures.append(_bytes(signature, f"{where}.thought_signature"))
        text = part.get("text")
        if isinstance(text, str):
            texts.append(text)
        inline = _object(part, "inlineData", "inline_data", where, "Blob")
        if inline is not None:
            _bytes(inline.get("data"), f"{where}.inline_data.data")
            if not isinstance(field(inline, "mimeType", "mime_type"), str):
                raise _bad("Request contains an invalid argument.")
        file_data = _object(part, "fileData", "file_data", where, "FileData")
        if file_data is not None and not isinstance(field(file_data, "fileUri", "file_uri"), str):
            raise _bad("Request contains an invalid argument.")
        call = _object(part, "functionCall", "function_call", where, "FunctionCall")
        response = _object(part, "functionResponse", "function_response", where, "FunctionResponse")
        if call is not None:
            calls.append((str(call.get("name") or ""), signature is not None))
            texts.append(json.dumps(call.get("args") or {}, ensure_ascii=False))
        elif response is not None:
            results.append(_result_text(response.get("response")))
            texts.append(results[-1])
        else:
            other = True
    return _Content(str(role), "".join(texts), calls, results, other)


def _strict_problem(contents: list[_Content], thinking: bool) -> WireError | None:
    for index, content in enumerate(contents):
        previous = contents[index - 1] if index else None
        following = contents[index + 1] if index + 1 < len(contents) else None
        if content.results and (previous is None or not previous.calls):
            return _bad(_RESPONSE_ORDER)
        if content.calls:
            if previous is None or previous.role != "user":
                return _bad(_CALL_ORDER)
            if following is None or len(following.results) != len(content.calls):
                return _bad(_COUNT_MISMATCH)
    if thinking:
        start = max((i for i, c in enumerate(contents) if c.role == "user" and c.other), default=0)
        for index in range(start, len(contents)):
            calls = contents[index].calls
            if calls and not calls[0][1]:
                return _bad(
                    "Function call is missing a thought_signature in functionCall parts. This "
                    "is required for tools to work correctly, and missing thought_signature "
                    "may lead to degraded model performance. Additional data, function call "
                    f"`default_api:{calls[0][0]}` , position {index + 1}. Please refer to "
                    f"{SIGNATURE_DOCS} for more details."
                )
    return None


def _lower_types(schema: Any) -> Any:
    """An OpenAPI-style `Schema` (`"type": "STRING"`) as JSON schema (`"type": "string"`)."""
    if isinstance(schema, list):
        return [_lower_types(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _lower_types(value) for key, value in schema.items()}
    if isinstance(out.get("type"), str):
        out["type"] = out["type"].lower()
    return out


def _tools(data: Mapping[str, Any]) -> tuple[tuple[str, JsonObject], ...]:
    tools = data.get("tools")
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise _bad("Invalid value at 'tools'.")
    offered: list[tuple[str, JsonObject]] = []
    for number, tool in enumerate(tools):
        declarations = (
            field(tool, "functionDeclarations", "function_declarations")
            if isinstance(tool, dict)
            else None
        )
        for index, declaration in enumerate(declarations if isinstance(declarations, list) else ()):
            name = declaration.get("name") if isinstance(declaration, dict) else None
            if not isinstance(name, str) or not name:
                raise _bad(
                    f"* GenerateContentRequest.tools[{number}].function_declarations[{index}]"
                    ".name: Name cannot be empty.\n"
                )
            schema = field(declaration, "parametersJsonSchema", "parameters_json_schema")
            if schema is None:
                schema = _lower_types(declaration.get("parameters"))
            offered.append((name, schema if isinstance(schema, dict) else {}))
    return tuple(offered)


def _tool_choice(data: Mapping[str, Any]) -> tuple[str | None, str | None]:
    config = field(data, "toolConfig", "tool_config")
    calling = (
        field(config, "functionCallingConfig", "function_calling_config")
        if isinstance(config, dict)
        else None
    )
    if not isinstance(calling, dict):
        return None, None
    mode = calling.get("mode", "AUTO")
    names = field(calling, "allowedFunctionNames", "allowed_function_names")
    if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
        raise _bad(
            "Invalid value at 'tool_config.function_calling_config.mode' "
            "(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode)"
            f", {json.dumps(mode)}"
        )
    if mode == "NONE":
        return "none", None
    if mode == "ANY":
        if isinstance(names, list) and len(names) == 1 and isinstance(names[0], str):
            return "tool", names[0]
        return "required", None
    return "auto", None


def _thinking(config: Mapping[str, Any]) -> tuple[bool, bool]:
    """(thinking on, thought parts wanted) from `generationConfig.thinkingConfig`."""
    thinking = field(config, "thinkingConfig", "thinking_config")
    if not isinstance(thinking, dict):
        return False, False
    budget = field(thinking, "thinkingBudget", "thinking_budget")
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)):
        raise _bad(
            "Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), "
            f"{json.dumps(budget)}"
        )
    include = field(thinking, "includeThoughts", "include_thoughts") is True
    level = field(thinking, "thinkingLevel", "thinking_level")
    return include or level is not None or (budget is not None and budget != 0), include


def parse_request(data: JsonObject, *, endpoint: str, path_model: str | None) -> GeminiRequest:
    contents = data.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _bad("* GenerateContentRequest.contents: contents is not specified\n")
    texts: list[str] = []
    system = field(data, "systemInstruction", "system_instruction")
    if isinstance(system, str):
        texts.append(system)
    elif isinstance(system, dict):
        parts = system.get("parts")
        texts.append(
            "".join(p.get("text", "") for p in parts if isinstance(p, dict))
            if isinstance(parts, list)
            else ""
        )
    signatures: list[bytes] = []
    read = [_content(index, content, signatures) for index, content in enumerate(contents)]
    texts += [content.text for content in read]
    last_user = next((c.text for c in reversed(read) if c.role == "user"), "")
    config = field(data, "generationConfig", "generation_config")
    max_tokens = None
    schema = None
    thinking = include_thoughts = False
    if isinstance(config, dict):
        max_tokens = optional_int(
            field(config, "maxOutputTokens", "max_output_tokens"), "maxOutputTokens"
        )
        if field(config, "responseMimeType", "response_mime_type") == "application/json":
            schema = field(config, "responseJsonSchema", "response_json_schema")
            if schema is None:
                schema = _lower_types(field(config, "responseSchema", "response_schema"))
        thinking, include_thoughts = _thinking(config)
    choice, forced = _tool_choice(data)
    problem = _strict_problem(read, thinking)
    if problem is None and any(len(s) != _SIGNATURE_BYTES for s in signatures):
        problem = _bad(_CORRUPTED)
    return GeminiRequest(
        model=path_model or "",
        texts=tuple(texts),
        last_user_text=last_user,
        max_tokens=max_tokens,
        stream=endpoint == "streamGenerateContent",
        tools=_tools(data),
        tool_choice=choice,
        forced_tool=forced,
        schema=schema if isinstance(schema, dict) else None,
        reasoning=thinking,
        tool_results=tuple(read[-1].results),
        strict_problem=problem,
        include_thoughts=include_thoughts,
    )
