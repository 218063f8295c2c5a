"""`Route`: a pooled handle on a model, with fallback targets and limits.

A sub-model call used to resolve, build a client, send, and close the client — every time. A
`Route` keeps what it resolved: each of its targets is one `Connection` (one client, kept alive
across calls) shared by every route of the connector that names the same provider, model,
base URL and key. Its calls take the connector's single call path (`calls`, with the
connector's `Metering`), so scopes, budgets, the tracker and the ledger count them like any
other call, under the provider and model of the target that served.

A call tries the targets in order (see `fallback` for when it moves on, and for cooldowns),
each under its limits (`limits`): the route's own, then the target's provider's.
`connector.route(...)` makes routes; `connector.close()` closes them.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, Unpack

from rlm_code.core.exceptions import NotConnectedError
from rlm_code.models import fallback
from rlm_code.models.connection import Connection
from rlm_code.models.limits import Limits
from rlm_code.models.prompting import build_chat_request, build_request, make_params
from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
from rlm_code.models.types import ChatRequest, Response

if TYPE_CHECKING:
    from rlm_code.models.message_calls import CallOptions
    from rlm_code.models.metering import Metering

__all__ = ["Health", "Route", "Target", "target_key"]

Prepare = Callable[[Connection], ChatRequest]


def target_key(provider: str, model: str, base_url: str, api_key: str | None) -> tuple[str, ...]:
    """What makes two targets the same: the key enters only as a short digest, so the cache
    (and anything that prints it) never holds the key itself."""
    digest = hashlib.sha256(api_key.encode()).hexdigest()[:16] if api_key else "-"
    return (provider, model, base_url, digest)


class Health:
    """When a target cools down: after `failures` failures in a row of the kinds another
    target could fix, it is skipped for `cooldown` seconds (config `route_cooldown`)."""

    __slots__ = ("cooldown", "failures")

    def __init__(self, failures: int = 3, cooldown: float = 30.0) -> None:
        self.failures = failures
        self.cooldown = cooldown


class Target:
    """One pooled connection of a connector, its provider's limits and its health."""

    __slots__ = (
        "_lock",
        "_share",
        "_users",
        "conn",
        "cool_until",
        "failures",
        "key",
        "provider_limits",
    )

    def __init__(
        self,
        conn: Connection,
        key: tuple[str, ...],
        provider_limits: Limits | None,
        share: Callable[[], Limits] | None = None,
    ) -> None:
        self.conn = conn
        self.key = key
        self.provider_limits = provider_limits
        self._share = share  # the provider's shared Limits, made on first need
        self.failures = 0
        self.cool_until = 0.0
        self._users = 0  # open routes using this target
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Target({self.label})"

    @property
    def label(self) -> str:
        return f"{self.conn.spec.provider_id}/{self.conn.model}"

    def cooling(self, now: float) -> bool:
        return self.cool_until > now

    def succeeded(self) -> None:
        if self.failures:
            self.failures = 0

    def failed(self, health: Health) -> None:
        """One more failure another target could fix; the last of a run starts a cooldown."""
        with self._lock:
            self.failures += 1
            if self.failures >= health.failures:
                self.failures = 0
                self.cool_until = time.monotonic() + health.cooldown

    def learn(self, headers: Any) -> None:
        """Read an answer's headers: a provider that says a rate-limit window is used up
        pauses every route to it (same key and URL) until the window resets."""
        if (
            headers.get("x-ratelimit-remaining-requests") != "0"
            and headers.get("x-ratelimit-remaining-tokens") != "0"
            and headers.get("anthropic-ratelimit-requests-remaining") != "0"
            and headers.get("anthropic-ratelimit-tokens-remaining") != "0"
        ):
            return
        limits = self.provider_limits
        if limits is None and self._share is not None:
            limits = self._share()
        if limits is not None:
            limits.learn(headers)

    def adopt(self) -> None:
        with self._lock:
            self._users += 1

    def drop(self) -> bool:
        """One route fewer uses it; True when none does (the caller retires it)."""
        with self._lock:
            self._users -= 1
            return self._users <= 0


class Route:
    """A model (and its fallbacks) with pooled connections and limits; see the module
    docstring. The generation methods are the connector's, with the same arguments."""

    def __init__(
        self,
        targets: tuple[Target, ...],
        metering: Metering,
        limits: Limits | None,
        health: Health,
        backoff_max: float,
        name: str | None = None,
        on_close: Callable[[Route], None] | None = None,
    ) -> None:
        self.targets = targets
        self.limits = limits
        self.name = name
        self._metering = metering
        self._health = health
        self._backoff_max = backoff_max
        self._on_close = on_close
        self._closed = False
        self._calls = fallback.Plan(targets, limits, metering, health, backoff_max)
        for target in targets:
            target.adopt()

    def __repr__(self) -> str:
        chain = " -> ".join(t.label for t in self.targets)
        named = f"{self.name}: " if self.name else ""
        return f"Route({named}{chain}{', closed' if self._closed else ''})"

    @property
    def provider(self) -> str:
        return self.targets[0].conn.spec.provider_id

    @property
    def model(self) -> str:
        return self.targets[0].conn.model

    def status(self) -> dict[str, Any]:
        """The primary target's connection status (never the key) plus the fallbacks."""
        status = self.targets[0].conn.status()
        status["route_name"] = self.name
        status["fallbacks"] = [t.label for t in self.targets[1:]]
        return status

    def profile(self) -> Any:
        """The primary target's `ModelProfile` (`Connection.profile()`, cached per
        connection)."""
        return self.targets[0].conn.profile()

    def close(self) -> None:
        """No new calls on this route; its connections close (after their running calls)
        unless another open route of the connector uses them. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._on_close is not None:
            self._on_close(self)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- the plan of one call ----------------------------------------------------------------

    def _plan(self) -> fallback.Plan:
        if self._closed:
            raise NotConnectedError(f"{self!r} is closed")
        return self._calls

    # -- the connector's string methods ---------------------------------------------------------

    @staticmethod
    def _text_request(
        prompt: object,
        system_prompt: object,
        context: Any,
        temperature: object,
        max_tokens: object,
        stop: object,
        timeout: object,
    ) -> Prepare:
        params = make_params(temperature, max_tokens, stop, timeout)  # fails before any I/O

        def prepare(conn: Connection) -> ChatRequest:
            return build_request(conn.model, prompt, system_prompt, context, params)

        return prepare

    def generate_response(
        self,
        prompt: str,
        system_prompt: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """As `LLMConnector.generate_response`, on this route."""
        prepare = self._text_request(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return self._plan().complete(prepare).text

    def stream_response(
        self,
        prompt: str,
        system_prompt: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
    ) -> Generator[str, None, None]:
        """As `LLMConnector.stream_response`, on this route."""
        prepare = self._text_request(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return self._plan().stream(prepare).text()  # type: ignore[return-value]

    async def agenerate_response(
        self,
        prompt: str,
        system_prompt: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Async twin of `generate_response`."""
        prepare = self._text_request(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return (await self._plan().acomplete(prepare)).text

    def astream_response(
        self,
        prompt: str,
        system_prompt: str | None = None,
        context: dict[str, Any] | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
    ) -> AsyncGenerator[str, None]:
        """Async twin of `stream_response`."""
        prepare = self._text_request(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return self._plan().astream(prepare).text()  # type: ignore[return-value]

    # -- the rich methods ---------------------------------------------------------------------

    @staticmethod
    def _chat_request(prompt: str | None, options: CallOptions) -> Prepare:
        params = make_params(
            options.get("temperature"),
            options.get("max_tokens"),
            options.get("stop"),
            options.get("timeout"),
        )

        def prepare(conn: Connection) -> ChatRequest:
            return build_chat_request(
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

        return prepare

    def complete(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> Response:
        """As `LLMConnector.complete`; `Response.provider`/`model` name the target that
        served."""
        return self._plan().complete(self._chat_request(prompt, options))

    def stream(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> ResponseStream:
        """As `LLMConnector.stream`; a fallback happens only before the first event."""
        return self._plan().stream(self._chat_request(prompt, options))

    async def acomplete(
        self, prompt: str | None = None, **options: Unpack[CallOptions]
    ) -> Response:
        """Async twin of `complete`."""
        return await self._plan().acomplete(self._chat_request(prompt, options))

    def astream(
        self, prompt: str | None = None, **options: Unpack[CallOptions]
    ) -> AsyncResponseStream:
        """Async twin of `stream`."""
        return self._plan().astream(self._chat_request(prompt, options))
