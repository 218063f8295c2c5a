"""Plain value types passed between the caller, the connector and its adapters.

A call goes down as a `ChatRequest` and comes back as a `Response` (whole calls) or as a
stream of typed events (streamed calls):

- `TextDelta(text)`: a piece of the reply's text.
- `UsageReport(usage)`: token counts so far. Later reports refine earlier ones bucket by
  bucket (Anthropic sends input tokens first and output tokens last), so a stream stopped
  early still records what was received.
- `StreamEnd(finish_reason)`: the provider's end marker arrived (`[DONE]`, `message_stop`,
  Ollama's `done`). Adapters yield it; a stream without it was cut off.
- `Finished(response)`: the last event a `ResponseStream` hands to the caller, carrying the
  whole `Response` built from the events before it.

A token count of `None` means the provider did not say: it is never guessed and never counted
as 0. Every type here is a frozen, slotted dataclass: cheap to build on a hot path and safe to
share between threads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

ROLES = ("system", "user", "assistant")

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]
FINISH_REASONS: tuple[FinishReason, ...] = (
    "stop",
    "length",
    "tool_calls",
    "content_filter",
    "other",
)


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: str
    content: str


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

    Each is None when the provider did not say.
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

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
        )


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
    """What an adapter sends: the model, the system prompt apart, then the turns."""

    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    params: GenerationParams = field(default_factory=GenerationParams)


@dataclass(frozen=True, slots=True)
class Response:
    """One model reply: its text, why it stopped, and what it cost in tokens.

    `finish_reason` is normalised (`"stop"`, `"length"`, `"tool_calls"`, `"content_filter"`,
    `"other"`); `raw_finish_reason` is the provider's own word for it. A stream that was cut
    off or left early has `complete=False`.
    """

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: FinishReason | None = None
    provider: str = ""
    model: str = ""
    raw_finish_reason: str | None = None
    reasoning: str | None = None
    complete: bool = True

    @property
    def message(self) -> dict[str, Any]:
        """The assistant message to append to `messages` for the next turn."""
        return {"role": "assistant", "content": self.text}

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


AdapterEvent = TextDelta | UsageReport | StreamEnd
StreamEvent = TextDelta | UsageReport | Finished


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
