"""`LLMConnector`: connect to any of the registry's providers and talk to the model.

The facade resolves a provider and model (explicit `model_type`, else the `provider/` prefix,
each matched against ids and aliases case-insensitively), finds the key (argument, then the
provider's env vars in the spec's order, then the user key store) and base URL (argument,
then the provider's env var, then the config file, then the provider default), checks the
key's format before any network I/O, and opens one adapter. The adapter's client is reused by
every call until the next connect, `disconnect()` or `close()`.

The current connection is one immutable object swapped under a lock; calls read it once and
never keep per-call state on `self`. So `generate_response_with_model` — a one-off route with
its own adapter — never disturbs the current connection, from any thread.

Errors are typed (`rlm_code.core.exceptions`); `connect_to_model` returns True or raises.
Nothing here imports an HTTP stack or an SDK: adapters load them when a connection needs them.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # at run time `_load_dependencies` binds these names
    import logging
    import shutil
    import threading
    from collections.abc import AsyncGenerator, Generator, Mapping
    from dataclasses import replace
    from typing import Any

    from rlm_code.core.config import ConfigManager, normalize_ollama_host
    from rlm_code.core.exceptions import (
        InvalidAPIKeyFormatError,
        InvalidInputError,
        MissingAPIKeyError,
        ModelError,
        NotConnectedError,
        ProviderNotFoundError,
    )
    from rlm_code.core.redact import register_secret
    from rlm_code.models.adapters.base import Adapter, Endpoint, load_adapter
    from rlm_code.models.prompting import build_request, make_params
    from rlm_code.models.providers.model_catalog import get_superqode_models
    from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec
    from rlm_code.models.types import ChatRequest, Completion, StreamState
    from rlm_code.models.usage import UsageTracker, monotonic_ms


LOGGER_NAME = "rlm_code.connector"

# Key prefixes checked before any network call (spec: "API Key Format").
KEY_PREFIXES = {"openai": "sk-", "anthropic": "sk-ant-", "gemini": "AIza"}
KEY_LOOKALIKES = {"openai": ("sk-ant-", "Anthropic")}

OPENCODE_MODELS_TTL = 30.0  # seconds `opencode models` output is reused
OPENCODE_FREE_MODELS = frozenset({"big-pickle", "grok-code", "gpt-5-nano"})


def is_free_opencode_model(name: str) -> bool:
    """OpenCode Zen's free tier: `*-free` models and the named free ones."""
    base = name.split("/")[-1]
    return base.endswith("-free") or base in OPENCODE_FREE_MODELS


class _Connection:
    """One open connection: immutable once built, swapped whole under the connector's lock."""

    __slots__ = ("adapter", "endpoint", "key_source", "route", "spec")

    def __init__(
        self,
        spec: ProviderSpec,
        endpoint: Endpoint,
        adapter: Adapter,
        key_source: str | None,
        route: str,
    ) -> None:
        self.spec = spec
        self.endpoint = endpoint
        self.adapter = adapter
        self.key_source = key_source
        self.route = route  # "http", "sdk" or "cli"

    @property
    def model(self) -> str:
        return self.adapter.endpoint.model


def _load_dependencies() -> None:
    """Import what the connector needs, once, when the first connector is built.

    `import rlm_code.models.llm_connector` is benchmarked against a bare interpreter start, so
    the module itself imports nothing; the registry, config, errors and the adapters' base
    load here and are published as this module's globals for the methods below.
    """
    if "ModelError" in globals():
        return
    import logging
    import shutil
    import threading
    from dataclasses import replace

    from rlm_code.core import exceptions, redact
    from rlm_code.core.config import ConfigManager, normalize_ollama_host
    from rlm_code.models import prompting, usage
    from rlm_code.models.adapters.base import Endpoint, load_adapter
    from rlm_code.models.providers.model_catalog import get_superqode_models
    from rlm_code.models.providers.registry import ProviderRegistry
    from rlm_code.models.types import StreamState

    redact.install_log_redaction()
    globals().update(
        logging=logging,
        shutil=shutil,
        threading=threading,
        replace=replace,
        ConfigManager=ConfigManager,
        normalize_ollama_host=normalize_ollama_host,
        register_secret=redact.register_secret,
        Endpoint=Endpoint,
        load_adapter=load_adapter,
        build_request=prompting.build_request,
        make_params=prompting.make_params,
        get_superqode_models=get_superqode_models,
        ProviderRegistry=ProviderRegistry,
        StreamState=StreamState,
        UsageTracker=usage.UsageTracker,
        monotonic_ms=usage.monotonic_ms,
        InvalidAPIKeyFormatError=exceptions.InvalidAPIKeyFormatError,
        InvalidInputError=exceptions.InvalidInputError,
        MissingAPIKeyError=exceptions.MissingAPIKeyError,
        NotConnectedError=exceptions.NotConnectedError,
        ProviderNotFoundError=exceptions.ProviderNotFoundError,
        ModelError=exceptions.ModelError,  # last: its presence marks the load as done
    )


def _check_model_name(model_name: object) -> str:
    if not isinstance(model_name, str):
        raise InvalidInputError(f"model_name must be a string, got {type(model_name).__name__}")
    name = model_name.strip()
    if not name:
        raise InvalidInputError("model name is empty; e.g. 'ollama/llama3.2' or 'gpt-4o'")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InvalidInputError(
            f"model name {name!r} contains spaces or control characters; check the spelling"
        )
    if name.startswith("/") or name.endswith("/") or "//" in name:
        raise InvalidInputError(f"model name {name!r} has an empty part between slashes")
    return name


def _check_optional_str(value: object, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    return value.strip() or None


def _check_base_url(url: str, source: str) -> str:
    lowered = url.lower()
    if not lowered.startswith(("http://", "https://")) or len(url) < 10:
        raise InvalidInputError(
            f"base URL from {source} must start with http:// or https:// (got {url!r})"
        )
    return url.rstrip("/")


class LLMConnector:
    """Connects to one model at a time; generates plain, streamed and async replies."""

    def __init__(
        self,
        config_manager: ConfigManager | None = None,
        *,
        registry: ProviderRegistry | None = None,
    ) -> None:
        _load_dependencies()
        self.config_manager = config_manager if config_manager is not None else ConfigManager()
        self.provider_registry = registry if registry is not None else ProviderRegistry.default()
        self._lock = threading.Lock()
        self._connection: _Connection | None = None
        self._usage = UsageTracker()
        self._opencode_cache: tuple[float, list[str]] | None = None

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

    def close(self) -> None:
        """Disconnect and release the connection's clients."""
        self.disconnect()

    async def aclose(self) -> None:
        with self._lock:
            conn, self._connection = self._connection, None
        if conn is not None:
            await conn.adapter.aclose()

    # -- resolution ------------------------------------------------------------------------

    def _resolve_provider(self, model_name: str, model_type: str | None) -> ProviderSpec:
        registry = self.provider_registry
        if model_type is not None:
            spec = registry.get(model_type)
            if spec is None:
                raise ProviderNotFoundError(
                    f"unknown provider {model_type!r}; supported: "
                    + ", ".join(s.provider_id for s in registry.list_providers())
                )
            return spec
        spec = registry.infer_provider_from_model(model_name)
        if spec is None and "/" in model_name:
            prefix = model_name.split("/", 1)[0]
            raise ProviderNotFoundError(
                f"unknown provider {prefix!r} in {model_name!r}; supported: "
                + ", ".join(s.provider_id for s in registry.list_providers())
            )
        if spec is None:
            raise ProviderNotFoundError(
                f"cannot tell which provider serves {model_name!r}; name it as provider/model "
                "(e.g. 'anthropic/claude-sonnet-4-5-20250929') or pass model_type. Supported: "
                + ", ".join(s.provider_id for s in registry.list_providers())
            )
        return spec

    def _find_key(self, spec: ProviderSpec, api_key: str | None) -> tuple[str | None, str | None]:
        if api_key:
            return api_key, "argument"
        for var in spec.api_key_env_vars:
            value = self.config_manager.get_env(var)
            if value:
                return value, f"env:{var}"
        stored = self.config_manager.key_store.get(spec.provider_id)
        if stored:
            return stored, "key store"
        return None, None

    @staticmethod
    def _check_key(spec: ProviderSpec, key: str) -> None:
        register_secret(key)
        if any(ch.isspace() for ch in key) or not key.isprintable():
            raise InvalidAPIKeyFormatError(
                f"the {spec.display_name} API key contains spaces or control characters; "
                "copy it again without line breaks",
                provider=spec.provider_id,
            )
        prefix = KEY_PREFIXES.get(spec.provider_id)
        if prefix and not key.startswith(prefix):
            raise InvalidAPIKeyFormatError(
                f"{spec.display_name} API keys start with '{prefix}'; the key given does not",
                provider=spec.provider_id,
                hint=f"Check {' or '.join(spec.api_key_env_vars) or 'the api_key argument'}.",
            )
        lookalike = KEY_LOOKALIKES.get(spec.provider_id)
        if lookalike and key.startswith(lookalike[0]):
            raise InvalidAPIKeyFormatError(
                f"this looks like an {lookalike[1]} key, not a {spec.display_name} key",
                provider=spec.provider_id,
            )

    def _base_url(self, spec: ProviderSpec, base_url: str | None) -> str:
        if base_url:
            return _check_base_url(base_url, "the base_url argument")
        if spec.base_url_env_var:
            env_url = self.config_manager.get_env(spec.base_url_env_var)
            if env_url:
                if spec.provider_id == "ollama":
                    env_url = normalize_ollama_host(env_url)
                return _check_base_url(env_url, f"${spec.base_url_env_var}")
        configured = self.config_manager.provider_base_url(spec.provider_id)
        if configured:
            return _check_base_url(configured, str(self.config_manager.project_file))
        if spec.default_base_url:
            return spec.default_base_url.rstrip("/")
        raise InvalidInputError(
            f"{spec.display_name} has no default URL; pass base_url or set "
            f"{spec.base_url_env_var or 'its base URL in rlm_config.yaml'}",
            provider=spec.provider_id,
        )

    def _open(
        self,
        model_name: object,
        model_type: object = None,
        api_key: object = None,
        base_url: object = None,
        *,
        check: bool = True,
    ) -> _Connection:
        """Resolve everything and build a checked adapter, without touching `self`.

        `check=False` skips the adapter's connect-time check (used to list a provider's models
        without naming one).
        """
        name = _check_model_name(model_name)
        provider_arg = _check_optional_str(model_type, "model_type")
        key_arg = _check_optional_str(api_key, "api_key")
        url_arg = _check_optional_str(base_url, "base_url")
        if key_arg:
            register_secret(key_arg)
        spec = self._resolve_provider(name, provider_arg)
        model = self.provider_registry.normalize_model_name(spec.provider_id, name)
        model = _check_model_name(model)
        key, key_source = self._find_key(spec, key_arg)
        if key is None and spec.requires_api_key:
            raise MissingAPIKeyError(
                f"{spec.display_name} needs an API key: set "
                + " or ".join(spec.api_key_env_vars)
                + ", pass api_key=, or store one with `rlm-code config set-key "
                + spec.provider_id
                + "`",
                provider=spec.provider_id,
                hint="",
            )
        if key is not None:
            self._check_key(spec, key)
        endpoint = Endpoint(
            spec=spec,
            model=model,
            base_url=self._base_url(spec, url_arg),
            api_key=key,
            timeouts=self.config_manager.timeouts,
            retry=self.config_manager.retries,
        )
        route = "sdk" if spec.adapter_type in ("openai", "anthropic", "gemini") else "http"
        if spec.adapter_type == "ollama":
            read = self.config_manager.ollama_timeout
            endpoint = replace(endpoint, timeouts=replace(endpoint.timeouts, read=read))
        adapter_cls: type[Adapter]
        if (
            spec.provider_id == "opencode"
            and key is None
            and url_arg is None
            and shutil.which("opencode")
        ):
            from rlm_code.models.adapters.opencode_cli import OpenCodeCLIAdapter

            adapter_cls, route = OpenCodeCLIAdapter, "cli"
        else:
            adapter_cls = load_adapter(spec.adapter_type)
        adapter = adapter_cls(endpoint)
        try:
            if check:
                adapter.check()
        except BaseException:
            adapter.close()
            raise
        logging.getLogger(LOGGER_NAME).debug(
            "opened %s/%s at %s via %s",
            spec.provider_id,
            adapter.endpoint.model,
            endpoint.base_url,
            route,
        )
        return _Connection(spec, endpoint, adapter, key_source, route)

    # -- connection ------------------------------------------------------------------------

    def connect_to_model(
        self,
        model_name: str,
        model_type: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
    ) -> bool:
        """Connect to a model, replacing (and closing) the current connection.

        Returns True; raises a `ModelError` child when the provider, key, URL or model is
        wrong. Cloud providers are not contacted here. Local servers are: Ollama through
        `/api/tags` (a missing model fails with the installed models and the pull hint), the
        OpenAI-compatible ones through one short `/models` request, so a stopped server fails
        now rather than at the first prompt.
        """
        conn = self._open(model_name, model_type, api_key, base_url)
        with self._lock:
            previous, self._connection = self._connection, conn
        if previous is not None:
            previous.adapter.close()
        return True

    def disconnect(self) -> None:
        """Forget the current connection and close its client."""
        with self._lock:
            previous, self._connection = self._connection, None
        if previous is not None:
            previous.adapter.close()

    def _current(self) -> _Connection:
        conn = self._connection
        if conn is None:
            raise NotConnectedError("no model is connected")
        return conn

    def get_connection_status(self) -> dict[str, Any]:
        """What the connector is connected to; never the key itself."""
        conn = self._connection
        if conn is None:
            return {
                "connected": False,
                "provider": None,
                "model": None,
                "model_id": None,
                "base_url": None,
                "has_api_key": False,
                "connection_type": None,
                "adapter": None,
                "type": None,
            }
        spec = conn.spec
        return {
            "connected": True,
            "provider": spec.provider_id,
            "provider_name": spec.display_name,
            "model": conn.model,
            "model_id": f"{spec.provider_id}/{conn.model}",
            "base_url": conn.endpoint.base_url,
            "has_api_key": conn.endpoint.api_key is not None,
            "api_key_source": conn.key_source,
            "connection_type": spec.connection_type,
            "adapter": spec.adapter_type,
            "route": conn.route,
            "type": spec.provider_id,
        }

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
    ) -> tuple[_Connection, ChatRequest]:
        """The current connection and a validated request for it (no I/O, nothing recorded)."""
        conn = self._current()
        params = make_params(temperature, max_tokens, stop, timeout)
        return conn, build_request(conn.model, prompt, system_prompt, context, params)

    def _record(self, conn: _Connection, completion: Completion, started: float) -> str:
        self._usage.record(
            conn.spec.provider_id,
            conn.model,
            completion.usage,
            latency_ms=monotonic_ms() - started,
        )
        return completion.text

    def _complete(self, conn: _Connection, request: ChatRequest) -> str:
        started = monotonic_ms()
        try:
            completion = conn.adapter.complete(request)
        except ModelError:
            self._usage.record_failure()
            raise
        return self._record(conn, completion, started)

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
        """The connected model's whole reply to `prompt` (see `prompting` for `context`)."""
        return self._complete(
            *self._prepare(prompt, system_prompt, context, temperature, max_tokens, stop, timeout)
        )

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
        return self._stream(
            *self._prepare(prompt, system_prompt, context, temperature, max_tokens, stop, timeout)
        )

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
        conn, request = self._prepare(
            prompt, system_prompt, context, temperature, max_tokens, stop, timeout
        )
        started = monotonic_ms()
        try:
            completion = await conn.adapter.acomplete(request)
        except ModelError:
            self._usage.record_failure()
            raise
        return self._record(conn, completion, started)

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
        return self._astream(
            *self._prepare(prompt, system_prompt, context, temperature, max_tokens, stop, timeout)
        )

    def _stream(self, conn: _Connection, request: ChatRequest) -> Generator[str, None, None]:
        state = StreamState()
        started = monotonic_ms()
        chunks = conn.adapter.stream(request, state)
        failed = False
        try:
            yield from chunks
        except ModelError:
            failed = True
            raise
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
            self._finish_stream(conn, state, started, failed)

    async def _astream(self, conn: _Connection, request: ChatRequest) -> AsyncGenerator[str, None]:
        state = StreamState()
        started = monotonic_ms()
        chunks = conn.adapter.astream(request, state)
        failed = False
        try:
            async for chunk in chunks:
                yield chunk
        except ModelError:
            failed = True
            raise
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                await aclose()
            self._finish_stream(conn, state, started, failed)

    def _finish_stream(
        self, conn: _Connection, state: StreamState, started: float, failed: bool
    ) -> None:
        if failed and state.chunks == 0 and state.prompt_tokens is None:
            self._usage.record_failure()
            return
        self._usage.record(
            conn.spec.provider_id,
            conn.model,
            state.usage(),
            streamed=True,
            interrupted=not state.completed,
            latency_ms=monotonic_ms() - started,
        )

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
        """One reply from another model through a temporary route of its own.

        The current connection is neither read nor changed, whether this succeeds or fails
        and whatever other threads do meanwhile.
        """
        params = make_params(temperature, max_tokens, stop, timeout)
        conn = self._open(model_name, model_type, api_key, base_url)
        try:
            request = build_request(conn.model, prompt, system_prompt, context, params)
            return self._complete(conn, request)
        finally:
            conn.adapter.close()

    # -- usage -----------------------------------------------------------------------------

    def usage_snapshot(self) -> dict[str, int]:
        """Compact counters (`total_calls`, `prompt_tokens`, `completion_tokens`,
        `unknown_usage_calls`) for `usage_delta`."""
        return self._usage.snapshot()

    @staticmethod
    def usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
        """`after - before` for calls and tokens (plus `unknown_usage_calls` when non-zero)."""
        from rlm_code.models.usage import usage_delta

        return usage_delta(before or {}, after or {})

    def get_usage_summary(self) -> dict[str, Any]:
        """`totals`, `by_model` keyed `provider/model`, and `last_call`."""
        return self._usage.summary()

    def reset_usage(self) -> None:
        self._usage.reset()

    # -- providers and models --------------------------------------------------------------

    def _key_present(self, spec: ProviderSpec) -> bool:
        if any(self.config_manager.get_env(var) for var in spec.api_key_env_vars):
            return True
        try:
            return self.config_manager.key_store.get(spec.provider_id) is not None
        except ModelError:
            return False
        except Exception:
            return False

    def get_supported_providers(self) -> list[dict[str, Any]]:
        """Every provider with its metadata and whether it is ready to use."""
        providers = []
        for spec in self.provider_registry.list_providers():
            key_present = bool(spec.api_key_env_vars) and self._key_present(spec)
            providers.append(
                {
                    "id": spec.provider_id,
                    "name": spec.display_name,
                    "adapter": spec.adapter_type,
                    "aliases": list(spec.aliases),
                    "docs_url": spec.docs_url,
                    "configured": key_present or not spec.requires_api_key,
                    "has_api_key": key_present,
                    "requires_api_key": spec.requires_api_key,
                    "api_key_env_vars": list(spec.api_key_env_vars),
                    "base_url_env_var": spec.base_url_env_var,
                    "default_base_url": spec.default_base_url,
                    "connection_type": spec.connection_type,
                    "category": spec.category,
                    "example_models": list(spec.example_models),
                }
            )
        return providers

    def list_provider_example_models(self, provider_name: str, limit: int = 8) -> list[str]:
        """Curated models first, then the spec's examples.

        For OpenCode, the local `opencode models` list comes first when the CLI is on PATH
        (cached for 30 s); without `OPENCODE_API_KEY` only its free models are listed.
        """
        spec = self.provider_registry.get(provider_name)
        if spec is None:
            raise ProviderNotFoundError(f"unknown provider {provider_name!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInputError("limit must be a whole number of at least 1")
        sources = [get_superqode_models(spec.provider_id), spec.example_models]
        if spec.provider_id == "opencode":
            sources.insert(0, self._opencode_cli_models())
        models: list[str] = []
        for source in sources:
            for name in source:
                if name not in models:
                    models.append(name)
        if spec.provider_id == "opencode" and not self._key_present(spec):
            models = [m for m in models if is_free_opencode_model(m)]
        return models[:limit]

    def _opencode_cli_models(self) -> list[str]:
        """OpenCode Zen models from `opencode models` (lines `opencode/<model>`), cached 30 s.

        Empty when the CLI is missing, slow (5 s) or failing: the catalog still applies.
        """
        import subprocess
        import time

        cached = self._opencode_cache
        if cached is not None and time.monotonic() - cached[0] < OPENCODE_MODELS_TTL:
            return cached[1]
        models: list[str] = []
        executable = shutil.which("opencode")
        if executable is not None:
            try:
                done = subprocess.run(
                    [executable, "models"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    stdin=subprocess.DEVNULL,
                    check=False,
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                logging.getLogger(LOGGER_NAME).info("`opencode models` failed: %s", exc)
            else:
                for line in done.stdout.splitlines() if done.returncode == 0 else []:
                    token = line.strip().split(" ", 1)[0]
                    if token.startswith("opencode/") and len(token) > len("opencode/"):
                        name = token[len("opencode/") :]
                        if name not in models:
                            models.append(name)
        self._opencode_cache = (time.monotonic(), models)
        return models

    def list_available_ollama_models(self) -> list[str]:
        """Installed Ollama models with their tags; `[]` (and a logged reason) if unreachable."""
        conn = self._connection
        if conn is not None and conn.spec.provider_id == "ollama":
            try:
                return conn.adapter.list_models()
            except ModelError as exc:
                logging.getLogger(LOGGER_NAME).info("Ollama model listing failed: %s", exc)
                return []
        spec = self.provider_registry.get("ollama")
        assert spec is not None
        from rlm_code.models.adapters.ollama import OllamaAdapter

        try:
            endpoint = Endpoint(
                spec=spec,
                model="",
                base_url=self._base_url(spec, None),
                timeouts=self.config_manager.timeouts,
                retry=self.config_manager.retries,
            )
            adapter = OllamaAdapter(endpoint)
        except ModelError as exc:
            logging.getLogger(LOGGER_NAME).info("Ollama model listing failed: %s", exc)
            return []
        try:
            return adapter.list_models()
        except ModelError as exc:
            logging.getLogger(LOGGER_NAME).info(
                "Ollama at %s is not answering: %s", endpoint.base_url, exc
            )
            return []
        finally:
            adapter.close()

    def list_models(
        self, provider_name: str | None = None, *, live_only: bool = False
    ) -> list[str]:
        """The models the provider's own API lists for this account.

        Uses the current connection when it is to that provider (or no provider is named),
        else a temporary route with the provider's configured key and URL. When the provider
        cannot be asked (no key, server down, an error), returns the curated catalog instead
        and logs why — or, with `live_only=True`, raises the typed error.
        """
        conn = self._connection
        if provider_name is None:
            if conn is None:
                raise NotConnectedError("no model is connected and no provider was named")
            spec = conn.spec
        else:
            found = self.provider_registry.get(provider_name)
            if found is None:
                raise ProviderNotFoundError(f"unknown provider {provider_name!r}")
            spec = found
        temporary: _Connection | None = None
        try:
            if conn is not None and conn.spec.provider_id == spec.provider_id:
                adapter = conn.adapter
            else:
                temporary = self._open(f"{spec.provider_id}/list", check=False)
                adapter = temporary.adapter
            return adapter.list_models()
        except ModelError as exc:
            if live_only:
                raise
            logging.getLogger(LOGGER_NAME).info(
                "listing %s models failed (%s); using the catalog", spec.provider_id, exc
            )
            return self.list_provider_example_models(spec.provider_id, limit=1000)
        finally:
            if temporary is not None:
                temporary.adapter.close()

    def discover_local_providers(self, timeout: float = 1.5) -> list[dict[str, Any]]:
        """Probe every local server concurrently: one dict per distinct URL probed (rows that
        share a URL, like llama.cpp, MLX, TGI and the generic row on :8080, are reported once)."""
        from rlm_code.models.providers.local_discovery import discover_local_providers

        return discover_local_providers(self.provider_registry, self.config_manager, timeout)

    def discover_acp_agents(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        """ACP-compatible coding agents on PATH, with version and readiness."""
        from rlm_code.models.providers.acp_discovery import discover_acp_agents

        return discover_acp_agents(timeout=timeout, config_manager=self.config_manager)


__all__ = ["LLMConnector", "is_free_opencode_model"]
