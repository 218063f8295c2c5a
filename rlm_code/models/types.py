"""Plain value types passed between the connector and its adapters.

Adapters report usage on the objects they return (`Completion.usage`) or fill in the
`StreamState` they are handed; the connector's usage tracker reads it from there. A token
count of `None` means the provider did not say: it is never guessed and never counted as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as the provider reported them; None = not reported."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    @property
    def known(self) -> bool:
        return self.prompt_tokens is not None or self.completion_tokens is not None


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Optional sampling and call settings, mapped to each provider's own names."""

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
class Completion:
    """A whole reply."""

    text: str
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None


@dataclass(slots=True)
class StreamState:
    """Filled in by an adapter while it streams, read by the connector when the stream ends.

    Usage fields are updated as soon as the provider reports them (Anthropic sends input
    tokens first and output tokens last), so a stream stopped early still records what was
    received.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    completed: bool = False
    chunks: int = 0

    def usage(self) -> Usage:
        return Usage(self.prompt_tokens, self.completion_tokens)
