"""Turn `generate_response(prompt, system_prompt, context)` arguments into a `ChatRequest`.

`context` is a dict with these keys (any other key is an error, so nothing is silently
dropped):

- `conversation_history`: earlier turns. A list of `{"role": "user"|"assistant"|"system",
  "content": str}` dicts is sent as real chat turns before the prompt (system turns are merged
  into the system prompt). A plain string is added to the system prompt under
  "Previous conversation".
- `current_code`: the code the user is working on; added to the system prompt under
  "Current code", fenced.
- `reference` (alias `dspy_reference`): reference text (docs, API notes); a string or list
  of strings, added to the system prompt under "Reference material".

Each adapter then places the system prompt where its API wants it: a system message for chat
APIs and Ollama, Anthropic's `system` field, Gemini's system instruction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.call_options import (
    check_reasoning,
    check_response_format,
    check_tool_choice,
    check_tools,
)
from rlm_code.models.messages import parse_messages
from rlm_code.models.types import ROLES, ChatRequest, GenerationParams, Message

CONTEXT_KEYS = ("conversation_history", "current_code", "reference", "dspy_reference")
MAX_PROMPT_CHARS = 4_000_000  # past any model's context window; refuse before sending
MAX_TIMEOUT_S = 86_400  # a day: larger values (and inf/nan) overflow the transports' timers


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    return value


def check_prompt(prompt: object) -> str:
    text = _text(prompt, "prompt")
    if not text.strip():
        raise InvalidInputError("prompt is empty; pass the text to send to the model")
    _check_size(len(text), "prompt")
    return text


def _check_size(chars: int, what: str) -> None:
    if chars > MAX_PROMPT_CHARS:
        raise InvalidInputError(
            f"{what} has {chars:,} characters, more than any model accepts "
            f"({MAX_PROMPT_CHARS:,}); shorten it or split the task"
        )


def _history(value: object, system_parts: list[str]) -> list[Message]:
    if isinstance(value, str):
        if value.strip():
            system_parts.append("Previous conversation:\n" + value.strip())
        return []
    if not isinstance(value, Sequence):
        raise InvalidInputError(
            "context['conversation_history'] must be a list of {'role', 'content'} dicts "
            "or a string"
        )
    turns: list[Message] = []
    for index, item in enumerate(value):
        if not isinstance(item, Mapping) or "role" not in item or "content" not in item:
            raise InvalidInputError(
                f"conversation_history[{index}] must be a dict with 'role' and 'content'"
            )
        role = item["role"]
        if role not in ROLES:
            raise InvalidInputError(
                f"conversation_history[{index}] has role {role!r}; use one of {', '.join(ROLES)}"
            )
        content = _text(item["content"], f"conversation_history[{index}]['content']")
        if role == "system":
            system_parts.append(content)
        else:
            turns.append(Message(role, content))
    return turns


def build_request(
    model: str,
    prompt: object,
    system_prompt: object = None,
    context: Mapping[str, Any] | None = None,
    params: GenerationParams | None = None,
) -> ChatRequest:
    """Validate the arguments and assemble the request (no I/O)."""
    text = check_prompt(prompt)
    system_parts: list[str] = []
    if system_prompt is not None and _text(system_prompt, "system_prompt").strip():
        system_parts.append(str(system_prompt))
    turns: list[Message] = []
    if context is not None:
        if not isinstance(context, Mapping):
            raise InvalidInputError(f"context must be a dict, got {type(context).__name__}")
        unknown = sorted(set(context) - set(CONTEXT_KEYS))
        if unknown:
            raise InvalidInputError(
                f"unknown context key(s) {', '.join(map(repr, unknown))}; "
                f"accepted: {', '.join(CONTEXT_KEYS)}"
            )
        if "conversation_history" in context:
            turns = _history(context["conversation_history"], system_parts)
        if context.get("current_code"):
            code = _text(context["current_code"], "context['current_code']")
            system_parts.append(f"Current code:\n```\n{code}\n```")
        for key in ("reference", "dspy_reference"):
            ref = context.get(key)
            if not ref:
                continue
            refs = [ref] if isinstance(ref, str) else ref
            if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
                raise InvalidInputError(f"context[{key!r}] must be a string or list of strings")
            system_parts.append("Reference material:\n" + "\n\n".join(refs))
    turns.append(Message("user", text))
    system = "\n\n".join(system_parts) if system_parts else None
    # The limit is on what is sent, not on one argument: system prompt, context and history
    # count too.
    _check_size(sum(len(t.content) for t in turns) + len(system or ""), "the request")
    return ChatRequest(model, tuple(turns), system, params or GenerationParams())


def build_chat_request(
    model: str,
    prompt: object,
    messages: object,
    system_prompt: object,
    params: GenerationParams,
    tools: object = None,
    tool_choice: object = None,
    response_format: object = None,
    reasoning: object = None,
) -> ChatRequest:
    """The request of `complete()`/`stream()`: exactly one of `prompt` or `messages`, plus
    tools, tool choice, structured output and reasoning, all checked here (no I/O)."""
    if (prompt is None) == (messages is None):
        raise InvalidInputError("pass exactly one of prompt or messages")
    system_parts: list[str] = []
    if system_prompt is not None and _text(system_prompt, "system_prompt").strip():
        system_parts.append(str(system_prompt))
    if messages is not None:
        turns, system_texts = parse_messages(messages)
        system_parts += [t for t in system_texts if t.strip()]
    else:
        turns = (Message("user", check_prompt(prompt)),)
    system = "\n\n".join(system_parts) if system_parts else None
    _check_size(sum(_turn_chars(t) for t in turns) + len(system or ""), "the request")
    specs = check_tools(tools)
    choice, forced = check_tool_choice(tool_choice, specs)
    return ChatRequest(
        model,
        turns,
        system,
        params,
        specs,
        choice,
        forced,
        check_response_format(response_format),
        check_reasoning(reasoning),
    )


def _turn_chars(turn: Message) -> int:
    """The text a turn sends (images are bounded by the transport's request size cap)."""
    return len(turn.content) + sum(len(c.arguments_json) for c in turn.tool_calls)


def make_params(
    temperature: object = None,
    max_tokens: object = None,
    stop: object = None,
    timeout: object = None,
) -> GenerationParams:
    """Validate the optional generation parameters."""
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise InvalidInputError("temperature must be a number from 0 to 2")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise InvalidInputError("max_tokens must be a whole number of at least 1")
    stops: tuple[str, ...] | None = None
    if stop is not None:
        stops = (
            (stop,)
            if isinstance(stop, str)
            else tuple(stop)
            if isinstance(stop, list | tuple)
            else None
        )
        if not stops or not all(isinstance(s, str) and s for s in stops):
            raise InvalidInputError("stop must be a non-empty string or list of strings")
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or not 0 < timeout <= MAX_TIMEOUT_S
    ):
        raise InvalidInputError(
            f"timeout must be a positive number of seconds, at most {MAX_TIMEOUT_S:,}"
        )
    return GenerationParams(
        None if temperature is None else float(temperature),
        max_tokens,
        stops,
        None if timeout is None else float(timeout),
    )
