"""The connector's routes: `route()`, `generate_response_with_model` (and its async twin)
through them, named routes from the config files, `profile()`.

`LLMConnector` inherits these. Routes are cached twice: by the arguments of the call that
made them (so a repeated `generate_response_with_model(prompt, "groq/llama...")` costs one dict
look-up, no resolution), and by what they resolved to (so two spellings of one target share one
route). Their targets — one `Connection`, one client each — are cached by provider, model, base
URL and a digest of the key, and shared by every route that names them. A route resolved once
keeps what it resolved (env vars and config read then) until `close()`.

When `connect_to_model(NAME)` names a configured route, the connector's own generation methods
run through that route (fallbacks and limits included); `get_connection_status()` shows its
primary target.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Unpack

from rlm_code.core.exceptions import InvalidInputError, ProviderConnectionError
from rlm_code.models.connection import Connection
from rlm_code.models.limits import Limits, check_limit
from rlm_code.models.message_calls import CallOptions, MessageCalls
from rlm_code.models.prompting import make_params
from rlm_code.models.resolve import resolve, resolve_provider, warn_once
from rlm_code.models.routes import Health, Route, Target, target_key
from rlm_code.models.streaming import AsyncResponseStream, ResponseStream
from rlm_code.models.types import Response

if TYPE_CHECKING:
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.providers.registry import ProviderRegistry

__all__ = ["RouteMethods"]

log = logging.getLogger("rlm_code.routes")

_LIMIT_NAMES = ("max_concurrency", "requests_per_minute", "tokens_per_minute")


class _Pool:
    """A connector's routes, targets and provider limits (see the module docstring)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_args: dict[tuple[Any, ...], Route] = {}
        self.by_target: dict[tuple[Any, ...], Route] = {}
        self.targets: dict[tuple[str, ...], Target] = {}
        self.provider_limits: dict[tuple[str, ...], Limits] = {}

    def take_all(self) -> list[Target]:
        with self.lock:
            targets = list(self.targets.values())
            routes = list(self.by_target.values())
            self.by_args.clear()
            self.by_target.clear()
            self.targets.clear()
        for route in routes:
            route._closed = True  # the connector is closing: no new calls on any route
        return targets


class RouteMethods(MessageCalls):
    """Routes of a connector; the host class provides config, registry, metering and
    `_active_route` (the route `connect_to_model` chose, or None)."""

    config_manager: ConfigManager
    provider_registry: ProviderRegistry
    _active_route: Route | None
    _connection: Connection | None
    _pool: _Pool

    # -- making routes ------------------------------------------------------------------------

    def route(
        self,
        model_name: str,
        model_type: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        fallbacks: Sequence[str | Mapping[str, str] | Route] = (),
        max_concurrency: int | None = None,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> Route:
        """A pooled `Route` to `model_name` (or the configured route of that name), trying
        `fallbacks` (model strings, `{model, base_url}` mappings or `Route`s) in order, under
        the given limits. Resolving it does no network I/O for cloud providers; a local server
        is checked once, when its target is first made. The same arguments return the same
        route."""
        if isinstance(fallbacks, str | bytes) or not isinstance(fallbacks, Sequence):
            raise InvalidInputError("fallbacks must be a list of model names or routes")
        args = (
            model_name,
            model_type,
            api_key,
            base_url,
            tuple(map(_fallback_id, fallbacks)),
            max_concurrency,
            requests_per_minute,
            tokens_per_minute,
        )
        pool = self._pool
        found = pool.by_args.get(args)
        if found is not None and not found.closed:
            return found
        limits = [check_limit(v, n) for v, n in zip(args[5:], _LIMIT_NAMES, strict=True)]
        if max_concurrency is not None and (limits[0] is None or limits[0] != int(limits[0])):
            raise InvalidInputError("max_concurrency must be a whole number of at least 1")
        name = None
        named = None
        if model_type is None and api_key is None and base_url is None:
            named = self.config_manager.route_settings(model_name)
        if named is not None:
            name = model_name
            settings, from_project = named
            model_name = settings["model"]
            base_url = self._route_url(model_name, settings.get("base_url"), from_project)
            fallbacks = [
                *fallbacks,
                *(
                    _fallback_from(item, self, from_project)
                    for item in settings.get("fallbacks", ())
                ),
            ]
            limits = [
                lim if lim is not None else settings.get(n)
                for lim, n in zip(limits, _LIMIT_NAMES, strict=True)
            ]
        targets = [self._target(model_name, model_type, api_key, base_url)]
        for item in fallbacks:
            if isinstance(item, Route):
                targets += [t for t in item.targets if t not in targets]
            else:
                url = item.get("base_url") if isinstance(item, Mapping) else None
                model = item.get("model") if isinstance(item, Mapping) else item
                target = self._target(model, None, None, url)
                if target not in targets:
                    targets.append(target)
        own = Limits(*limits) if any(v is not None for v in limits) else None
        resolved_key = (tuple(t.key for t in targets), *limits, name)
        with pool.lock:
            route = pool.by_target.get(resolved_key)
            if route is None or route.closed:
                route = Route(
                    tuple(targets),
                    self._metering,
                    own,
                    self._health(),
                    self.config_manager.retries.backoff_max,
                    name,
                    self._route_closed,
                )
                pool.by_target[resolved_key] = route
            pool.by_args[args] = route
        return route

    def _health(self) -> Health:
        failures, seconds = self.config_manager.route_cooldown
        return Health(failures, seconds)

    def _route_url(self, model: str, url: str | None, from_project: bool) -> str | None:
        """A project file's route may not send a key-bearing provider elsewhere (the rule of
        `resolve.configured_base_url`): such a URL is ignored with one warning."""
        if url is None or not from_project or self.config_manager.trusts_project_urls:
            return url
        spec = resolve_provider(self.provider_registry, model, None)
        if spec.is_local:
            return url
        warn_once(
            f"ignoring the base_url of a route to {spec.display_name} in the project file: a "
            "project file may not redirect a cloud provider's key; set "
            "RLM_CODE_TRUST_PROJECT_URLS=1 or trust_project_base_urls: true in your user config"
        )
        return None

    def _target(
        self, model_name: object, model_type: object, api_key: object, base_url: object
    ) -> Target:
        resolved = resolve(
            self.config_manager, self.provider_registry, model_name, model_type, api_key, base_url
        )
        e = resolved.endpoint
        key = target_key(e.provider_id, e.model, e.base_url, e.api_key)
        pool = self._pool
        target = pool.targets.get(key)
        if target is not None:
            return target
        adapter = resolved.adapter_class(e)
        try:
            adapter.check()
        except ProviderConnectionError as exc:  # down now: its calls fail (and fall back)
            log.info(
                "%s/%s is unreachable (%s); its route calls will fail over",
                e.provider_id,
                e.model,
                exc,
            )
        except BaseException:
            adapter.close()
            raise
        provider_key = (e.provider_id, e.base_url, key[3])

        def share() -> Limits:
            with pool.lock:
                limits = pool.provider_limits.setdefault(provider_key, Limits())
                for other in pool.targets.values():
                    if other.key[0] == e.provider_id and other.key[2:] == key[2:]:
                        other.provider_limits = limits
            return limits

        with pool.lock:
            target = pool.targets.get(key)
            if target is None:
                limits = pool.provider_limits.get(provider_key)
                if limits is None:
                    configured = self.config_manager.provider_limits(e.provider_id)
                    if configured is not None:
                        limits = pool.provider_limits[provider_key] = Limits(*configured)
                conn = Connection(resolved, adapter, self.config_manager)
                target = pool.targets[key] = Target(conn, key, limits, share)
                watch = getattr(adapter, "watch_headers", None)
                if watch is not None:
                    watch(target.learn)
                return target
        adapter.close()  # another thread made it first
        return target

    def _route_closed(self, route: Route) -> None:
        pool = self._pool
        retire = []
        with pool.lock:
            for table in (pool.by_args, pool.by_target):
                for k in [k for k, r in table.items() if r is route]:
                    del table[k]
            for target in route.targets:
                if target.drop() and pool.targets.get(target.key) is target:
                    del pool.targets[target.key]
                    retire.append(target)
        for target in retire:
            if target.conn is not self._connection:  # else retired when it is replaced
                target.conn.retire()

    def _close_routes(self) -> None:
        for target in self._pool.take_all():
            target.conn.retire()

    async def _aclose_routes(self) -> None:
        for target in self._pool.take_all():
            await target.conn.aretire()

    def _named_route(self, model_name: str, *others: object) -> Route | None:
        """The configured route `model_name` names (no other argument given), else None."""
        if any(other is not None for other in others) or not isinstance(model_name, str):
            return None
        if self.config_manager.route_settings(model_name) is None:
            return None
        return self.route(model_name)

    def _pooled(self, conn: Connection) -> bool:
        return any(t.conn is conn for t in self._pool.targets.values())

    # -- calls on another model ---------------------------------------------------------------

    def _route_for(
        self, model_name: str, model_type: str | None, api_key: str | None, base_url: str | None
    ) -> Route:
        route = self._pool.by_args.get(
            (model_name, model_type, api_key, base_url, (), None, None, None)
        )
        if route is None or route.closed:
            route = self.route(model_name, model_type, api_key, base_url)
        return route

    def generate_response_with_model(
        self,
        prompt: str,
        model_name: str,
        model_type: str | None = None,
        system_prompt: str | None = None,
        context: dict[str, Any] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """One reply from another model (or a configured route), through its pooled route.

        The current connection is neither read nor changed. The route is made on the first
        call and reused: later calls to the same model share its client and resolve nothing.
        """
        make_params(temperature, max_tokens, stop, timeout)  # bad arguments fail before I/O
        return self._route_for(model_name, model_type, api_key, base_url).generate_response(
            prompt,
            system_prompt,
            context,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            timeout=timeout,
        )

    async def agenerate_response_with_model(
        self,
        prompt: str,
        model_name: str,
        model_type: str | None = None,
        system_prompt: str | None = None,
        context: dict[str, Any] | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        stop: str | list[str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Async twin of `generate_response_with_model`. Making the route (the first call to
        a model) may check a local server with a short blocking request."""
        make_params(temperature, max_tokens, stop, timeout)
        route = self._route_for(model_name, model_type, api_key, base_url)
        return await route.agenerate_response(
            prompt,
            system_prompt,
            context,
            temperature=temperature,
            max_tokens=max_tokens,
            stop=stop,
            timeout=timeout,
        )

    def profile(self) -> Any:
        """The connected model's `ModelProfile` (context window, capabilities, sources)."""
        route = self._active_route
        if route is not None:
            return route.profile()
        conn = self._hold_current()
        try:
            return conn.profile()
        finally:
            conn.release()

    # -- the rich methods through the connected route -----------------------------------------

    def complete(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> Response:
        route = self._active_route
        if route is not None:
            return route.complete(prompt, **options)
        return super().complete(prompt, **options)

    def stream(self, prompt: str | None = None, **options: Unpack[CallOptions]) -> ResponseStream:
        route = self._active_route
        if route is not None:
            return route.stream(prompt, **options)
        return super().stream(prompt, **options)

    async def acomplete(
        self, prompt: str | None = None, **options: Unpack[CallOptions]
    ) -> Response:
        route = self._active_route
        if route is not None:
            return await route.acomplete(prompt, **options)
        return await super().acomplete(prompt, **options)

    def astream(
        self, prompt: str | None = None, **options: Unpack[CallOptions]
    ) -> AsyncResponseStream:
        route = self._active_route
        if route is not None:
            return route.astream(prompt, **options)
        return super().astream(prompt, **options)

    complete.__doc__ = MessageCalls.complete.__doc__
    stream.__doc__ = MessageCalls.stream.__doc__
    acomplete.__doc__ = MessageCalls.acomplete.__doc__
    astream.__doc__ = MessageCalls.astream.__doc__


def _fallback_id(item: object) -> object:
    """A hashable stand-in for one fallback, for the cache of arguments."""
    if isinstance(item, Route | str):
        return item
    if isinstance(item, Mapping):
        return tuple(sorted((str(k), str(v)) for k, v in item.items()))
    raise InvalidInputError(
        f"a fallback must be a model name, a {{model, base_url}} mapping or a Route, "
        f"not {type(item).__name__}"
    )


def _fallback_from(item: Any, owner: RouteMethods, from_project: bool) -> str | dict[str, str]:
    """One configured fallback, with a project file's URL under the trust rule."""
    if isinstance(item, str):
        return item
    url = owner._route_url(item["model"], item.get("base_url"), from_project)
    return {"model": item["model"], **({"base_url": url} if url else {})}
