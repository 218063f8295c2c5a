"""Provider error bodies an agent can act on: the request is longer than the model's context,
the provider refused the content, or the model does not take a parameter.

A plain "HTTP 400" tells an agent nothing it can do; these three say exactly what to change
(shorten the history, rephrase, drop the setting). `errors.error_for_status` asks `body_error`
first, and so does `errors.stream_error` for an error that arrives inside a 200 answer. The
bodies below are the ones each provider really sends (from their issue trackers and server
sources); the tests hold each one verbatim.

Context length (`ContextLengthExceededError`, with `limit` and `requested` when stated):

- OpenAI, 400 ``code: context_length_exceeded``: "This model's maximum context length is 4097
  tokens. However, your messages resulted in 4294 tokens." (older: "you requested 4268 tokens
  (4012 in the messages, 256 in the completion)").
- vLLM, 400 ``BadRequestError`` (top-level or under ``error``): the same sentence as OpenAI,
  or "However, your request has 32836 input tokens", or "However, you requested 512 output
  tokens and your prompt contains 32836 input tokens, for a total of 33348 tokens", or
  "'max_tokens' or 'max_completion_tokens' is too large: 1000. This model's maximum context
  length is 4096 tokens and your request has 3500 input tokens (1000 > 4096 - 3500)."
- Anthropic, 400 ``invalid_request_error``: "prompt is too long: 210000 tokens > 200000 maximum".
- Gemini, 400 ``INVALID_ARGUMENT``: "The input token count (1200293) exceeds the maximum number
  of tokens allowed (1048576)."
- llama.cpp, 400 (500 before late 2025) ``type: exceed_context_size_error`` with
  ``n_prompt_tokens`` and ``n_ctx``: "request (13392 tokens) exceeds the available context size
  (8192 tokens), try increasing it" (older: "the request exceeds the available context size.
  try increasing the context size or enable context shift").
- Ollama truncates an over-long prompt silently by default (a 200 whose ``prompt_eval_count``
  is smaller than the prompt); with ``truncate: false``, and for models whose template runs in
  the llama-server runner, it answers 400 with the runner's llama.cpp body as a JSON *string*
  under ``error``. Embeddings: "the input length exceeds the context length".
- TGI, 422 ``validation``: "Input validation error: `inputs` tokens + `max_new_tokens` must be
  <= 4096. Given: 4000 `inputs` tokens and 1000 `max_new_tokens`".

Content filter (`ContentFilterError`): Azure OpenAI 400 ``code: content_filter`` (with an
``innererror`` ``ResponsibleAIPolicyViolation``); OpenAI ``content_policy_violation`` (images)
and ``invalid_prompt`` "your prompt was flagged as potentially violating our usage policy";
Anthropic 400 ``invalid_request_error`` "Output blocked by content filtering policy" (also as a
stream ``error`` event mid-reply). Anthropic's ``refusal`` and Gemini's ``SAFETY`` stop reasons
are finish reasons, not errors; a Gemini prompt blocked outright (``promptFeedback.blockReason``
on a 200 without candidates) is mapped in `_gemini_errors.blocked_prompt`.

Unsupported parameter (`UnsupportedParameterError`): OpenAI ``code: unsupported_parameter``
"Unsupported parameter: 'temperature' is not supported with this model." and
``unsupported_value`` (also with ``code: null``), "Unrecognized request argument supplied:
top_k"; Anthropic "`temperature` and `top_p` cannot both be specified for this model",
"`temperature` may only be set to 1 when thinking is enabled", "top_k: Extra inputs are not
permitted" (a top-level key only: nested paths are malformed messages, not settings); Gemini
"Function calling is not enabled for models/gemma-3-12b-it" and "Invalid JSON payload received.
Unknown name "top_k": Cannot find field." (top level or ``generation_config``); Ollama
"\"llama3.1:8b\" does not support thinking" (also "... does not support tools"); llama.cpp
"Unsupported param: best_of".

None of these is retryable: the same request fails the same way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from rlm_code.core.exceptions import (
    ContentFilterError,
    ContextLengthExceededError,
    ModelError,
    UnsupportedParameterError,
)

__all__ = ["BODY_STATUSES", "body_error"]

# Statuses these errors come with: 400 (most), 413 (proxies), 422 (TGI), 500 (llama.cpp's
# context error before it moved to 400). A 401, 404 or 429 keeps its own meaning.
BODY_STATUSES = frozenset({400, 413, 422, 500})
_MAX_DEPTH = 4
_FLAGS = re.IGNORECASE | re.DOTALL


@dataclass
class _Facts:
    """What an error body says, wherever it nests it (OpenAI ``error``, vLLM top level, Gemini
    ``details``, Ollama's llama-server body inside a string)."""

    codes: set[str] = field(default_factory=set)  # code, type, error_type, status, reason
    messages: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    n_prompt: int | None = None
    n_ctx: int | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.messages)


def _facts(body: bytes | str) -> _Facts:
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    facts = _Facts()
    parsed = _json(text)
    if parsed is None:
        facts.messages.append(text)
    else:
        _collect(parsed, facts, 0)
    return facts


def _json(text: str) -> object:
    stripped = text.strip()
    if not stripped.startswith(("{", "[")):
        return None
    try:
        return json.loads(stripped)
    except (ValueError, RecursionError):
        return None


def _collect(value: object, facts: _Facts, depth: int) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(value, list):
        for item in value[:8]:
            _collect(item, facts, depth + 1)
        return
    if not isinstance(value, dict):
        return
    for key in ("code", "type", "error_type", "status", "reason"):
        item = value.get(key)
        if isinstance(item, str):
            facts.codes.add(item.lower())
    for key in ("message", "error", "detail", "description"):
        item = value.get(key)
        if isinstance(item, str):
            nested = _json(item)
            if nested is None:
                facts.messages.append(item)
            else:  # Ollama (and proxies) wrap the upstream body as a JSON string
                _collect(nested, facts, depth + 1)
        elif isinstance(item, dict | list):
            _collect(item, facts, depth + 1)
    param = value.get("param")
    if isinstance(param, str) and param:
        facts.params.append(param)
    for key in ("details", "innererror", "fieldViolations"):
        if isinstance(value.get(key), dict | list):
            _collect(value[key], facts, depth + 1)
    prompt, ctx = value.get("n_prompt_tokens"), value.get("n_ctx")
    if isinstance(prompt, int) and not isinstance(prompt, bool):
        facts.n_prompt = prompt
    if isinstance(ctx, int) and not isinstance(ctx, bool):
        facts.n_ctx = ctx


# -- context length -----------------------------------------------------------------------------

_CONTEXT_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error"})
# (pattern, group of the limit, group(s) of the requested size); several groups are summed.
_CONTEXT_PATTERNS: tuple[tuple[re.Pattern[str], int | None, tuple[int, ...]], ...] = (
    # vLLM: max_tokens too large for what is left of the window
    (
        re.compile(
            r"is too large: (\d+)\. This model's maximum context length is (\d+) tokens "
            r"and your request has (\d+) input tokens",
            _FLAGS,
        ),
        2,
        (1, 3),
    ),
    (re.compile(r"for a total of (\d+) tokens", _FLAGS), None, (1,)),  # vLLM 0.19
    (
        re.compile(
            r"(?:resulted in|you requested|your request has) (\d+) (?:input )?tokens", _FLAGS
        ),
        None,
        (1,),
    ),  # OpenAI, vLLM
    (re.compile(r"prompt is too long: (\d+) tokens > (\d+) maximum", _FLAGS), 2, (1,)),
    (
        re.compile(
            r"input token count \((\d+)\) exceeds the maximum number of tokens allowed \((\d+)\)",
            _FLAGS,
        ),
        2,
        (1,),
    ),  # Gemini
    (
        re.compile(
            r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)", _FLAGS
        ),
        2,
        (1,),
    ),  # llama.cpp
    (
        re.compile(
            r"`inputs` tokens \+ `max_new_tokens` must be <= (\d+)\. Given: (\d+) `inputs` "
            r"tokens and (\d+) `max_new_tokens`",
            _FLAGS,
        ),
        1,
        (2, 3),
    ),  # TGI
    (re.compile(r"`inputs` must have less than (\d+) tokens\. Given: (\d+)", _FLAGS), 1, (2,)),
)
_CONTEXT_LIMIT = re.compile(r"maximum context length is (\d+) tokens", _FLAGS)
_CONTEXT_PHRASES = (
    "maximum context length is",
    "exceeds the available context size",
    "input length exceeds the context length",
    "exceeds the context window",
)


def _context(facts: _Facts) -> tuple[bool, int | None, int | None]:
    """(is it a context error, limit, requested) from what the body states."""
    text = facts.text
    limit, requested = facts.n_ctx, facts.n_prompt
    matched = bool(facts.codes & _CONTEXT_CODES)
    for pattern, limit_group, requested_groups in _CONTEXT_PATTERNS:
        found = pattern.search(text)
        if found is None:
            continue
        matched = True
        if limit is None and limit_group is not None:
            limit = int(found.group(limit_group))
        if requested is None:
            requested = sum(int(found.group(group)) for group in requested_groups)
        break
    if limit is None and (openai := _CONTEXT_LIMIT.search(text)) is not None:
        limit = int(openai.group(1))
    lowered = text.lower()
    matched = matched or any(phrase in lowered for phrase in _CONTEXT_PHRASES)
    return matched, limit, requested


# -- content filter -----------------------------------------------------------------------------

_FILTER_CODES = frozenset(
    {
        "content_filter",
        "content_policy_violation",
        "moderation_blocked",
        "responsibleaipolicyviolation",
    }
)
_FILTER_PHRASES = (
    "blocked by content filtering policy",
    "rejected as a result of our safety system",
    "content management policy",
)
_POLICY_WORDS = ("usage policy", "safety", "flagged")


def _filtered(facts: _Facts) -> bool:
    if facts.codes & _FILTER_CODES:
        return True
    lowered = facts.text.lower()
    if "invalid_prompt" in facts.codes and any(word in lowered for word in _POLICY_WORDS):
        return True
    return any(phrase in lowered for phrase in _FILTER_PHRASES)


# -- unsupported parameter ----------------------------------------------------------------------

_UNSUPPORTED_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
_UNSUPPORTED_PATTERNS = (
    re.compile(r"Unsupported (?:parameter|value): '([^']+)'"),  # OpenAI
    re.compile(r"Unrecognized request arguments? supplied: ([\w, ]+)"),  # OpenAI
    re.compile(r"`(\w+)` and `\w+` cannot both be specified"),  # Anthropic
    re.compile(r"`(\w+)` may only be set to"),  # Anthropic
    re.compile(r"^(\w+): Extra inputs are not permitted", re.MULTILINE),  # Anthropic, top level
    re.compile(r"^(.+?) is not enabled for models/", re.MULTILINE),  # Gemini
    re.compile(r"Unknown name \"(\w+)\"(?: at 'generation_?config')?: Cannot find field"),
    re.compile(r"does not support (thinking|tools|insert|vision|images|completion)"),  # Ollama
    re.compile(r"Unsupported param: (\w+)"),  # llama.cpp
)


def _unsupported(facts: _Facts) -> tuple[bool, str | None]:
    """(is it an unsupported parameter, its name when the body says)."""
    text = facts.text
    for pattern in _UNSUPPORTED_PATTERNS:
        found = pattern.search(text)
        if found is not None:
            return True, found.group(1).strip()
    if facts.codes & _UNSUPPORTED_CODES:
        return True, facts.params[0] if facts.params else None
    return False, None


# -- the typed error ----------------------------------------------------------------------------


def body_error(
    provider: str, status: int | None, body: bytes | str | None, detail: str
) -> ModelError | None:
    """The typed error `body` names, or None when it is none of the three.

    `status` is the HTTP status (None for an error inside a 200 answer, a stream event);
    `detail` is the provider's message, already redacted and shortened (`errors.error_detail`).
    """
    if not body or (status is not None and status not in BODY_STATUSES):
        return None
    facts = _facts(body)
    said = f": {detail}" if detail else ""
    http = f" (HTTP {status})" if status is not None else ""
    is_context, limit, requested = _context(facts)
    if is_context:
        figures = ""
        if requested is not None and limit is not None:
            figures = f" ({requested} tokens asked for, {limit} allowed)"
        elif limit is not None:
            figures = f" ({limit} tokens allowed)"
        return ContextLengthExceededError(
            f"{provider}: the request does not fit the model's context window{figures}{http}{said}",
            limit=limit,
            requested=requested,
            provider=provider,
            status_code=status,
        )
    if _filtered(facts):
        return ContentFilterError(
            f"{provider} refused the content as unsafe{http}{said}",
            provider=provider,
            status_code=status,
        )
    unsupported, name = _unsupported(facts)
    if unsupported:
        which = f" '{name}'" if name else ""
        return UnsupportedParameterError(
            f"{provider} does not accept the setting{which} for this model{http}{said}",
            provider=provider,
            status_code=status,
        )
    return None
