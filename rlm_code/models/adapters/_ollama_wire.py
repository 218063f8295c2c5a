"""Ollama's `/api/chat` wire format beyond text: the request body and the reply's objects.

Request (`chat_payload`):

- Turns keep OpenAI's roles. Images travel beside the text, as `images: [base64, ...]`
  (Ollama takes inline data only: an `https://` image URL is refused before any I/O, because
  we never fetch URLs on the caller's behalf). An assistant turn sends back its `tool_calls`
  (`{"id", "function": {"name", "arguments": {object}}}`) and its reasoning as `thinking`; a
  tool turn is `{"role": "tool", "content", "tool_name", "tool_call_id"}` (older servers read
  `tool_name`, newer ones also `tool_call_id`; Ollama ignores fields it does not know).
- `tools` in OpenAI's function form. Ollama has no `tool_choice`: "auto" (or none given) lets
  the model decide, "none" sends no tools, and "required" or a named tool are refused
  (`UnsupportedParameterError`) rather than silently ignored.
- `format: <JSON schema>` for structured output.
- `think` for reasoning. gpt-oss takes a level ("low" / "medium" / "high"; a token budget maps
  to the nearest level), every other thinking model a boolean: Ollama answers a level sent to
  them with 400 `think value "low" is not supported for this model`, so they get `true`.
- `options.temperature`, `options.num_predict`, `options.stop` as before; `options.num_ctx`
  sized to a long prompt (`context_size`), because Ollama silently cuts a prompt longer than
  its context (4096 tokens by default on most machines) unless `num_ctx` says otherwise.

Reply (`ChatReader`): each `/api/chat` object (a whole reply, or one NDJSON line of a stream)
may carry `message.thinking` (reasoning), `message.content` (text) and `message.tool_calls`
(whole calls, arguments as an object; an `id` on newer servers, else one is made). Arguments
become `arguments_json` through `canonical_json`, so whole and streamed replies agree. The
`done: true` object carries `done_reason` and the counts `prompt_eval_count` (input) and
`eval_count` (output, thinking included; Ollama gives no separate reasoning count).
Content that opens with an inline `<think>...</think>` block is split into reasoning and
text (`_think`). A plain text line costs what it did before beyond text: one `len(message)`
check and one flag check.
"""

from __future__ import annotations

import json
from typing import Any

from rlm_code.core.exceptions import ResponseFormatError, UnsupportedParameterError
from rlm_code.models.adapters._think import ThinkSplitter
from rlm_code.models.adapters._tool_calls import ToolCallAssembler, canonical_json, new_call_id
from rlm_code.models.adapters.base import add_sampling, as_count
from rlm_code.models.adapters.errors import stream_error
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    ImagePart,
    Message,
    ReasoningDelta,
    StreamEnd,
    TextDelta,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

# -- request ------------------------------------------------------------------------------------

# Ollama's default context on a machine with less than 24 GiB of VRAM (docs:
# context-length); larger machines default to more, which only makes this cautious.
OLLAMA_DEFAULT_CONTEXT = 4096
# Room for the reply when the caller set no `max_tokens`.
REPLY_RESERVE = 1024


def takes_think_levels(model: str) -> bool:
    """Whether the model takes `think` as a level (gpt-oss) rather than a boolean."""
    return model.rsplit("/", 1)[-1].lower().startswith("gpt-oss")


def _turn(message: Message, index: int, provider: str) -> dict[str, Any]:
    """One turn in Ollama's shape (a plain text turn stays a two-key dict)."""
    entry: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.parts:
        images: list[str] = []
        for part in message.parts:
            if isinstance(part, ImagePart):
                if part.data is None:
                    raise UnsupportedParameterError(
                        f"{provider} (Ollama) takes images as inline base64 data only, and "
                        f"turn {index} has an image URL; rlm-code does not fetch URLs, so "
                        "pass the image as a data:image/...;base64 URL",
                        provider=provider,
                    )
                images.append(part.data)
        entry["images"] = images
    if message.tool_calls:
        entry["tool_calls"] = [
            {"id": call.id, "function": {"name": call.name, "arguments": call.arguments}}
            for call in message.tool_calls
        ]
    if message.reasoning:
        entry["thinking"] = message.reasoning
    if message.role == "tool":
        entry["tool_name"] = message.name or ""
        entry["tool_call_id"] = message.tool_call_id or ""
    return entry


def ollama_messages(request: ChatRequest, provider: str) -> list[dict[str, Any]]:
    """The system prompt first, then every turn in Ollama's shape."""
    messages = [
        _turn(m, i, provider)
        if m.parts or m.tool_calls or m.reasoning or m.role == "tool"
        else {"role": m.role, "content": m.content}
        for i, m in enumerate(request.messages)
    ]
    if request.system:
        messages.insert(0, {"role": "system", "content": request.system})
    return messages


def _add_beyond_text(payload: dict[str, Any], request: ChatRequest, provider: str) -> None:
    """Tools, structured output and reasoning under Ollama's names (refusing what it lacks)."""
    choice = request.tool_choice
    if choice in ("required", "tool"):
        what = "'required'" if choice == "required" else f"naming the tool {request.forced_tool!r}"
        raise UnsupportedParameterError(
            f"tool_choice {what} is not supported by {provider}: Ollama's /api/chat has no "
            "tool_choice (the model decides); use 'auto' or 'none'",
            provider=provider,
        )
    if request.tools and choice != "none":
        payload["tools"] = [
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
    if request.response_format is not None:
        payload["format"] = request.response_format.schema
    if request.reasoning is not None:
        levels = takes_think_levels(request.model)
        payload["think"] = request.reasoning.effort_word() if levels else True


def context_size(high: int, max_tokens: int | None, window: int | None) -> int | None:
    """The `num_ctx` to send for a prompt estimated at `high` tokens (see
    `rlm_code.models.profiles.estimate_tokens`), or None to leave Ollama's own.

    Ollama cuts a prompt longer than its context (`OLLAMA_DEFAULT_CONTEXT` unless configured)
    without an error, so a prompt that could come near it gets a `num_ctx` that holds the
    prompt plus the reply (`max_tokens`, else `REPLY_RESERVE`). It is rounded up to a power of
    two, because Ollama reloads the model whenever `num_ctx` changes: conversations that grow
    step through a few sizes instead of reloading on every turn. Capped at the model's
    `window` when it is known. Smaller prompts send nothing, so a server configured with a
    larger default context keeps it."""
    needed = high + (max_tokens or REPLY_RESERVE)
    if needed <= OLLAMA_DEFAULT_CONTEXT:
        return None
    size = 1 << (needed - 1).bit_length()
    return min(size, window) if window else size


def chat_payload(
    request: ChatRequest, stream: bool, provider: str = "ollama", num_ctx: int | None = None
) -> dict[str, Any]:
    """The `/api/chat` body; `UnsupportedParameterError` (before any I/O) for what Ollama
    cannot do. `num_ctx`: the context size to ask for (`context_size`)."""
    payload: dict[str, Any] = {
        "model": request.model,
        "messages": ollama_messages(request, provider),
        "stream": stream,
    }
    if request.tools or request.tool_choice or request.response_format or request.reasoning:
        _add_beyond_text(payload, request, provider)
    options = add_sampling({}, request.params, "num_predict", "stop")
    if num_ctx is not None:
        options["num_ctx"] = num_ctx
    if options:
        payload["options"] = options
    return payload


# -- reply --------------------------------------------------------------------------------------


def _fail_if_error(data: dict[str, Any], provider: str) -> None:
    if "error" in data:  # typed by what it says (a context error in the middle of a stream)
        raise stream_error(provider, json.dumps({"error": data.get("error")}), "failed")


def _bad(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(f"{provider} sent {what}", provider=provider)


class ChatReader:
    """The `/api/chat` objects of one reply -> its events.

    One reader per reply: a stream's tool calls are numbered across its lines. Calls arrive
    whole, each as one `ToolCallDelta` (its whole arguments); their `ToolCallDone`s (parsed:
    a call without a name or with arguments that are not an object is a
    `ResponseFormatError`) come with the `done: true` object, so a stream cut off before its
    end never hands the caller a finished call, only the typed error.

    Content that opens with an inline `<think>` block (a reasoning model on an Ollama that
    does not parse its thinking: older servers, or templates without thinking support) is
    split by `ThinkSplitter` into reasoning and text, the same in whole replies and streams.
    Content that does not open with the tag is text, byte for byte; once that is known the
    splitter is dropped, so later lines cost nothing more."""

    __slots__ = ("_calls", "_count", "_plain", "_provider", "_think")

    def __init__(self, provider: str) -> None:
        self._provider = provider
        self._calls: ToolCallAssembler | None = None
        self._count = 0
        self._plain = False  # known: the content opens with no think block
        self._think: ThinkSplitter | None = None  # made if the content may open with one

    def events(self, data: Any) -> list[AdapterEvent]:
        """One object's events: reasoning, text, tool calls; when `done`, counts and the end."""
        provider = self._provider
        if not isinstance(data, dict):
            raise _bad(provider, "a non-object chat answer")
        _fail_if_error(data, provider)
        message = data.get("message")
        events: list[AdapterEvent] = []
        if isinstance(message, dict):
            text = message.get("content", "")
            if not isinstance(text, str):
                raise _bad(provider, "non-text content")
            extra = len(message) > 2  # more than role and content: thinking or tool calls
            if extra and (thinking := message.get("thinking")):
                if not isinstance(thinking, str):
                    raise _bad(provider, "non-text thinking")
                events.append(ReasoningDelta(thinking))
            if text:
                if self._plain:
                    events.append(TextDelta(text))
                else:
                    self._split(text, events)
            if extra and (calls := message.get("tool_calls")):
                events += self._tool_calls(calls)
        if data.get("done") is True:
            if self.pending:
                events += self.finish()
            usage = Usage(as_count(data.get("prompt_eval_count")), as_count(data.get("eval_count")))
            if usage.known:
                events.append(UsageReport(usage))
            reason = data.get("done_reason")
            raw = reason if isinstance(reason, str) else None
            events.append(StreamEnd(normalize_finish_reason(raw), raw))
        return events

    def _split(self, text: str, events: list[AdapterEvent]) -> None:
        """Content while it may still open with a think block (the first piece decides at
        once unless it starts with whitespace or `<`)."""
        splitter = self._think
        if splitter is None:
            if text[0] != "<" and not text[0].isspace():
                self._plain = True
                events.append(TextDelta(text))
                return
            splitter = self._think = ThinkSplitter()
        reasoning, rest = splitter.feed(text)
        if splitter.passthrough:
            self._plain, self._think = True, None
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        if rest:
            events.append(TextDelta(rest))

    @property
    def pending(self) -> bool:
        """Whether content is held back (a possible `<think>` tag) or tool calls are open."""
        return self._think is not None or (self._calls is not None and bool(self._calls))

    def finish(self) -> list[AdapterEvent]:
        """What is still held at the end of the reply: content kept back by the `<think>`
        splitter, then the `ToolCallDone`s of the calls not finished yet, in order."""
        events: list[AdapterEvent] = []
        if self._think is not None:
            reasoning, text = self._think.finish()
            self._plain, self._think = True, None
            if reasoning:
                events.append(ReasoningDelta(reasoning))
            if text:
                events.append(TextDelta(text))
        if self._calls is not None:
            events += self._calls.finish()
        return events

    def _tool_calls(self, calls: object) -> list[AdapterEvent]:
        provider = self._provider
        if not isinstance(calls, list):
            raise _bad(provider, "tool_calls that are not a list")
        if self._calls is None:
            self._calls = ToolCallAssembler(provider)
        assembler = self._calls
        events: list[AdapterEvent] = []
        for item in calls:
            function = item.get("function") if isinstance(item, dict) else None
            if not isinstance(function, dict):
                raise _bad(provider, "a tool call without a function")
            call_id = item.get("id")
            if not isinstance(call_id, str) or not call_id:
                call_id = new_call_id()  # older servers give none
            name = function.get("name")
            arguments = function.get("arguments", {})
            text = arguments if isinstance(arguments, str) else canonical_json(arguments)
            index = self._count
            self._count += 1
            events.append(
                assembler.add(index, call_id, name if isinstance(name, str) else None, text)
            )
        return events


def parse_message(data: Any, provider: str) -> list[AdapterEvent]:
    """One `/api/chat` object read on its own (a whole reply): its events, its tool calls
    finished even if the object lacks `done: true`."""
    reader = ChatReader(provider)
    events = reader.events(data)
    return events + reader.finish() if reader.pending else events
