"""`LLMConnector`: connect to any of the registry's providers and talk to the model.

The facade is thin on purpose. Resolution (provider, model, key, base URL, which adapter) is
`rlm_code.models.resolve`; building the request is `prompting`; the wire is the adapter's;
usage accounting is `usage`. What stays here is the order of those steps and the life of the
current connection (`connection.Connection`): one object, swapped whole under a lock, held
by each call while it runs, so a model switch never disturbs a call already under way.

Every generation method (the spec's string methods here, `complete`/`stream` and their async
twins in `message_calls`) goes through one path: a validated `ChatRequest`, the adapter's
`Response` (or its events wrapped in a `ResponseStream`), one usage record. Errors are typed;
`connect_to_model` returns True or raises. Nothing here imports an HTTP stack or an SDK:
adapters load them when a connection needs them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import (
    InvalidInputError,
    ModelError,
    NotConnectedError,
    ProviderNotFoundError,
)
from rlm_code.core.redact import install_log_redaction
from rlm_code.models import calls
from rlm_code.models.budget import Budget
from rlm_code.models.connection import NOT_CONNECTED_STATUS, Connection
from rlm_code.models.metering import Metering
from rlm_code.models.prompting import build_request, make_params
from rlm_code.models.provider_status import supported_providers
from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec
from rlm_code.models.resolve import curated_models, resolve
from rlm_code.models.route_api import RouteMethods, _Pool
from rlm_code.models.routes import Route
from rlm_code.models.types import ChatRequest
from rlm_code.models.usage import UsageTracker
from rlm_code.models.usage_api import UsageMethods

log = logging.getLogger("rlm_code.connector")


class LLMConnector(RouteMethods, UsageMethods):
    """Connects to one model (or configured route) at a time; generates plain, streamed and
    async replies (`complete`/`stream`/`acomplete`/`astream`, from `MessageCalls`, return typed
    `Response`s and events); `route()` gives pooled handles on other models (`route_api`)."""

    def __init__(
        self,
        config_manager: ConfigManager | None = None,
        *,
        registry: ProviderRegistry | None = None,
        budget: Budget | None = None,
    ) -> None:
        install_log_redaction()
        self.config_manager = config_manager if config_manager is not None else ConfigManager()
        self.provider_registry = registry if registry is not None else ProviderRegistry.default()
        self._lock = threading.Lock()
        self._connection: Connection | None = None
        self._active_route: Route | None = None  # connect_to_model(NAME of a configured route)
        self._pool = _Pool()
        self._metering = Metering(UsageTracker(), self._open_ledger)
        self.budget = budget

    def __repr__(self) -> str:
        conn = self._connection
        target = f"{conn.spec.provider_id}/{conn.model}" if conn else "not connected"
        return f"LLMConnector({target})"

    # -- context management ----------------------------------------------------------------

    def __enter__(self) -> LLMConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> LLMConnector:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _open_ledger(self) -> Any:
        """The persistent usage ledger as configured (None when it is off); opened by
        metering on the first call, so a connector that makes no call opens nothing."""
        from rlm_code.models.ledger import Ledger

        return Ledger.from_settings(self.config_manager)

    def close(self) -> None:
        """Disconnect; the client closes when the calls still running on it have ended."""
        self.disconnect()
        self._close_routes()
        self._metering.close()

    async def aclose(self) -> None:
        with self._lock:
            conn, self._connection, self._active_route = self._connection, None, None
        if conn is not None and not self._pooled(conn):
            await conn.aretire()
        await self._aclose_routes()
        self._metering.close()

    # -- connection ------------------------------------------------------------------------

    def _open(
        self,
        model_name: object,
        model_type: object = None,
        api_key: object = None,
        base_url: object = None,
        *,
        check: bool = True,
    ) -> Connection:
        """Resolve everything and build an adapter, without touching `self`.

        `check=False` skips the adapter's connect-time check (used to list a provider's models
        without naming one).
        """
        resolved = resolve(
            self.config_manager, self.provider_registry, model_name, model_type, api_key, base_url
        )
        adapter = resolved.adapter_class(resolved.endpoint)
        try:
            if check:
                adapter.check()
        except BaseException:
            adapter.close()
            raise
        endpoint = adapter.endpoint
        log.debug(
            "opened %s/%s at %s via %s",
            endpoint.provider_id,
            endpoint.model,
            endpoint.base_url,
            resolved.route,
        )
        return Connection(resolved, adapter, self.config_manager)

    def connect_to_model(
        self,
        model_name: str,
        model_type: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
    ) -> bool:
        """Connect to a model, replacing the current connection.

        Returns True; raises a `ModelError` child when the provider, key, URL or model is
        wrong. Cloud providers are not contacted here. Local servers are: Ollama through
        `/api/tags` (a missing model fails with the installed models and the pull hint), the
        OpenAI-compatible ones through one short `/models` request, so a stopped server fails
        now rather than at the first prompt. Calls already running on the previous connection
        finish on it; its client closes after the last of them. The name of a configured route
        connects to that route: calls use its fallbacks and limits.
        """
        route = self._named_route(model_name, model_type, api_key, base_url)
        conn = (
            route.targets[0].conn
            if route
            else self._open(model_name, model_type, api_key, base_url)
        )
        with self._lock:
            previous, self._connection, self._active_route = self._connection, conn, route
        if previous is not None and not self._pooled(previous):
            previous.retire()
        return True

    def disconnect(self) -> None:
        """Forget the current connection (its client closes once its running calls end)."""
        with self._lock:
            previous, self._connection, self._active_route = self._connection, None, None
        if previous is not None and not self._pooled(previous):
            previous.retire()

    def _hold_current(self) -> Connection:
        with self._lock:
            conn = self._connection
            if conn is None:
                raise NotConnectedError("no model is connected")
            conn.hold()
        return conn

    def get_connection_status(self) -> dict[str, Any]:
        """What the connector is connected to; never the key itself."""
        route, conn = self._active_route, self._connection
        if route is not None:
            return route.status()
        return conn.status() if conn is not None else dict(NOT_CONNECTED_STATUS)

    # -- generation ------------------------------------------------------------------------

    def _prepare(
        self,
        prompt: object,
        system_prompt: object,
        context: Mapping[str, Any] | None,
        temperature: object,
        max_tokens: object,
        stop: object,
        timeout: object,
        conn: Connection | None = None,
    ) -> tuple[Connection, ChatRequest]:
        """A held connection (the current one unless given) and a validated request for it.

        No I/O; nothing is recorded. The caller must release the connection."""
        params = make_params(temperature, max_tokens, stop, timeout)
        if conn is None:
            conn = self._hold_current()
        else:
            conn.hold()
        try:
            request = build_request(conn.model, prompt, system_prompt, context, params)
        except BaseException:
            conn.release()
            raise
        return conn, request

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
        """The connected model's whole reply to `prompt` (see `prompting` for `context`).

        `timeout` bounds the whole call, connecting and reading included."""
        if (route := self._active_route) is not None:
            return route.generate_response(
                prompt, system_prompt, context, **_kw(temperature, max_tokens, stop, timeout)
            )
        prepared = self._prepare(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return calls.complete(*prepared, self._metering).text

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
        """Yield the reply's text as it arrives. Stopping early closes the connection
        cleanly and still records the usage received so far."""
        if (route := self._active_route) is not None:
            return route.stream_response(
                prompt, system_prompt, context, **_kw(temperature, max_tokens, stop, timeout)
            )
        prepared = self._prepare(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return calls.stream(*prepared, self._metering).text()  # type: ignore[return-value]

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
        if (route := self._active_route) is not None:
            return await route.agenerate_response(
                prompt, system_prompt, context, **_kw(temperature, max_tokens, stop, timeout)
            )
        prepared = self._prepare(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return (await calls.acomplete(*prepared, self._metering)).text

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
        """Async twin of `stream_response` (use with `async for`)."""
        if (route := self._active_route) is not None:
            return route.astream_response(
                prompt, system_prompt, context, **_kw(temperature, max_tokens, stop, timeout)
            )
        prepared = self._prepare(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        return calls.astream(*prepared, self._metering).text()  # type: ignore[return-value]

    # -- providers and models --------------------------------------------------------------

    def get_supported_providers(self) -> list[dict[str, Any]]:
        """Every provider with its metadata and whether it is ready to use."""
        return supported_providers(self.config_manager, self.provider_registry)

    def list_provider_example_models(self, provider_name: str, limit: int = 8) -> list[str]:
        """The provider's curated models (`resolve.curated_models`), at most `limit`.

        An unknown provider gives `[]`, as the original implementation did."""
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError("limit must be a whole number of at least 1")
        spec = self.provider_registry.get(provider_name)
        if spec is None:
            return []
        return curated_models(self.config_manager, spec)[:limit]

    def list_available_ollama_models(self) -> list[str]:
        """Installed Ollama models with their tags; `[]` (and a logged reason) if unreachable."""
        try:
            return self.list_models("ollama", live_only=True)
        except ModelError as exc:
            log.info("Ollama model listing failed: %s", exc)
            return []

    def _provider(self, provider_name: str | None) -> ProviderSpec:
        if provider_name is None:
            conn = self._connection
            if conn is None:
                raise NotConnectedError("no model is connected and no provider was named")
            return conn.spec
        spec = self.provider_registry.get(provider_name)
        if spec is None:
            raise ProviderNotFoundError(f"unknown provider {provider_name!r}")
        return spec

    def list_models(
        self, provider_name: str | None = None, *, live_only: bool = False
    ) -> list[str]:
        """The models the provider's own API lists for this account.

        Uses the current connection when it is to that provider (or no provider is named),
        else a temporary one with the provider's configured key and URL. When the provider
        cannot be asked (no key, server down, an error), returns the curated catalog instead
        and logs why — or, with `live_only=True`, raises the typed error.
        """
        spec = self._provider(provider_name)
        with self._lock:
            conn = self._connection
            if conn is not None and conn.spec.provider_id == spec.provider_id:
                conn.hold()
            else:
                conn = None
        try:
            if conn is None:
                conn = self._open(f"{spec.provider_id}/list", check=False)
                conn.hold()
                conn.retire()  # temporary: closed when released below
            return conn.adapter.list_models()
        except ModelError as exc:
            if live_only:
                raise
            log.info("listing %s models failed (%s); using the catalog", spec.provider_id, exc)
            return curated_models(self.config_manager, spec)
        finally:
            if conn is not None:
                conn.release()

    def discover_local_providers(self, timeout: float = 1.5) -> list[dict[str, Any]]:
        """Probe every local server concurrently: one dict per distinct URL probed (rows that
        share a URL, like llama.cpp, MLX, TGI and the generic row on :8080, are reported once)."""
        from rlm_code.models.providers.local_discovery import discover_local_providers

        return discover_local_providers(self.provider_registry, self.config_manager, timeout)

    def discover_acp_agents(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """ACP-compatible coding agents on PATH, with version and readiness."""
        from rlm_code.models.providers.acp_discovery import discover_acp_agents

        return discover_acp_agents(timeout=timeout, config_manager=self.config_manager)


def _kw(temperature: Any, max_tokens: Any, stop: Any, timeout: Any) -> dict[str, Any]:
    return {"temperature": temperature, "max_tokens": max_tokens, "stop": stop, "timeout": timeout}


__all__ = ["LLMConnector"]
