"""OpenAI-compatible chat completions over raw HTTP: every cloud host and local server that
speaks `/v1/chat/completions` (vLLM, LM Studio, SGLang, TGI, MLX, llama.cpp, OpenRouter,
Groq, DeepSeek, ...).

No SDK: `httpx2` for blocking calls and `aiohttp` for async ones, so this path stays within a
few percent of a bare HTTP client. Streams ask for usage (`stream_options.include_usage`)
where the model's profile says the host takes it (Mistral refuses it with a 422 and sends
usage unasked; see `rlm_code.models.profiles` for the parameter policy), and must end with
`data: [DONE]`; a stream that stops without it raises, because the reply
may be incomplete. Streams are parsed by the SSE rules (`_lines.SSEDecoder`).

Usage buckets: `prompt_tokens` includes cached prompt tokens, reported as
`prompt_tokens_details.cached_tokens` (OpenAI and most hosts) or `prompt_cache_hit_tokens`
(DeepSeek); they are moved to `cache_read_tokens` and subtracted from the input count.
`completion_tokens_details.reasoning_tokens` is the reasoning part of the output (xAI counts
it apart from `completion_tokens`, which its `total_tokens` shows; it is added back). A cost
the host reports itself (OpenRouter's `usage.cost`, xAI's `cost_in_usd_ticks`) becomes
`Usage.reported_cost_usd`.

Beyond text (requests are built by `_openai_wire`):

- Tool calls: whole replies carry `message.tool_calls`; streams send
  `choices[0].delta.tool_calls[i]` pieces keyed by `index` (`id`, `type` and `function.name`
  on the first piece, then `function.arguments` fragments), closed together when the
  `finish_reason` arrives (or at `[DONE]`). Servers differ, so this is tolerant: a call sent
  whole in one delta, an `id` repeated on every piece (vLLM), a piece with only `type`
  (older llama.cpp), arguments sent as an object, a missing `index` (the piece's place in
  the list, or a new call when it brings a new id).
  Arguments that do not parse are a typed `ResponseFormatError`, never a half-parsed call.
- Reasoning: the `reasoning_content` field (DeepSeek, vLLM < 0.9, llama.cpp, SGLang) or the
  `reasoning` field (OpenRouter, Groq, newer vLLM) of `message` / `delta`. Its text is also
  kept as a replay detail (`_openai_wire.replay_detail`), so the next turn sends it back.
  Local servers (`spec.is_local`) may instead write `<think>...</think>` at the start of the
  content: that block is split off as reasoning (`_think`), and only when the content starts
  with it, so an ordinary reply that mentions the tag is left alone.

The key is optional: without one no `Authorization` header is sent
(OpenCode's keyless mode, local servers).
"""

from __future__ import annotations

import json
import math
from typing import Any, NamedTuple

from rlm_code.core.exceptions import (
    ModelError,
    ModelTimeoutError,
    ProviderConnectionError,
    ResponseFormatError,
)
from rlm_code.models.adapters._lines import SSEDecoder, SSEEvent, loads
from rlm_code.models.adapters._openai_wire import (
    REASONING_FIELDS,
    chat_payload,
    replay_detail,
)
from rlm_code.models.adapters._profile_probe import probe
from rlm_code.models.adapters._think import ThinkSplitter, split_think, starts_with_think
from rlm_code.models.adapters._tool_calls import ToolCallAssembler, canonical_json, tool_call
from rlm_code.models.adapters.base import Adapter, as_count
from rlm_code.models.adapters.errors import stream_error
from rlm_code.models.adapters.http_adapter import HTTPAdapter
from rlm_code.models.profiles import check_parameters
from rlm_code.models.providers.model_profiles import LOCAL_PROBES
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    ReasoningDelta,
    ReplayDetail,
    Response,
    StreamEnd,
    TextDelta,
    ToolCall,
    Usage,
    UsageReport,
    normalize_finish_reason,
)

_DONE = b"[DONE]"


def _shape_error(provider: str, what: str) -> ResponseFormatError:
    return ResponseFormatError(
        f"{provider} sent a chat completion without {what}",
        provider=provider,
        hint="The server may not be OpenAI-compatible; check the base URL.",
    )


def usage_counts(usage: Any) -> Usage:
    """A chat-completions `usage` object (a dict) -> normalised `Usage` (see the docstring)."""
    if not isinstance(usage, dict):
        return Usage()
    prompt = as_count(usage.get("prompt_tokens"))
    details = usage.get("prompt_tokens_details")
    cached = as_count(details.get("cached_tokens")) if isinstance(details, dict) else None
    if cached is None:
        cached = as_count(usage.get("prompt_cache_hit_tokens"))
    out = usage.get("completion_tokens_details")
    reasoning = as_count(out.get("reasoning_tokens")) if isinstance(out, dict) else None
    completion = as_count(usage.get("completion_tokens"))
    if completion is not None and reasoning and prompt is not None:
        # xAI counts reasoning apart from `completion_tokens` (its total is prompt +
        # completion + reasoning); OpenAI and the others inside it. The total tells which.
        total = usage.get("total_tokens")
        if total == prompt + completion + reasoning and total != prompt + completion:
            completion += reasoning
    if prompt is not None and cached is not None:
        cached = min(cached, prompt)
        prompt -= cached
    return Usage(prompt, completion, cached, None, reasoning, None, reported_cost(usage))


def reported_cost(usage: dict[str, Any]) -> float | None:
    """The call's cost in dollars as the host reports it: xAI's `cost_in_usd_ticks` (1e10
    ticks to the dollar); OpenRouter's `usage.cost` (credits of one dollar; with a key of your
    own, `is_byok`, that is only OpenRouter's fee and the provider's own charge is
    `cost_details.upstream_inference_cost`, so the two add up)."""
    ticks = usage.get("cost_in_usd_ticks")
    if isinstance(ticks, int) and not isinstance(ticks, bool) and ticks >= 0:
        return ticks / 1e10
    cost = _dollars(usage.get("cost"))
    if cost is not None and usage.get("is_byok") is True:
        details = usage.get("cost_details")
        upstream = (
            _dollars(details.get("upstream_inference_cost")) if isinstance(details, dict) else None
        )
        if upstream is None:
            return None  # the fee alone is not what the call cost
        cost += upstream
    return cost


def _dollars(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


class Parsed(NamedTuple):
    """A whole chat completion: text, usage, the provider's finish reason, tool calls,
    reasoning and the replay details for the next turn."""

    text: str
    usage: Usage
    finish_reason: str | None
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: str | None = None
    reasoning_details: tuple[dict[str, Any], ...] = ()


def _field_reasoning(container: dict[str, Any], provider: str) -> tuple[str | None, str]:
    """(the field the reasoning came in, its text) of a `message` or `delta`: the first of
    `reasoning_content` and `reasoning` that holds text; (None, "") when neither does."""
    for field in REASONING_FIELDS:
        value = container.get(field)
        if value:
            if not isinstance(value, str):
                raise _shape_error(provider, f"text in its {field} field")
            return field, value
    return None, ""


def _arguments(value: object, provider: str) -> str:
    """A call's `function.arguments`: the JSON text (an object some servers send is written
    back as text, the same way in whole and streamed replies)."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, dict):
        return canonical_json(value)
    raise _shape_error(provider, "tool call arguments as text")


def _whole_calls(raw: object, provider: str) -> tuple[ToolCall, ...]:
    if not raw:
        return ()
    if not isinstance(raw, list):
        raise _shape_error(provider, "a list of tool calls")
    calls = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            raise _shape_error(provider, "a function in each tool call")
        call_id = item.get("id")
        arguments = _arguments(function.get("arguments"), provider)
        calls.append(
            tool_call(
                provider,
                call_id if isinstance(call_id, str) else None,
                function.get("name"),
                arguments,
            )
        )
    return tuple(calls)


def parse_completion(data: Any, provider: str, think: bool = False) -> Parsed:
    """A `chat.completion` object -> `Parsed`. `think`: split a leading `<think>` block off
    the content as reasoning (local servers)."""
    if not isinstance(data, dict):
        raise _shape_error(provider, "a JSON object")
    if "error" in data and "choices" not in data:
        raise stream_error(provider, json.dumps(data), "returned an error")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise _shape_error(provider, "choices")
    message = choices[0].get("message")
    if not isinstance(message, dict):
        message = {}
    text = message.get("content")
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise _shape_error(provider, "text content")
    field, reasoning = _field_reasoning(message, provider)
    if think and starts_with_think(text):
        inline, text = split_think(text)
        reasoning += inline
    reason = choices[0].get("finish_reason")
    return Parsed(
        text,
        usage_counts(data.get("usage")),
        reason if isinstance(reason, str) else None,
        _whole_calls(message.get("tool_calls"), provider),
        reasoning or None,
        (replay_detail(field, message[field]),) if field else (),
    )


class ChatEvents:
    """Chat-completion server-sent events -> our events, one `event(sse)` at a time: what the
    `openai` SDK adapter's loop (which splits the SSE itself) feeds. `done` once
    `data: [DONE]` arrived.

    A text delta costs what it did before tool calls existed: a delta that is only
    `{"content": ...}` is not searched for reasoning or tool calls, and the `<think>` splitter
    (local servers) is dropped as soon as the content shows it has no think block."""

    __slots__ = (
        "_call_ids",
        "_field",
        "_field_parts",
        "_provider",
        "_think",
        "_tools",
        "done",
        "finish_reason",
    )

    def __init__(self, provider: str, think: bool = False) -> None:
        self._provider = provider
        self.finish_reason: str | None = None
        self.done = False
        self._think: ThinkSplitter | None = ThinkSplitter() if think else None
        self._tools: ToolCallAssembler | None = None
        self._call_ids: dict[int, str] = {}  # index -> id of each call seen
        self._field: str | None = None  # the field the reasoning comes in
        self._field_parts: list[str] = []

    def event(self, sse: SSEEvent) -> list[AdapterEvent]:
        provider = self._provider
        if sse.event == "error":
            raise stream_error(provider, sse.data)
        payload = sse.data
        if len(payload) < 16:  # only short payloads can be the end marker or blank
            payload = payload.strip()
            if payload == _DONE:
                self.done = True
                raw = self.finish_reason
                closing = self._close()
                closing.append(StreamEnd(normalize_finish_reason(raw), raw))
                return closing
            if not payload:
                return []
        event = loads(payload, provider)
        if not isinstance(event, dict):
            raise _shape_error(provider, "a JSON object in the stream")
        events: list[AdapterEvent] = []
        choices = event.get("choices")
        if choices:
            choice = choices[0] if isinstance(choices, list) else None
            if not isinstance(choice, dict):
                raise _shape_error(provider, "choices in the stream")
            delta = choice.get("delta")
            if delta.__class__ is dict:
                text = delta.get("content")
                if text.__class__ is not str and text is not None:
                    raise _shape_error(provider, "text in the stream")
                # Only a delta with more than its text can carry reasoning or tool calls.
                more = text is None or len(delta) > 1
                if more:
                    self._reasoning(delta, events)
                if text:
                    if self._think is None:
                        events.append(TextDelta(text))
                    else:
                        self._split(text, events)
                if more and delta.get("tool_calls"):
                    self._tool_pieces(delta["tool_calls"], events)
            reason = choice.get("finish_reason")
            if isinstance(reason, str):
                self.finish_reason = reason
                events += self._close()
        elif "error" in event:
            raise stream_error(provider, json.dumps(event))
        usage = event.get("usage")
        if usage and isinstance(usage, dict):
            counts = usage_counts(usage)
            if counts.known:
                events.append(UsageReport(counts))
        return events

    def _reasoning(self, delta: dict[str, Any], events: list[AdapterEvent]) -> None:
        field, text = _field_reasoning(delta, self._provider)
        if field is not None:
            if self._field is None:
                self._field = field
            self._field_parts.append(text)
            events.append(ReasoningDelta(text))

    def _split(self, text: str, events: list[AdapterEvent]) -> None:
        splitter = self._think
        assert splitter is not None
        reasoning, text = splitter.feed(text)
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        if text:
            events.append(TextDelta(text))
        if splitter.passthrough:
            self._think = None  # plain text from here on

    def _tool_pieces(self, pieces: object, events: list[AdapterEvent]) -> None:
        provider = self._provider
        if not isinstance(pieces, list):
            raise _shape_error(provider, "a list of tool calls in the stream")
        if self._tools is None:
            self._tools = ToolCallAssembler(provider)
        ids = self._call_ids
        for position, piece in enumerate(pieces):
            if not isinstance(piece, dict):
                raise _shape_error(provider, "tool call pieces as objects")
            call_id = piece.get("id")
            call_id = call_id if isinstance(call_id, str) and call_id else None
            index = piece.get("index")
            if isinstance(index, bool) or not isinstance(index, int):
                # No index: the piece's place in the list, unless it names a new call there.
                index = position
                known = ids.get(index)
                if call_id and known and known != call_id:
                    index = max(ids) + 1
            if call_id:
                ids[index] = call_id
            function = piece.get("function")
            if function is None:
                function = {}
            elif not isinstance(function, dict):
                raise _shape_error(provider, "a function in each tool call piece")
            name = function.get("name")
            name = name if isinstance(name, str) and name else None
            fragment = _arguments(function.get("arguments"), provider)
            if call_id or name or fragment:  # a piece with only `type` says nothing
                events.append(self._tools.add(index, call_id, name, fragment))

    def _close(self) -> list[AdapterEvent]:
        """The end of the reply (its finish reason, or `[DONE]`): what the `<think>`
        splitter held back, every open tool call, and the reasoning field to replay."""
        events: list[AdapterEvent] = []
        if self._think is not None:
            self._split_end(events)
        if self._tools:
            events += self._tools.finish()
        if self._field is not None:
            text = "".join(self._field_parts)
            events.append(ReplayDetail(replay_detail(self._field, text)))
            self._field, self._field_parts = None, []
        return events

    def _split_end(self, events: list[AdapterEvent]) -> None:
        assert self._think is not None
        reasoning, text = self._think.finish()
        self._think = None
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        if text:
            events.append(TextDelta(text))


class ChatStreamParser(ChatEvents):
    """A chat-completions SSE stream as raw body bytes (`feed(chunk)`) -> events."""

    __slots__ = ("_sse",)

    def __init__(self, provider: str, think: bool = False) -> None:
        super().__init__(provider, think)
        self._sse = SSEDecoder(provider)

    def feed(self, chunk: bytes) -> list[AdapterEvent]:
        events: list[AdapterEvent] = []
        for sse in self._sse.feed(chunk):
            events += self.event(sse)
            if self.done:
                break
        return events

    def end(self) -> list[AdapterEvent]:
        return []


def reply_of(adapter: Adapter, request: ChatRequest, parsed: Parsed) -> Response:
    """The `Response` of a parsed whole reply (shared with the `openai` SDK adapter)."""
    return adapter.reply(
        request,
        parsed.text,
        parsed.usage,
        parsed.finish_reason,
        tool_calls=list(parsed.tool_calls),
        reasoning=parsed.reasoning,
        reasoning_details=list(parsed.reasoning_details),
    )


class OpenAICompatibleAdapter(HTTPAdapter):
    adapter_type = "openai_compatible"
    chat_path = "/chat/completions"
    end_marker = "data: [DONE]"

    def payload(self, request: ChatRequest, stream: bool) -> dict[str, Any]:
        spec = self.endpoint.spec
        profile = self.call_profile()
        check_parameters(request, profile, spec.provider_id)
        usage = profile.stream_usage == "stream_options"
        return chat_payload(request, stream, spec.provider_id, spec.reasoning_param, usage)

    def probe_profile(self) -> dict[str, Any]:
        """A local server's own figures (`_profile_probe`); cloud hosts are not probed."""
        e = self.endpoint
        kind = LOCAL_PROBES.get(e.provider_id) if e.spec.is_local else None
        return probe(kind, self._sync, e.model, e.timeouts.connect)

    def parse_reply(self, request: ChatRequest, data: Any) -> Response:
        spec = self.endpoint.spec
        return reply_of(self, request, parse_completion(data, spec.provider_id, spec.is_local))

    def stream_parser(self) -> ChatStreamParser:
        spec = self.endpoint.spec
        return ChatStreamParser(spec.provider_id, spec.is_local)

    def check(self) -> str:
        """Local servers are asked for `/models` once, briefly, so a stopped server fails at
        connect time; cloud hosts are not contacted (their first call reports problems)."""
        if self.endpoint.spec.is_local:
            probe = min(3.0, self.endpoint.timeouts.connect, self.endpoint.timeouts.read)
            try:
                self._sync.request_json("GET", "/models", timeout=probe, retry=False)
            except (ProviderConnectionError, ModelTimeoutError):
                raise
            except ModelError:
                pass  # it answered: some servers have no /models or want a key there
        return self.endpoint.model

    def list_models(self) -> list[str]:
        data = self._sync.request_json("GET", "/models")
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list):
            raise _shape_error(self.endpoint.provider_id, "a model list")
        return [
            item["id"]
            for item in items
            if isinstance(item, dict) and isinstance(item.get("id"), str)
        ]
