"""`complete`, `stream`, `acomplete`, `astream`: the connector's calls that return more than a
string — tool calls, reasoning, structured output, images, the finish reason and this call's
own usage.

They take the same keyword arguments (`CallOptions`, checked before any I/O by
`prompting.build_chat_request`) and go through the same single call path as the spec's string
methods (`calls`), so the usage tracker records exactly what each `Response.usage` says.
Kept apart from `llm_connector` so the facade stays a short read; `LLMConnector` inherits
these methods.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict, Unpack

from rlm_code.models import calls
from rlm_code.models.connection import Connection
from rlm_code.models.metering import Metering
from rlm_code.models.prompting import build_chat_request, make_params
from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
from rlm_code.models.types import ChatRequest, Response


class CallOptions(TypedDict, total=False):
    """The keyword arguments of `complete`/`stream`/`acomplete`/`astream`.

    - `messages`: OpenAI chat-style turns (see `rlm_code.models.messages`); exactly one of
      `prompt` or `messages`.
    - `system_prompt`: joined before any system turns of `messages`.
    - `tools`: tool dicts (plain or OpenAI form) or Python functions with type hints.
    - `tool_choice`: "auto", "none", "required" or `{"name": ...}`.
    - `response_format`: a JSON schema dict or a pydantic model class.
    - `reasoning`: "low", "medium", "high" or a token budget.
    - `temperature`, `max_tokens`, `stop`, `timeout`: as for `generate_response`.
    """

    messages: Sequence[Mapping[str, Any]] | None
    system_prompt: str | None
    tools: Sequence[Mapping[str, Any] | Callable[..., Any]] | None
    tool_choice: Literal["auto", "none", "required"] | Mapping[str, Any] | None
    response_format: Mapping[str, Any] | type | None
    reasoning: Literal["low", "medium", "high"] | int | None
    temperature: float | None
    max_tokens: int | None
    stop: str | list[str] | None
    timeout: float | None


class MessageCalls:
    """The rich call methods; the host class provides the current connection and tracker."""

    _metering: Metering

    def _hold_current(self) -> Connection:  # pragma: no cover - provided by LLMConnector
        raise NotImplementedError

    def _prepare_chat(
        self, prompt: str | None, options: CallOptions
    ) -> tuple[Connection, ChatRequest]:
        params = make_params(
            options.get("temperature"),
            options.get("max_tokens"),
            options.get("stop"),
            options.get("timeout"),
        )
        conn = self._hold_current()
        try:
            request = build_chat_request(
                conn.model,
                prompt,
                options.get("messages"),
                options.get("system_prompt"),
                params,
                options.get("tools"),
                options.get("tool_choice"),
                options.get("response_format"),
                options.get("reasoning"),
            )
        except BaseException:
            conn.release()
            raise
        return conn, request

    def complete(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> Response:
        """The whole reply as a `Response`: text, tool calls, reasoning, finish reason, usage,
        and `message` to append for the next turn. See `CallOptions` for the arguments."""
        return calls.complete(*self._prepare_chat(prompt, options), self._metering)

    def stream(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> ResponseStream:
        """The reply as typed events (`TextDelta`, `ReasoningDelta`, `ToolCallDelta`,
        `ToolCallDone`, `UsageReport`, then `Finished`); `.response` is the whole `Response`
        after the last one. Use it as a context manager: leaving early closes the connection
        and records the usage received so far."""
        return calls.stream(*self._prepare_chat(prompt, options), self._metering)

    async def acomplete(
        self, prompt: str | None = None, **options: Unpack[CallOptions]
    ) -> Response:
        """Async twin of `complete`."""
        return await calls.acomplete(*self._prepare_chat(prompt, options), self._metering)

    def count_tokens(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> int:
        """The request's input tokens as the provider counts them, for an exact pre-flight
        check against a budget or a context window. Anthropic and Gemini have a counting
        endpoint; other providers raise `UnsupportedParameterError`. Nothing is generated,
        and nothing is counted as a call."""
        conn, request = self._prepare_chat(prompt, options)
        try:
            return conn.adapter.count_tokens(request)
        finally:
            conn.release()

    def astream(
        self, prompt: str | None = None, **options: Unpack[CallOptions]
    ) -> AsyncResponseStream:
        """Async twin of `stream` (`async for` / `async with`)."""
        return calls.astream(*self._prepare_chat(prompt, options), self._metering)
