"""`CallRecord`: the facts of one finished (or failed) call, made once by the call path and
handed to everything that counts calls — the in-memory tracker, the usage scopes in effect
and the persistent ledger — so they all count the same thing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from rlm_code.models.types import Usage


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One call.

    `usage` is the call's own `Response.usage` (priced lazily, see `Usage.cost_usd`); a call
    that failed before any reply has an empty `Usage` and `error_type` (the `ModelError`
    class name). `scopes` are the names of the usage scopes in effect, outermost first, and
    `tags` their tags merged (inner scopes win). `prompt` and `reply` are filled only when the
    user turned content logging on.
    """

    at: float  # time.time() when the call ended
    provider: str
    model: str
    usage: Usage
    latency_ms: float | None = None
    finish_reason: str | None = None
    streamed: bool = False
    interrupted: bool = False
    error_type: str | None = None
    scopes: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    prompt: str | None = None
    reply: str | None = None
