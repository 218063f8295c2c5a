"""Model-name conventions of the local server: per-model context limits, capabilities, Ollama's
context truncation and Mistral's strict request schema.

Tests drive these by the model name alone, so no server flag is needed (documented in the
`rlm_code.testing` package docstring):

- ``ctxN`` / ``ctxNk`` as a part of the name (``tiny-ctx8192``, ``qwen-ctx32k:latest``): the
  model's context window is N tokens (words). A prompt above it gets the protocol's own
  context-length error (the ``context_length`` fault bodies), except on Ollama, which cuts it.
  The probe answers (``/api/show``, ``/props``, ``/v1/models``' ``max_model_len``, LM Studio's
  ``/api/v0/models``) report it.
- ``vision`` / ``-vl`` / ``llava`` in the name: the model sees images; ``think`` or ``-r1``:
  it reasons; ``notools``: it takes no tools (Ollama ``capabilities``, LM Studio ``type`` and
  ``capabilities``, SGLang ``has_image_understanding``).
- Ollama: a prompt longer than the context is cut to its last tokens without an error, as
  Ollama does; the context is ``options.num_ctx`` when sent, else `OLLAMA_DEFAULT_CONTEXT`
  (Ollama's default on machines with less than 24 GiB of VRAM), never more than the model's.
- Mistral: a model named ``mistral...``, ``codestral...``, ``ministral...`` or ``magistral...``
  on the OpenAI route answers fields Mistral does not take (``stream_options``,
  ``max_completion_tokens``) with Mistral's 422 ``extra_forbidden`` body, and its streams
  carry usage on the last chunk without being asked.
"""

from __future__ import annotations

import re
from dataclasses import replace

from rlm_code.testing.faults import Fault, fault_reply
from rlm_code.testing.text import count_tokens, total_tokens
from rlm_code.testing.wire import ErrorReply, JsonObject, WireFormat, WireRequest

__all__ = [
    "DEFAULT_MODEL_CONTEXT",
    "OLLAMA_DEFAULT_CONTEXT",
    "capabilities",
    "chat_mode",
    "context_limit",
    "is_mistral",
    "mistral_rejection",
    "ollama_truncate",
]

OLLAMA_DEFAULT_CONTEXT = 4096
# The trained context reported for a model without a ``ctxN`` part.
DEFAULT_MODEL_CONTEXT = 131072
_CTX = re.compile(r"(?:^|[-_/:.])ctx(\d+)(k?)(?=$|[-_/:.])", re.IGNORECASE)
_MISTRAL = ("mistral", "codestral", "ministral", "magistral", "devstral", "pixtral")
# Fields of OpenAI's chat request that Mistral's schema forbids.
_MISTRAL_FORBIDDEN = ("stream_options", "max_completion_tokens")


def context_limit(model: str) -> int | None:
    """The context window a ``ctxN`` name part sets, else None (no limit)."""
    match = _CTX.search(model)
    if match is None:
        return None
    return int(match.group(1)) * (1024 if match.group(2) else 1)


def capabilities(model: str) -> dict[str, bool]:
    """What the model can do, from its name (see the module docstring)."""
    name = model.lower()
    return {
        "tools": "notools" not in name,
        "vision": "vision" in name or "-vl" in name or "llava" in name,
        "thinking": "think" in name or "-r1" in name,
    }


def ollama_truncate(chat: WireRequest, body: object) -> WireRequest:
    """The request as Ollama's runner sees it: cut to the last tokens of its context."""
    options = body.get("options") if isinstance(body, dict) else None
    num_ctx = options.get("num_ctx") if isinstance(options, dict) else None
    window = num_ctx if isinstance(num_ctx, int) and num_ctx > 0 else OLLAMA_DEFAULT_CONTEXT
    window = min(window, context_limit(chat.model) or DEFAULT_MODEL_CONTEXT)
    if total_tokens(chat.texts) <= window:
        return chat
    kept: list[str] = []
    room = window
    for text in reversed(chat.texts):
        words = count_tokens(text)
        if words <= room:
            kept.append(text)
            room -= words
        else:
            kept.append(" ".join(text.split()[-room:]) if room else "")
            room = 0
    texts = tuple(reversed(kept))
    last = chat.last_user_text
    if chat.texts[-1] == last:  # the question itself was cut: the model sees its tail only
        last = texts[-1]
    return replace(chat, texts=texts, last_user_text=last)


def is_mistral(model: str) -> bool:
    return model.rsplit("/", 1)[-1].lower().startswith(_MISTRAL)


def mistral_rejection(body: object) -> ErrorReply | None:
    """Mistral's 422 for the OpenAI fields its schema forbids, else None."""
    if not isinstance(body, dict):
        return None
    detail: list[JsonObject] = [
        {
            "type": "extra_forbidden",
            "loc": ["body", name],
            "msg": "Extra inputs are not permitted",
            "input": body[name],
        }
        for name in _MISTRAL_FORBIDDEN
        if name in body
    ]
    if not detail:
        return None
    return ErrorReply(
        422,
        {
            "object": "error",
            "message": {"detail": detail},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
    )


def mistral_request(chat: WireRequest) -> WireRequest:
    """Mistral streams report usage without `stream_options`."""
    return replace(chat, stream_usage=True) if chat.stream else chat


def chat_mode(
    fmt: WireFormat, chat: WireRequest, body: object, path: str
) -> tuple[WireRequest, ErrorReply | None]:
    """Apply the name conventions to a parsed chat request: the request the "model" then
    answers, or the error to send instead."""
    if fmt.name == "ollama":
        return ollama_truncate(chat, body), None
    if fmt.name == "openai" and is_mistral(chat.model):
        refusal = mistral_rejection(body)
        if refusal is not None:
            return chat, refusal
        chat = mistral_request(chat)
    limit = context_limit(chat.model)
    prompt = total_tokens(chat.texts)
    if limit is not None and prompt > limit:
        fault = Fault("context_length", context_limit=limit, context_requested=prompt)
        return chat, fault_reply(fmt, fault, model=chat.model, body=body, path=path)
    return chat, None
