"""One open connection and its life: shared by the calls made on it, closed after the last.

A connection is the resolved target (provider row, model, key, base URL) plus the adapter
that owns its client. Calls *hold* it while they run and *release* it when they end (a
stream: when it is read to the end, closed, or fails). Replacing or closing the connection
*retires* it: no new call gets it, and its adapter is closed when the last call still
running on it releases it — at once when none is. So switching models while other threads
and tasks are mid-call never cuts a reply off or closes a client under a running request;
each in-flight call finishes on the connection it started on, within its own timeout.

`profile()` is the model's `ModelProfile` (`rlm_code.models.profiles`), built once per
connection by its adapter, the first time it or a call needs it: the config file's
`model_profiles` row for `provider/model` (read from `config`, the connector's
`ConfigManager`, or the default files when none is given), a live probe of a local server,
the cloud table, the defaults.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from rlm_code.core.config import ConfigManager
from rlm_code.core.redact import redact
from rlm_code.models.adapters.base import Adapter, Endpoint
from rlm_code.models.profiles import ModelProfile
from rlm_code.models.providers.registry import ProviderSpec
from rlm_code.models.resolve import Resolved

NOT_CONNECTED_STATUS: dict[str, Any] = {
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


class Connection:
    """A resolved target and its adapter, reference-counted by the calls using it."""

    __slots__ = ("_lock", "_retired", "_users", "adapter", "config", "model", "resolved", "spec")

    def __init__(
        self, resolved: Resolved, adapter: Adapter, config: ConfigManager | None = None
    ) -> None:
        self.resolved = resolved
        self.adapter = adapter
        self.config = config
        adapter.profile_overrides = self._profile_overrides
        # Read on every call: plain attributes. The adapter's connect-time check may have
        # settled the model name (Ollama's tag), so both come from its endpoint.
        self.spec: ProviderSpec = adapter.endpoint.spec
        self.model: str = adapter.endpoint.model
        self._lock = threading.Lock()
        self._users = 0
        self._retired = False

    def __repr__(self) -> str:
        return f"Connection({self.spec.provider_id}/{self.model}, users={self._users})"

    @property
    def endpoint(self) -> Endpoint:
        return self.adapter.endpoint

    @property
    def key_source(self) -> str | None:
        return self.resolved.key_source

    @property
    def route(self) -> str:
        return self.resolved.route

    def status(self) -> dict[str, Any]:
        """What this connection is to; never the key itself."""
        spec = self.spec
        endpoint = self.endpoint
        return {
            "connected": True,
            "provider": spec.provider_id,
            "provider_name": spec.display_name,
            "model": self.model,
            "model_id": f"{spec.provider_id}/{self.model}",
            "base_url": redact(endpoint.base_url),  # credentials inside a URL are secrets
            "has_api_key": endpoint.api_key is not None,
            "api_key_source": self.key_source,
            "connection_type": spec.connection_type,
            "adapter": spec.adapter_type,
            "route": self.route,
            "type": spec.provider_id,
        }

    def profile(self) -> ModelProfile:
        """The model's profile: built once (thread-safe), then the same object."""
        return self.adapter.profile()

    def _profile_overrides(self) -> Mapping[str, Any]:
        config = self.config if self.config is not None else ConfigManager()
        provider = self.spec.provider_id
        # The settled name (Ollama's `llama3.2:latest`) or the name asked for (`llama3.2`).
        found = config.model_profile(f"{provider}/{self.model}")
        return found or config.model_profile(f"{provider}/{self.resolved.endpoint.model}")

    def hold(self) -> None:
        """One more call runs on this connection. The owner calls it under its own lock,
        the same lock it swaps connections under, so a retired connection is never held."""
        with self._lock:
            self._users += 1

    def release(self) -> None:
        """A call ended; the last call on a retired connection closes its adapter."""
        with self._lock:
            self._users -= 1
            last = self._retired and self._users == 0
        if last:
            self.adapter.close()

    def _mark_retired(self) -> bool:
        """Refuse new calls; True when this call retired it and no call holds it (close now)."""
        with self._lock:
            if self._retired:
                return False
            self._retired = True
            return self._users == 0

    def retire(self) -> None:
        """No new calls; close the adapter now if idle, else when the last call releases it."""
        if self._mark_retired():
            self.adapter.close()

    async def aretire(self) -> None:
        """`retire` from async code: an idle adapter is closed in this event loop."""
        if self._mark_retired():
            await self.adapter.aclose()
