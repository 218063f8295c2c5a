"""Gemini's shapes for the `gemini_sdk` adapter: a `ChatRequest` as `generate_content`'s
`contents` and config dicts, and a reply's parts back as text, reasoning, tool calls and the
details the next turn must replay. Kept apart from the adapter, which owns clients, timeouts
and retries, so each half stays a short read.

Request: the SDK's (snake_case) dict form. The SDK validates it into its types and writes the
top-level part fields in camelCase (`inlineData`) but the objects inside them with their
field names (`{"data", "mime_type"}`): the API reads both spellings, and so does the local
server.

- Turns: `user` and `model` contents. Images: a `data:` URL becomes `inline_data` (the bytes;
  the SDK base64-encodes them); an `https://` URL becomes `file_data` with the `mime_type` its
  file extension names (Gemini fetches public and signed HTTPS URLs itself and needs the type
  up front; we never fetch the URL). A plain `http://` URL, or one whose extension names no
  image type Gemini reads (png, jpeg, webp, heic, heif), is an `UnsupportedParameterError`.
- An assistant turn: its text part, then one `function_call` part per tool call (`name`,
  `args` and the call's `id` unless it is one we made up, see `_SYNTHESIZED_ID`). A call's
  `ToolCall.extra["google"]["thought_signature"]` (base64 text in our dicts) goes back as the
  part's `thought_signature` bytes. A signature Gemini put on a *text* part (Gemini 3 signs the
  last part of a reply without calls) travels in `reasoning_details` as
  `{"type": "gemini.thought_signature", "signature": "<base64>"}` and goes back on the turn's
  text part. Reasoning text (thought summaries) is not sent back: the signatures carry the
  model's state.
- Tool turns: `function_response` parts (`name` of the call, `response` the result parsed when
  it is a JSON object, else `{"result": <text>}`); consecutive tool turns share one `user`
  content, as Gemini wants all responses to one call turn together.
- Tools: `function_declarations` with `parameters_json_schema` (the full JSON schema, as is);
  tool_choice: `tool_config.function_calling_config` mode AUTO / NONE / ANY, plus
  `allowed_function_names` for a named tool. response_format: `response_mime_type`
  `application/json` with `response_json_schema`. reasoning: `thinking_config` with
  `thinking_budget` (`ReasoningSetting.budget()`) and `include_thoughts`.

Reply: parts with `thought: true` are reasoning; `function_call` parts are tool calls (the
part's `id`, else `new_call_id()`; `arguments_json` = `canonical_json(args)`, the same text in
whole and streamed replies); every `thought_signature` is kept as said above. A stream sends a
call whole in one chunk: one `ToolCallDelta` with all its arguments, then its `ToolCallDone`.
A candidate that finished `MALFORMED_FUNCTION_CALL` (the model wrote a call Gemini could not
parse) is a `ResponseFormatError`, like broken argument JSON on the other APIs.
"""

from __future__ import annotations

import base64
import binascii
import json
import posixpath
import re
from typing import Any, NamedTuple
from urllib.parse import unquote, urlsplit

from rlm_code.core.exceptions import (
    InvalidInputError,
    ResponseFormatError,
    UnsupportedParameterError,
)
from rlm_code.models.adapters._gemini_errors import blocked_prompt
from rlm_code.models.adapters._tool_calls import (
    ToolCallAssembler,
    canonical_json,
    new_call_id,
    tool_call,
)
from rlm_code.models.adapters.base import add_sampling, as_count
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    ImagePart,
    Message,
    ReasoningDelta,
    ReplayDetail,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolSpec,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

TEXT_SIGNATURE = "gemini.thought_signature"  # the `type` of a text part's signature detail
MALFORMED_CALL = "MALFORMED_FUNCTION_CALL"
# Ids `new_call_id` makes for Gemini's id-less calls: never sent back as a call's `id`.
_SYNTHESIZED_ID = re.compile(r"call_[0-9a-f]{24}")
_URL_IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".heic": "image/heic",
    ".heif": "image/heif",
}
_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY", "tool": "ANY"}


# -- usage and finish reason --------------------------------------------------------------------


def gemini_usage(meta: Any) -> Usage | None:
    """`usage_metadata` in our buckets (see `gemini_sdk`); None without it."""
    if meta is None:
        return None
    prompt = as_count(getattr(meta, "prompt_token_count", None))
    cached = as_count(getattr(meta, "cached_content_token_count", None))
    if prompt is not None and cached is not None:
        cached = min(cached, prompt)
        prompt -= cached
    candidates = as_count(getattr(meta, "candidates_token_count", None))
    thoughts = as_count(getattr(meta, "thoughts_token_count", None))
    output = (
        None if candidates is None and thoughts is None else (candidates or 0) + (thoughts or 0)
    )
    return Usage(prompt, output, cached, None, thoughts)


def usage_counts(meta: Any) -> tuple[int | None, int | None]:
    """(all prompt tokens, output tokens) from `usage_metadata`; None where Gemini did not say."""
    usage = gemini_usage(meta) or Usage()
    return usage.prompt_tokens, usage.output_tokens


def reply_text(response: Any) -> str | None:
    """The reply's text from the first candidate (thought parts left out); None: no candidate."""
    candidates = getattr(response, "candidates", None)
    if not candidates:
        return None
    content = getattr(candidates[0], "content", None)
    parts = getattr(content, "parts", None) or ()
    return "".join(
        part.text
        for part in parts
        if isinstance(getattr(part, "text", None), str) and not getattr(part, "thought", None)
    )


def _reason_word(reason: Any) -> str | None:
    if reason is None:
        return None
    value = getattr(reason, "value", reason)
    return value if isinstance(value, str) else str(value)


def finish_reason(response: Any) -> str | None:
    candidates = getattr(response, "candidates", None)
    if not candidates:
        return None
    return _reason_word(getattr(candidates[0], "finish_reason", None))


def _malformed(provider: str) -> ResponseFormatError:
    return ResponseFormatError(
        f"{provider} ended the reply with {MALFORMED_CALL}: the model wrote a tool call "
        "Gemini could not parse",
        provider=provider,
        hint="Retry the call; a simpler tool schema makes this rarer.",
    )


# -- request ------------------------------------------------------------------------------------


def _b64(signature: bytes) -> str:
    return base64.b64encode(signature).decode("ascii")


def _signature_bytes(value: object, what: str) -> bytes:
    """A base64 signature from our dicts as the bytes the SDK wants; bad input is an error."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            pass
    raise InvalidInputError(f"{what} must be the base64 text Gemini sent (got {value!r:.40})")


def _url_image(url: str, provider: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme != "https":
        raise UnsupportedParameterError(
            f"{provider} fetches image URLs over HTTPS only; {parts.scheme}:// URLs are refused",
            provider=provider,
            hint="Use an https:// URL, or send the image inline as a data:image/...;base64 URL.",
        )
    extension = posixpath.splitext(unquote(parts.path))[1].lower()
    mime_type = _URL_IMAGE_TYPES.get(extension)
    if mime_type is None:
        raise UnsupportedParameterError(
            f"{provider} needs an image URL's type up front, and the URL's extension "
            f"({extension or 'none'}) names no type Gemini reads (png, jpeg, webp, heic, heif)",
            provider=provider,
            hint="Send the image inline as a data:image/...;base64 URL instead.",
        )
    return {"file_data": {"file_uri": url, "mime_type": mime_type}}


def _user_parts(message: Message, provider: str) -> list[dict[str, Any]]:
    if message.parts is None:
        return [{"text": message.content}]
    parts: list[dict[str, Any]] = []
    for part in message.parts:
        if not isinstance(part, ImagePart):
            parts.append({"text": part.text})
        elif part.url is not None:
            parts.append(_url_image(part.url, provider))
        else:
            data = base64.b64decode(part.data or "")
            parts.append({"inline_data": {"mime_type": part.media_type, "data": data}})
    return parts


def _text_signature(message: Message) -> bytes | None:
    """The signature of the turn's text part (the last `gemini.thought_signature` detail)."""
    found: bytes | None = None
    for detail in message.reasoning_details:
        if detail.get("type") == TEXT_SIGNATURE:
            found = _signature_bytes(detail.get("signature"), "a gemini.thought_signature detail")
    return found


def _call_signature(call: ToolCall) -> bytes | None:
    google = (call.extra or {}).get("google")
    value = google.get("thought_signature") if isinstance(google, dict) else None
    if value is None:
        return None
    return _signature_bytes(value, f"tool call {call.id!r}: extra_content.google.thought_signature")


def _model_parts(message: Message) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    signature = _text_signature(message)
    if message.content or signature is not None or not message.tool_calls:
        text: dict[str, Any] = {"text": message.content}
        if signature is not None:
            text["thought_signature"] = signature
        parts.append(text)
    for call in message.tool_calls:
        function: dict[str, Any] = {"name": call.name, "args": call.arguments}
        if not _SYNTHESIZED_ID.fullmatch(call.id):
            function["id"] = call.id
        part: dict[str, Any] = {"function_call": function}
        call_signature = _call_signature(call)
        if call_signature is not None:
            part["thought_signature"] = call_signature
        parts.append(part)
    return parts


def _function_response(message: Message) -> dict[str, Any]:
    content = message.content
    response: dict[str, Any] | None = None
    if content.lstrip().startswith("{"):
        try:
            value = json.loads(content)
        except ValueError:
            value = None
        if isinstance(value, dict):
            response = value
    function: dict[str, Any] = {
        "name": message.name or "",
        "response": response if response is not None else {"result": content},
    }
    call_id = message.tool_call_id
    if call_id and not _SYNTHESIZED_ID.fullmatch(call_id):
        function["id"] = call_id
    return {"function_response": function}


def request_contents(request: ChatRequest, provider: str) -> str | list[dict[str, Any]]:
    """The turns as `contents`; a lone text user turn as plain text, which the SDK turns into
    the same user `Content` faster than it converts the dict form."""
    turns = request.messages
    if len(turns) == 1 and turns[0].role == "user" and turns[0].parts is None:
        return turns[0].content
    contents: list[dict[str, Any]] = []
    results: list[dict[str, Any]] | None = None  # the parts of the tool turns being gathered
    for message in turns:
        if message.role == "tool":
            if results is None:
                results = []
                contents.append({"role": "user", "parts": results})
            results.append(_function_response(message))
            continue
        results = None
        if message.role == "assistant":
            contents.append({"role": "model", "parts": _model_parts(message)})
        else:
            contents.append({"role": "user", "parts": _user_parts(message, provider)})
    return contents


def _declaration(tool: ToolSpec, json_schema: bool) -> dict[str, Any]:
    declaration: dict[str, Any] = {"name": tool.name}
    if tool.description:
        declaration["description"] = tool.description
    declaration["parameters_json_schema" if json_schema else "parameters"] = tool.parameters
    return declaration


def request_config(
    request: ChatRequest, *, timeout_ms: int | None, json_schema: bool = True
) -> dict[str, Any] | None:
    """The call's `GenerateContentConfig` as a dict, or None when there is nothing to set:
    the SDK converts every config field by field (~0.25 ms a call), so a plain prompt sends
    none, exactly like a bare SDK call. `json_schema`: the SDK takes full JSON schemas
    (`parameters_json_schema`, `response_json_schema`; google-genai >= 1.52 does)."""
    config = add_sampling({}, request.params, "max_output_tokens", "stop_sequences")
    if request.system:
        config["system_instruction"] = request.system
    if timeout_ms is not None:
        config["http_options"] = {"timeout": timeout_ms}
    if request.tools:
        declarations = [_declaration(tool, json_schema) for tool in request.tools]
        config["tools"] = [{"function_declarations": declarations}]
        if request.tool_choice is not None:
            calling: dict[str, Any] = {"mode": _MODES[request.tool_choice]}
            if request.tool_choice == "tool" and request.forced_tool:
                calling["allowed_function_names"] = [request.forced_tool]
            config["tool_config"] = {"function_calling_config": calling}
    if request.response_format is not None:
        config["response_mime_type"] = "application/json"
        key = "response_json_schema" if json_schema else "response_schema"
        config[key] = request.response_format.schema
    if request.reasoning is not None:
        budget = request.reasoning.budget()
        config["thinking_config"] = {"thinking_budget": budget, "include_thoughts": True}
    if not config:
        return None
    # Tools are sent as declarations, never as Python callables, so the SDK's automatic
    # function calling has nothing to do; saying so skips its bookkeeping.
    config["automatic_function_calling"] = {"disable": True}
    return config


# -- reply --------------------------------------------------------------------------------------


def _extra(signature: bytes | None) -> dict[str, Any] | None:
    if not signature:
        return None
    return {"google": {"thought_signature": _b64(signature)}}


class Reply(NamedTuple):
    """A whole reply's first candidate, parsed."""

    text: str
    tool_calls: list[ToolCall]
    reasoning: str | None
    details: list[dict[str, Any]]


def parse_reply(provider: str, response: Any) -> Reply | None:
    """The first candidate's parts as a `Reply`; None when there is no candidate."""
    candidates = response.candidates
    if not candidates:
        return None
    candidate = candidates[0]
    if _reason_word(candidate.finish_reason) == MALFORMED_CALL:
        raise _malformed(provider)
    content = candidate.content
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[ToolCall] = []
    details: list[dict[str, Any]] = []
    for part in (content.parts if content is not None else None) or ():
        signature = part.thought_signature
        call = part.function_call
        if call is not None:
            arguments = canonical_json(call.args if call.args is not None else {})
            calls.append(
                tool_call(
                    provider, call.id or new_call_id(), call.name, arguments, _extra(signature)
                )
            )
            continue
        text = part.text
        if part.thought:
            if text:
                thoughts.append(text)
        elif text is not None:
            texts.append(text)
        if signature:
            details.append({"type": TEXT_SIGNATURE, "signature": _b64(signature)})
    return Reply("".join(texts), calls, "".join(thoughts) if thoughts else None, details)


class ChunkReader:
    """A stream's chunks -> events. A plain text part costs one check beyond its text (no
    thought flag, no signature); anything else goes through `_part`."""

    __slots__ = ("_assembler", "_calls", "_provider")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._assembler = ToolCallAssembler(provider)
        self._calls = 0

    def events(self, chunk: Any) -> tuple[list[AdapterEvent], bool]:
        """One stream chunk -> (its events, whether it was the last one)."""
        events: list[AdapterEvent] = []
        # Counts first: a caller that stops at this chunk's text has them already.
        meta = chunk.usage_metadata
        if meta is not None:
            events.append(UsageReport(gemini_usage(meta) or Usage()))
        candidates = chunk.candidates
        if not candidates:
            blocked = blocked_prompt(self._provider, chunk)  # the prompt itself was refused
            if blocked is not None:
                raise blocked
            return events, False
        candidate = candidates[0]
        content = candidate.content
        parts = content.parts if content is not None else None
        if parts:
            for part in parts:
                text = part.text
                if text is not None and not part.thought and part.thought_signature is None:
                    if text:
                        events.append(TextDelta(text))
                else:
                    self._part(part, events)
        reason = _reason_word(candidate.finish_reason)
        if reason is None:
            return events, False
        if reason == MALFORMED_CALL:
            raise _malformed(self._provider)
        events.append(StreamEnd(normalize_finish_reason(reason), reason))
        return events, True

    def _part(self, part: Any, events: list[AdapterEvent]) -> None:
        signature = part.thought_signature
        call = part.function_call
        if call is not None:
            index = self._calls
            self._calls += 1
            arguments = canonical_json(call.args if call.args is not None else {})
            assembler = self._assembler
            call_id = call.id or new_call_id()
            events.append(assembler.add(index, call_id, call.name, arguments, _extra(signature)))
            done = assembler.done(index)
            if done is not None:
                events.append(done)
            return
        text = part.text
        if text:
            events.append(ReasoningDelta(text) if part.thought else TextDelta(text))
        if signature:
            events.append(ReplayDetail({"type": TEXT_SIGNATURE, "signature": _b64(signature)}))
