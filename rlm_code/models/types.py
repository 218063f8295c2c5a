"""Plain value types passed between the caller, the connector and its adapters.

A call goes down as a `ChatRequest` and comes back as a `Response` (whole calls) or as a
stream of typed events (streamed calls):

- `TextDelta(text)`: a piece of the reply's text.
- `ReasoningDelta(text)`: a piece of the model's reasoning ("thinking"), kept apart from text.
- `ToolCallDelta(index, id, name, arguments_fragment)`: a piece of the `index`-th tool call as
  it arrives (`id` and `name` on its first piece at least; the fragments join to
  `arguments_json`). `ToolCallDone(tool_call)` follows once that call is whole and parsed.
- `UsageReport(usage)`: token counts so far. Later reports refine earlier ones bucket by
  bucket (Anthropic sends input tokens first and output tokens last), so a stream stopped
  early still records what was received.
- `StreamEnd(finish_reason)`: the provider's end marker arrived (`[DONE]`, `message_stop`,
  Ollama's `done`). Adapters yield it; a stream without it was cut off.
- `ReplayDetail(detail)` (adapter-internal, like `StreamEnd`): provider data the next turn must
  send back (an Anthropic thinking block with its signature, ...); it ends up in
  `Response.reasoning_details` and so in `Response.message`.
- `Finished(response)`: the last event a `ResponseStream` hands to the caller, carrying the
  whole `Response` built from the events before it.

A token count of `None` means the provider did not say: it is never guessed and never counted
as 0. Every type here is a frozen, slotted dataclass: cheap to build on a hot path and safe to
share between threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any, Literal

ROLES = ("system", "user", "assistant")  # roles of the string methods' conversation_history
MESSAGE_ROLES = ("system", "user", "assistant", "tool")  # roles of `messages=`

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]
CostSource = Literal["provider", "price-table", "local"]
FINISH_REASONS: tuple[FinishReason, ...] = (
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "other",
)


@dataclass(frozen=True, slots=True)
class TextPart:
    """A text part of a message's content."""

    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image in a message's content: a `https://` URL, or inline bytes from a `data:` URL
    (`media_type` like `image/png`, `data` the base64 text, checked when the request is built)."""

    url: str | None = None
    media_type: str | None = None
    data: str | None = None


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool the model asks to call.

    `arguments_json` is the exact string the model sent; `arguments` is it parsed (always a
    dict). Where the provider gives no id (Gemini, Ollama) the adapter makes a unique one.
    `extra` is provider data that must travel back with the call on the next turn (Gemini's
    thought signature as `{"google": {"thought_signature": ...}}`, the shape Google's own
    OpenAI-compatible endpoint uses); None for most providers.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    arguments_json: str
    extra: dict[str, Any] | None = None

    def to_message(self) -> dict[str, Any]:
        """The OpenAI chat-style `tool_calls` entry for this call."""
        entry: dict[str, Any] = {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments_json},
        }
        if self.extra:
            entry["extra_content"] = self.extra
        return entry


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn, validated (see `prompting.build_chat_request`).

    `content` is the text of the turn (text parts joined); `parts` is set only when the turn
    has images (then it holds every part in order). An assistant turn may carry
    `tool_calls`, its `reasoning` text and `reasoning_details` (provider blocks to replay,
    each a dict with a `type`; an adapter sends back the ones it knows and ignores the rest).
    A tool turn carries `tool_call_id` and, looked up from the call it answers, `name`.
    """

    role: str
    content: str
    parts: tuple[ContentPart, ...] | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    reasoning: str | None = None
    reasoning_details: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """A tool the model may call: name, description and JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """Structured output: the reply must be JSON valid against `schema`."""

    name: str
    schema: dict[str, Any]
    strict: bool = True


@dataclass(frozen=True, slots=True)
class ReasoningSetting:
    """How much the model should reason: an `effort` word or a `budget_tokens` count (one)."""

    effort: Literal["low", "medium", "high"] | None = None
    budget_tokens: int | None = None

    def budget(self, low: int = 1024, medium: int = 4096, high: int = 16384) -> int:
        """A token budget for APIs that take one: the budget, or the effort as tokens."""
        if self.budget_tokens is not None:
            return self.budget_tokens
        return {"low": low, "medium": medium, "high": high}[self.effort or "medium"]

    def effort_word(self) -> Literal["low", "medium", "high"]:
        """An effort word for APIs that take one (a budget maps to the nearest word)."""
        if self.effort is not None:
            return self.effort
        budget = self.budget_tokens or 0
        return "low" if budget <= 2048 else "medium" if budget <= 8192 else "high"


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call, normalised so each bucket means the same on every provider.

    - `input_tokens`: prompt tokens billed at the normal input rate, *excluding* cache reads
      and cache writes. (OpenAI and Gemini report cached tokens inside their prompt count;
      adapters subtract them. Anthropic already reports them apart.)
    - `output_tokens`: every generated token, reasoning included (as all providers bill them).
    - `cache_read_tokens`, `cache_write_tokens`: prompt tokens read from / written to the
      provider's prompt cache.
    - `reasoning_tokens`: the part of `output_tokens` spent on reasoning (informational).
    - `cache_write_1h_tokens`: the part of `cache_write_tokens` written with Anthropic's
      1-hour lifetime (billed higher than the 5-minute writes).

    Each is None when the provider did not say.

    Cost: `cost_usd` and `cost_source` are worked out on first access (so the price table
    loads only when someone asks): `"provider"` when the provider reported the cost itself
    (`reported_cost_usd`, e.g. OpenRouter's `usage.cost`), `"local"` (0 dollars) for a local
    server, `"price-table"` from `genai-prices`, or None and None when the model has no known
    price — never a guessed 0. A `Response` tells its usage which provider and model to price.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_write_1h_tokens: int | None = None
    reported_cost_usd: float | None = None
    # Set by `Response` (provider id, model): what to price. Not part of equality.
    priced_as: tuple[str, str] | None = field(default=None, compare=False, repr=False)
    _cost: tuple[float | None, CostSource | None] | None = field(
        default=None, init=False, compare=False, repr=False
    )

    @property
    def cost_usd(self) -> float | None:
        """The call's cost in US dollars, or None when unknown (see the class docstring)."""
        return self.cost[0]

    @property
    def cost_source(self) -> CostSource | None:
        """Where `cost_usd` came from: "provider", "price-table", "local", or None."""
        return self.cost[1]

    @property
    def cost(self) -> tuple[float | None, CostSource | None]:
        """(`cost_usd`, `cost_source`), worked out once."""
        cost = self._cost
        if cost is None:
            from rlm_code.models.cost import price_usage

            cost = price_usage(self)
            object.__setattr__(self, "_cost", cost)
        return cost

    @property
    def known(self) -> bool:
        """Whether the provider reported any count at all."""
        return self.input_tokens is not None or self.output_tokens is not None

    @property
    def prompt_tokens(self) -> int | None:
        """Every prompt token (input plus cache reads and writes): the spec's `prompt_tokens`."""
        if self.input_tokens is None:
            return None
        return self.input_tokens + (self.cache_read_tokens or 0) + (self.cache_write_tokens or 0)

    @property
    def total_tokens(self) -> int | None:
        prompt = self.prompt_tokens
        if prompt is None and self.output_tokens is None:
            return None
        return (prompt or 0) + (self.output_tokens or 0)

    def merged(self, newer: Usage) -> Usage:
        """This usage updated with every bucket `newer` knows."""
        return Usage(
            self.input_tokens if newer.input_tokens is None else newer.input_tokens,
            self.output_tokens if newer.output_tokens is None else newer.output_tokens,
            self.cache_read_tokens if newer.cache_read_tokens is None else newer.cache_read_tokens,
            self.cache_write_tokens
            if newer.cache_write_tokens is None
            else newer.cache_write_tokens,
            self.reasoning_tokens if newer.reasoning_tokens is None else newer.reasoning_tokens,
            self.cache_write_1h_tokens
            if newer.cache_write_1h_tokens is None
            else newer.cache_write_1h_tokens,
            self.reported_cost_usd if newer.reported_cost_usd is None else newer.reported_cost_usd,
        )

    def for_call(self, provider: str, model: str) -> Usage:
        """This usage, to be priced as `provider`/`model` (a copy when it was already bound
        to another call)."""
        bound = self.priced_as
        if bound is None:
            object.__setattr__(self, "priced_as", (provider, model))
            return self
        if bound == (provider, model):
            return self
        copy = replace(self, priced_as=(provider, model))
        return copy


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Optional sampling and call settings, mapped to each provider's own names.

    `timeout` bounds the whole call: connecting, waiting and reading the reply."""

    temperature: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    timeout: float | None = None


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """What an adapter sends: the model, the system prompt apart, then the turns, and the
    optional tools, tool choice, structured output and reasoning settings.

    `tool_choice` is None (the provider's default), "auto", "none", "required" or "tool"
    (then `forced_tool` names the one tool the model must call)."""

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: Literal["auto", "none", "required", "tool"] | None = None
    forced_tool: str | None = None
    response_format: ResponseFormat | None = None
    reasoning: ReasoningSetting | None = None


@dataclass(frozen=True, slots=True)
class Response:
    """One model reply: its text, tool calls, reasoning, why it stopped, and its usage.

    `finish_reason` is normalised (`"stop"`, `"length"`, `"tool_calls"`, `"content_filter"`,
    `"other"`); `raw_finish_reason` is the provider's own word for it. A stream that was cut
    off or left early has `complete=False`. `reasoning_details` holds the provider blocks the
    next turn must send back (see `message`).
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | None = None
    provider: str = ""
    model: str = ""
    raw_finish_reason: str | None = None
    reasoning: str | None = None
    complete: bool = True
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning_details: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.provider:  # the usage is priced as this reply's provider and model
            usage = self.usage.for_call(self.provider, self.model)
            if usage is not self.usage:
                object.__setattr__(self, "usage", usage)

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to `messages` for the next turn.

        OpenAI chat-style, plus what the provider needs replayed: `tool_calls` (with Gemini's
        thought signatures in `extra_content`), `reasoning` (the text) and
        `reasoning_details` (Anthropic thinking blocks with their signatures, a server's
        `reasoning_content` field, ...). Every adapter reads this shape back, so a tool loop
        needs no provider-specific code."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = [call.to_message() for call in self.tool_calls]
        if self.reasoning is not None:
            message["reasoning"] = self.reasoning
        if self.reasoning_details:
            message["reasoning_details"] = [dict(d) for d in self.reasoning_details]
        return message

    def json(self) -> Any:
        """`text` parsed as JSON; `ResponseFormatError` when it is not JSON."""
        try:
            return json.loads(self.text)
        except ValueError as exc:
            from rlm_code.core.exceptions import ResponseFormatError

            raise ResponseFormatError(
                f"the reply is not valid JSON ({exc.args[0]})", provider=self.provider or None
            ) from None


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the reply's text."""

    text: str
    type: Literal["text_delta"] = field(default="text_delta", init=False)


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the model's reasoning text."""

    text: str
    type: Literal["reasoning_delta"] = field(default="reasoning_delta", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the `index`-th tool call of the reply, as it arrives."""

    index: int
    id: str | None
    name: str | None
    arguments_fragment: str
    type: Literal["tool_call_delta"] = field(default="tool_call_delta", init=False)


@dataclass(frozen=True, slots=True)
class ToolCallDone:
    """The `index`-th tool call is whole: its arguments arrived and parsed."""

    tool_call: ToolCall
    type: Literal["tool_call_done"] = field(default="tool_call_done", init=False)


@dataclass(frozen=True, slots=True)
class ReplayDetail:
    """Adapter-internal: a provider block the next turn must send back (not shown to callers)."""

    detail: dict[str, Any]
    type: Literal["replay_detail"] = field(default="replay_detail", init=False)


@dataclass(frozen=True, slots=True)
class UsageReport:
    """Token counts reported so far (refines earlier reports bucket by bucket)."""

    usage: Usage
    type: Literal["usage"] = field(default="usage", init=False)


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The provider's end marker arrived; `finish_reason` is normalised, `raw` as sent."""

    finish_reason: FinishReason | None = None
    raw: str | None = None
    type: Literal["stream_end"] = field(default="stream_end", init=False)


@dataclass(frozen=True, slots=True)
class Finished:
    """The last event of a stream: the whole reply."""

    response: Response
    type: Literal["finished"] = field(default="finished", init=False)


AdapterEvent = (
    TextDelta
    | ReasoningDelta
    | ToolCallDelta
    | ToolCallDone
    | UsageReport
    | ReplayDetail
    | StreamEnd
)
StreamEvent = TextDelta | ReasoningDelta | ToolCallDelta | ToolCallDone | UsageReport | Finished


def final_finish_reason(normalized: FinishReason | None, has_tool_calls: bool) -> FinishReason:
    """The reply's finish reason, given the provider's (normalised) one and whether it called
    tools: Gemini and Ollama say "stop" even when the reply is a tool call, so a reply that
    carries tool calls and stopped normally finished for `"tool_calls"` on every provider."""
    if has_tool_calls and normalized in (None, "stop"):
        return "tool_calls"
    return normalized or "stop"


def normalize_finish_reason(raw: object) -> FinishReason | None:
    """A provider's stop reason in our five words (None when the provider gave none).

    One table for every wire format: OpenAI and compatible servers (`stop`, `length`,
    `tool_calls`, `function_call`, `content_filter`), Anthropic (`end_turn`, `stop_sequence`,
    `max_tokens`, `tool_use`, `refusal`), Gemini (`STOP`, `MAX_TOKENS`, `SAFETY`,
    `RECITATION`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII`, ...), Ollama `done_reason`.
    """
    if not isinstance(raw, str) or not raw:
        return None
    return _FINISH.get(raw.lower(), "other")


_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "eos_token": "stop",
    "length": "length",
    "max_tokens": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "refusal": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
    "spii": "content_filter",
    "image_safety": "content_filter",
}
