"""Ollama native API wire format (``/api/chat``, ``/api/generate``, ``/api/tags`` ...).

Shapes follow a real Ollama server as parsed by the ``ollama`` SDK: NDJSON streams (the default
when ``stream`` is absent) ending in a ``"done": true`` object with ``prompt_eval_count``,
``eval_count``, ``done_reason`` and nanosecond durations, and ``{"error": "..."}`` errors.

Beyond text, as Ollama does it:

* Requests: ``tools`` (OpenAI function form; Ollama has no ``tool_choice``), ``format`` (a JSON
  schema, or ``"json"``), ``think`` (``true``/``false``, or a level that only gpt-oss takes:
  other models get Ollama's 400 ``think value "low" is not supported for this model``),
  ``images`` (base64 strings beside the text: anything else gets Ollama's 400
  ``illegal base64 data at input byte N``, N found as Go's decoder finds it), tool turns
  ``{"role": "tool", "content", "tool_name"}``. Ollama refuses no conversation for a forgotten
  tool result or reasoning, so strict mode has nothing to add here.
* Replies: ``message.thinking``, then ``message.content``, then ``message.tool_calls`` (whole,
  ``{"id", "function": {"index", "name", "arguments": {object}}}``, all in one chunk) and the
  ``done: true`` object, whose ``done_reason`` stays ``"stop"`` after tool calls. A stream sends
  one line per reasoning piece and per text piece; the tool-call line goes out in several
  writes cut inside its arguments (the bytes are the same line), so ``truncate`` can end a
  stream in the middle of a call.

Body faults: Ollama shortens an over-long prompt silently by default (a 200 with a smaller
``prompt_eval_count``); with ``truncate: false`` (and for models whose template runs in its
llama-server runner) it answers 400 with the runner's llama.cpp body as a JSON string under
``error``, which ``context_length`` sends. ``unsupported_parameter`` is its 400 for ``think``
on a model without that capability (``"MODEL" does not support thinking``). Ollama has no
content filter: ``content_filter`` gets a normal answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from rlm_code.testing.faults import Fault
from rlm_code.testing.formats.openai import bearer_token
from rlm_code.testing.modes import DEFAULT_MODEL_CONTEXT, capabilities, context_limit
from rlm_code.testing.scripted import WireToolCall
from rlm_code.testing.text import split_pieces
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

__all__ = ["OLLAMA_VERSION", "OllamaFormat", "ollama_name"]

OLLAMA_VERSION = "0.12.6"
MODIFIED_AT = "2025-01-01T00:00:00Z"

# Ollama errors are a bare ``{"error": text}``: no type.
_ERRORS: dict[ErrorKind, ErrorSpec] = {
    "bad_request": ErrorSpec(400, "", "invalid request"),
    "auth_missing": ErrorSpec(401, "", "unauthorized"),
    "auth_invalid": ErrorSpec(401, "", "unauthorized"),
    "unauthorized": ErrorSpec(401, "", "unauthorized"),
    "not_found": ErrorSpec(404, "", 'model "{model}" not found, try pulling it first'),
    "rate_limit": ErrorSpec(429, "", "too many requests, please try again later"),
    "server_error": ErrorSpec(500, "", "llama runner process has terminated: exit status 2"),
    "unavailable": ErrorSpec(
        503, "", "server busy, please try again.  maximum pending requests exceeded"
    ),
}


def ollama_name(model: str) -> str:
    """Ollama's canonical model name: a missing tag means ``:latest``."""
    return model if ":" in model else model + ":latest"


class OllamaFormat(WireFormat):
    name = "ollama"
    stream_content_type = "application/x-ndjson"
    errors = _ERRORS

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer_token(headers)

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        return {"error": text}

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        if fault.mode == "context_length":
            requested, limit = fault.context_requested, fault.context_limit
            runner = {
                "error": {
                    "code": 400,
                    "message": f"request ({requested} tokens) exceeds the available context "
                    f"size ({limit} tokens), try increasing it",
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": requested,
                    "n_ctx": limit,
                }
            }
            return ErrorReply(400, {"error": dumps(runner).decode("utf-8")})
        if fault.mode == "unsupported_parameter":
            return ErrorReply(400, {"error": f'"{ollama_name(model)}" does not support thinking'})
        return None

    def malformed_frame(self) -> bytes:
        return b'{"model":"malformed","message":{"role":"assistant","content":\n'

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        data = require_object(body)
        model = required_text(data, "model", "model is required")
        texts: list[str] = []
        last_user = ""
        tool_results: tuple[str, ...] = ()
        if endpoint == "generate":
            system = data.get("system")
            if isinstance(system, str) and system:
                texts.append(system)
            prompt = data.get("prompt")
            last_user = prompt if isinstance(prompt, str) else ""
            texts.append(last_user)
            _check_images(data.get("images"), "GenerateRequest.images")
        else:
            messages = data.get("messages") or []
            if not isinstance(messages, list):
                raise WireError("bad_request", "invalid messages")
            texts, last_user = message_texts(messages, _plain_text, invalid="invalid message")
            for message in messages:
                _check_images(message.get("images"), "Message.messages.images")
            tool_results = _tool_results(messages)
        options = data.get("options")
        max_tokens = None
        if isinstance(options, dict):
            max_tokens = optional_int(options.get("num_predict"), "num_predict")
        return WireRequest(
            model=model,
            texts=tuple(texts),
            last_user_text=last_user,
            max_tokens=max_tokens,
            stream=data.get("stream", True) is not False,
            endpoint=endpoint,
            tools=_tools(data.get("tools")),
            schema=_schema(data.get("format")),
            reasoning=_think(data.get("think"), model),
            tool_results=tool_results,
        )

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        calls = completion.tool_calls
        answer = self._chunk(completion, completion.text, completion.reasoning or "")
        if calls and completion.request.endpoint != "generate":
            answer["message"]["tool_calls"] = [_call(call, i) for i, call in enumerate(calls)]
        answer.update(self._done(completion))
        return answer

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        thinking = completion.reasoning_pieces
        pieces = completion.pieces
        call_frames = self._call_frames(completion)
        content = self._content(completion, thinking, pieces, call_frames)
        tail: list[bytes] = []
        if terminate:
            final = self._chunk(completion, "")
            final.update(self._done(completion))
            tail.append(dumps(final) + b"\n")
        count = len(thinking) + len(pieces) + len(call_frames)
        return StreamPlan(head=(), content=content, piece_count=count, tail=tail)

    def _content(
        self,
        completion: WireReply,
        thinking: list[str],
        pieces: list[str],
        call_frames: list[bytes],
    ) -> Iterator[bytes]:
        """Reasoning lines, text lines, then the tool-call line in its pieces (made lazily)."""
        for piece in thinking:
            yield dumps(self._chunk(completion, "", piece, done=False)) + b"\n"
        for piece in pieces:
            yield dumps(self._chunk(completion, piece, done=False)) + b"\n"
        yield from call_frames

    def _call_frames(self, completion: WireReply) -> list[bytes]:
        """The one line holding every tool call, cut into writes inside the arguments: the
        opening up to and with the first argument piece, one write per further piece, then
        the rest of the line. Joined, the writes are exactly the line Ollama sends."""
        calls = completion.tool_calls
        if not calls or completion.request.endpoint == "generate":
            return []
        chunk = self._chunk(completion, "", done=False)
        marks = [f"\u0000rlm-arguments-{i}\u0000" for i in range(len(calls))]
        chunk["message"]["tool_calls"] = [
            _call(call, i, arguments=mark)
            for i, (call, mark) in enumerate(zip(calls, marks, strict=True))
        ]
        line = dumps(chunk) + b"\n"
        frames: list[bytes] = []
        current = b""
        for call, mark in zip(calls, marks, strict=True):
            before, _, line = line.partition(dumps(mark))
            text = dumps(_arguments(call)).decode("utf-8")
            parts = split_pieces(text)
            if "".join(parts) != text:
                parts = [text]
            current += before + parts[0].encode("utf-8")
            for part in parts[1:]:
                frames.append(current)
                current = part.encode("utf-8")
        frames.append(current)
        frames.append(line)
        return frames

    def render_tags(self, names: list[str]) -> JsonObject:
        return {"models": [self.render_tag(name) for name in names]}

    def render_tag(self, name: str) -> JsonObject:
        full = ollama_name(name)
        return {
            "name": full,
            "model": full,
            "modified_at": MODIFIED_AT,
            "size": 1_000_000 * (len(full) + 100),
            "digest": hashlib.sha256(full.encode()).hexdigest(),
            "details": _details(full),
        }

    def render_show(self, name: str) -> JsonObject:
        """`/api/show`: the trained context (a ``ctxN`` name part sets it) and the
        capabilities the name implies (`rlm_code.testing.modes`)."""
        family = _details(name)["family"]
        can = capabilities(name)
        listed = ["completion", *(c for c in ("tools", "vision", "thinking") if can[c])]
        return {
            "modelfile": f"FROM {ollama_name(name)}\n",
            "parameters": "",
            "template": "{{ .Prompt }}",
            "details": _details(name),
            "model_info": {
                "general.architecture": family,
                f"{family}.context_length": context_limit(name) or DEFAULT_MODEL_CONTEXT,
            },
            "capabilities": listed,
            "modified_at": MODIFIED_AT,
        }

    def _chunk(
        self, completion: WireReply, text: str, thinking: str = "", *, done: bool = True
    ) -> JsonObject:
        created = datetime.fromtimestamp(completion.created, UTC)
        chunk: JsonObject = {
            "model": completion.model,
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        }
        if completion.request.endpoint == "generate":
            chunk["response"] = text
            if thinking:
                chunk["thinking"] = thinking
        else:
            message: JsonObject = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            chunk["message"] = message
        chunk["done"] = done
        return chunk

    def _done(self, completion: WireReply) -> JsonObject:
        prompt_ns = 1_000_000 * max(1, completion.prompt_tokens)
        eval_ns = 10_000_000 * max(1, completion.completion_tokens)
        done: JsonObject = {
            "done_reason": "length" if completion.truncated else "stop",
            "total_duration": 1_000_000 + prompt_ns + eval_ns,
            "load_duration": 1_000_000,
        }
        if completion.usage:
            done["prompt_eval_count"] = completion.prompt_tokens
        done["prompt_eval_duration"] = prompt_ns
        if completion.usage:
            done["eval_count"] = completion.completion_tokens
        done["eval_duration"] = eval_ns
        return done


def _details(name: str) -> dict[str, Any]:
    base = name.split(":", 1)[0].split("/")[-1]
    family = "qwen2" if base.startswith("qwen") else "llama"
    return {
        "parent_model": "",
        "format": "gguf",
        "family": family,
        "families": [family],
        "parameter_size": "7.6B" if "7b" in name else "3.2B",
        "quantization_level": "Q4_K_M",
    }


def _plain_text(content: Any) -> str:
    """Ollama message content is a plain string (images go in a separate field)."""
    return content if isinstance(content, str) else ""


def _call(call: WireToolCall, index: int, *, arguments: object = None) -> JsonObject:
    """One tool call as Ollama sends it: an 8-character ``call_`` id, arguments an object."""
    return {
        "id": "call_" + call.id.removeprefix("call_")[:8],
        "function": {
            "index": index,
            "name": call.name,
            "arguments": _arguments(call) if arguments is None else arguments,
        },
    }


def _arguments(call: WireToolCall) -> object:
    """The arguments object; scripted text that is not JSON goes out as that text (a broken
    reply no real Ollama sends, for testing the client's typed error)."""
    return call.arguments if call.arguments is not None else call.arguments_json


def _tools(value: object) -> tuple[tuple[str, JsonObject], ...]:
    """The offered tools as (name, parameters), from OpenAI's function form."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise WireError("bad_request", "json: cannot unmarshal object into Go struct field .tools")
    tools = []
    for tool in value:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            parameters = function.get("parameters")
            tools.append((function["name"], parameters if isinstance(parameters, dict) else {}))
    return tuple(tools)


def _schema(value: object) -> JsonObject | None:
    """``format``: a JSON schema, or ``"json"`` (any JSON object)."""
    if isinstance(value, dict):
        return value
    if value == "json":
        return {"type": "object"}
    if value in (None, ""):
        return None
    raise WireError("bad_request", f"invalid format: {value!r}")


_LEVELS = ("high", "medium", "low")


def _think(value: object, model: str) -> bool:
    """Whether ``think`` asks for reasoning; Ollama's 400s for a value it does not take."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if not isinstance(value, str):
        raise WireError(
            "bad_request",
            'think must be a boolean or string ("high", "medium", "low", true, or false)',
        )
    if value not in _LEVELS:
        raise WireError(
            "bad_request",
            f'invalid think value: "{value}" (must be "high", "medium", "low", true, or false)',
        )
    if not model.rsplit("/", 1)[-1].startswith("gpt-oss"):
        raise WireError("bad_request", f'think value "{value}" is not supported for this model')
    return True


def _tool_results(messages: list[Any]) -> tuple[str, ...]:
    """The contents of the tool turns that end the conversation (none when a user spoke last)."""
    results: list[str] = []
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        results.append(content_text(message.get("content")))
    return tuple(reversed(results))


_GO_KINDS = {bool: "bool", int: "number", float: "number", str: "string", dict: "object"}
_BASE64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")


def _check_images(images: object, field: str) -> None:
    """Images are base64 strings; else the 400 Go's JSON decoder makes Ollama answer."""
    if images is None:
        return
    if not isinstance(images, list):
        kind = _GO_KINDS.get(type(images), "object")
        raise WireError(
            "bad_request",
            f"json: cannot unmarshal {kind} into Go struct field {field} of type []api.ImageData",
        )
    for image in images:
        if image is None:
            continue
        if not isinstance(image, str):
            kind = "array" if isinstance(image, list) else _GO_KINDS.get(type(image), "object")
            raise WireError(
                "bad_request",
                f"json: cannot unmarshal {kind} into Go struct field {field} of type api.ImageData",
            )
        at = _base64_error(image.encode("utf-8"))
        if at is not None:
            raise WireError("bad_request", f"illegal base64 data at input byte {at}")


def _base64_error(src: bytes) -> int | None:
    """Where Go's padded standard base64 decoder (``encoding/base64``) fails on ``src``, or
    None when it decodes: the offset of the first byte outside the alphabet, of a misplaced
    ``=``, or of an incomplete last quantum. Newlines are skipped, as Go does."""
    si, size = 0, len(src)
    while True:
        j = 0
        while j < 4:
            if si == size:
                return None if j == 0 else si - j
            byte = src[si]
            si += 1
            if byte in (10, 13):
                continue
            if byte in _BASE64:
                j += 1
                continue
            if byte != 61 or j < 2:  # not "=", or "=" too early in the quantum
                return si - 1
            if j == 2:  # "==" expected: the second "=" must follow
                while si < size and src[si] in (10, 13):
                    si += 1
                if si == size:
                    return size
                if src[si] != 61:
                    return si - 1
                si += 1
            while si < size and src[si] in (10, 13):
                si += 1
            return si if si < size else None
