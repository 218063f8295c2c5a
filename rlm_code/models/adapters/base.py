"""The adapter contract, and the table that maps an adapter type to its implementation.

An adapter owns one connection's client (an HTTP pool or an SDK client), created when the
connection is made and reused by every call until `close()`. It turns a `ChatRequest` into
the provider's wire format and the answer back into a `Response` (whole calls) or a generator
of typed events (`TextDelta`, `UsageReport`, then `StreamEnd` when the provider's end marker
arrives), reporting the provider's own token counts. It maps every failure to a typed
`ModelError` at its boundary; nothing else escapes. A stream generator that is closed early
releases its connection.

The table `ADAPTERS` names each implementation by import path, so importing this module loads
no HTTP stack and no SDK; `load_adapter` imports one when a connection first needs it.
Adding an adapter is one new module plus one row here (a test checks every registry adapter
type has a row and that each row's class declares the same `adapter_type`).
"""

from __future__ import annotations

import importlib
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlm_code.core.config import RetrySettings, TimeoutSettings
from rlm_code.core.exceptions import ModelError, SDKNotInstalledError
from rlm_code.models.profiles import ModelProfile, build_profile
from rlm_code.models.providers.registry import ProviderSpec
from rlm_code.models.types import (
    AdapterEvent,
    ChatRequest,
    GenerationParams,
    Response,
    ToolCall,
    Usage,
    final_finish_reason,
    normalize_finish_reason,
)

ADAPTERS: dict[str, str] = {
    "ollama": "rlm_code.models.adapters.ollama:OllamaAdapter",
    "openai": "rlm_code.models.adapters.openai_sdk:OpenAIAdapter",
    "anthropic": "rlm_code.models.adapters.anthropic_sdk:AnthropicAdapter",
    "gemini": "rlm_code.models.adapters.gemini_sdk:GeminiAdapter",
    "openai_compatible": "rlm_code.models.adapters.openai_compatible:OpenAICompatibleAdapter",
}

# Install commands shown when an SDK is missing: the extra, then the SDK's own minimum.
SDK_INSTALL = {
    "openai": ('pip install "rlm-code[openai]"', 'pip install "openai>=2.8.1"'),
    "anthropic": ('pip install "rlm-code[anthropic]"', "pip install anthropic"),
    "google.genai": ('pip install "rlm-code[gemini]"', 'pip install "google-genai>=1.52.0"'),
}


@dataclass(frozen=True)
class Endpoint:
    """Everything an adapter needs to reach one model. The key is kept out of `repr`."""

    spec: ProviderSpec
    model: str
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    timeouts: TimeoutSettings = field(default_factory=TimeoutSettings)
    retry: RetrySettings = field(default_factory=RetrySettings)

    @property
    def provider_id(self) -> str:
        return self.spec.provider_id


class Adapter(ABC):
    """One provider connection. Sync and async calls may run concurrently on one instance."""

    adapter_type: ClassVar[str]
    route: ClassVar[str] = "http"  # how calls travel: "http" (raw), "sdk" or "cli"

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._profile: ModelProfile | None = None
        self._static: ModelProfile | None = None
        self._profile_lock = threading.Lock()
        # The user's overrides for this model; its `Connection` sets it (config files).
        self.profile_overrides: Callable[[], Mapping[str, Any]] | None = None

    def __repr__(self) -> str:
        e = self.endpoint
        return f"{type(self).__name__}(provider={e.provider_id!r}, model={e.model!r})"

    def check(self) -> str:
        """Connect-time check; returns the model name to use. Default: no network I/O."""
        return self.endpoint.model

    @abstractmethod
    def complete(self, request: ChatRequest) -> Response:
        """One whole reply."""

    @abstractmethod
    def stream(self, request: ChatRequest) -> Iterator[AdapterEvent]:
        """Events as they arrive: `TextDelta`s and `UsageReport`s, then one `StreamEnd` when the
        provider's end marker arrives (no more reading after it). Raises a typed error when the
        stream is cut off before its end marker."""

    @abstractmethod
    async def acomplete(self, request: ChatRequest) -> Response:
        """Async twin of `complete`."""

    @abstractmethod
    def astream(self, request: ChatRequest) -> AsyncIterator[AdapterEvent]:
        """Async twin of `stream`."""

    def reply(
        self,
        request: ChatRequest,
        text: str,
        usage: Usage,
        raw_finish_reason: object = None,
        *,
        tool_calls: list[ToolCall] | None = None,
        reasoning: str | None = None,
        reasoning_details: list[dict[str, Any]] | None = None,
    ) -> Response:
        """A whole-call `Response` for this connection, with the finish reason normalised
        (`final_finish_reason`: a reply with tool calls finished for "tool_calls")."""
        raw = raw_finish_reason if isinstance(raw_finish_reason, str) else None
        calls = tool_calls or []
        return Response(
            text=text,
            usage=usage,
            finish_reason=final_finish_reason(normalize_finish_reason(raw), bool(calls)),
            provider=self.endpoint.provider_id,
            model=request.model,
            raw_finish_reason=raw,
            reasoning=reasoning,
            tool_calls=calls,
            reasoning_details=reasoning_details or [],
        )

    def probe_profile(self) -> dict[str, Any]:
        """The `ModelProfile` fields a live server reports about this model (local servers:
        context size, capabilities), within the connect timeout. Default: nothing (cloud
        models come from the table). May raise a `ModelError`: the profile then skips it."""
        return {}

    def profile(self) -> ModelProfile:
        """This connection's profile, built once (config overrides, live probe, table,
        defaults; see `rlm_code.models.profiles`). Thread-safe; the probe runs at most once."""
        profile = self._profile
        if profile is not None:
            return profile
        with self._profile_lock:
            if self._profile is None:
                overrides = self.profile_overrides() if self.profile_overrides else {}
                try:
                    live = self.probe_profile()
                except ModelError:
                    live = {}  # a failed probe falls back to the table, silently
                e = self.endpoint
                self._profile = build_profile(e.spec, e.model, overrides, live)
            return self._profile

    def settle_profile(self, live: Mapping[str, Any]) -> ModelProfile:
        """Build the profile from a probe's answer the caller got itself (an async probe,
        so an event loop is never blocked by the blocking one); a profile already built
        stays."""
        with self._profile_lock:
            if self._profile is None:
                overrides = self.profile_overrides() if self.profile_overrides else {}
                e = self.endpoint
                self._profile = build_profile(e.spec, e.model, overrides, live)
            return self._profile

    def call_profile(self) -> ModelProfile:
        """What a call reads on every request (`stream_usage`, `accepts_temperature`): the
        full profile once it is built, else the same without the live probe (no I/O: the
        probe only knows context sizes and capabilities, so the two agree on these)."""
        profile = self._profile or self._static
        if profile is not None:
            return profile
        with self._profile_lock:
            if self._static is None:
                overrides = self.profile_overrides() if self.profile_overrides else {}
                e = self.endpoint
                self._static = build_profile(e.spec, e.model, overrides)
            return self._static

    def list_models(self) -> list[str]:
        """The models the provider says this account can use."""
        return []

    def count_tokens(self, request: ChatRequest) -> int:
        """The prompt's input tokens as the provider counts them (no generation). Only APIs
        with a counting endpoint (Anthropic, Gemini) have it; the others refuse."""
        from rlm_code.core.exceptions import UnsupportedParameterError

        raise UnsupportedParameterError(
            f"{self.endpoint.provider_id} has no token-counting endpoint; count_tokens is "
            "available for Anthropic and Gemini models",
            provider=self.endpoint.provider_id,
        )

    def close(self) -> None:  # noqa: B027 - adapters without clients have nothing to release
        """Release the connection's clients. Idempotent."""

    async def aclose(self) -> None:
        self.close()


def load_adapter(adapter_type: str) -> type[Adapter]:
    """The adapter class for an adapter type, imported on first use."""
    target = ADAPTERS.get(adapter_type)
    if target is None:
        raise ValueError(f"no adapter for adapter type {adapter_type!r}")
    module_name, _, class_name = target.partition(":")
    cls: type[Adapter] = getattr(importlib.import_module(module_name), class_name)
    return cls


def require_sdk(module_name: str, provider: str) -> Any:
    """Import a provider SDK, or raise `SDKNotInstalledError` with the exact pip command."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        extra, direct = SDK_INSTALL.get(module_name, (f"pip install {module_name}", ""))
        alt = f" (or `{direct}`)" if direct else ""
        raise SDKNotInstalledError(
            f"the {provider} adapter needs the `{module_name}` package, which is not installed",
            provider=provider,
            hint=f"Install it with `{extra}`{alt}.",  # the exact command, not a generic one
        ) from None


def add_sampling(
    into: dict[str, Any], params: GenerationParams, max_tokens: str, stop: str
) -> dict[str, Any]:
    """Put the caller's sampling settings into `into` under one API's names (the unset ones
    left out) and return it: every API takes `temperature`, but names the output cap
    (`max_tokens`, `max_completion_tokens`, `num_predict`, `max_output_tokens`) and the stop
    list (`stop`, `stop_sequences`) its own way. Filled in place: no dict copy per call."""
    if params.temperature is not None:
        into["temperature"] = params.temperature
    if params.max_tokens is not None:
        into[max_tokens] = params.max_tokens
    if params.stop:
        into[stop] = list(params.stop)
    return into


def as_count(value: object) -> int | None:
    """A token count from a provider field; anything but a non-negative int is unknown."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
