"""The sub-model route case (issue 14, "Routes"): `route`.

A recursive run's sub-model calls go through `connector.generate_response_with_model(prompt,
model, model_type, base_url=...)`. Before issue 14 that built and closed a new HTTP client on
every call; now it resolves a pooled `Route` once (cached by its arguments) and reuses its
client. The issue's target: 1,000 sequential calls to the same sub-model cost <= 1.15x
`generate_response` on the current connection. So the baseline here is not a bare client but
ours on the current connection, to the same nginx fixture (case 1's `/v1` answer), through the
same provider (`openai-compatible`, the generic local OpenAI-protocol server) and model name,
in the same run: the ratio is the cost of the route layer (cache lookup, fallback plan,
limits, metering) over a plain call, nothing else.

Contenders (factories of one operation, as in `contenders.py`):

- `current` (baseline): `connect_to_model("test-model", "openai-compatible", base_url=...)`,
  then `generate_response(PROMPT)`.
- `ours`: no connection at all; `generate_response_with_model(PROMPT, "test-model",
  "openai-compatible", base_url=...)` on every call.
- `httpx2`: bare `httpx2.Client` POST + `json.loads`, for scale.

`contenders.run_sync` checks the first answer's text (`ours` also checks it in its factory,
where that first call makes the route). The `ours` operation also carries `check_after`,
called by `contenders.run_sync` after the timed loop: every call must have gone through one and
the same cached route (the same `Route` object before and after the loop, still open), or the
row fails rather than timing a path that rebuilt its route. Standard library at module level,
like `contenders.py`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fixtures

MODEL = "test-model"
PROVIDER = "openai-compatible"
TARGET = 1.15  # issue 14: <= 1.15x `generate_response` on the current connection


def _url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


def _connector() -> Any:
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

    return LLMConnector(ConfigManager())


def current(port: int) -> Callable[[], Any]:
    """The baseline: a plain call on the current connection to the same server and model."""
    connector = _connector()
    connector.connect_to_model(MODEL, PROVIDER, base_url=_url(port))
    return lambda: connector.generate_response(fixtures.PROMPT)


class _RouteCall:
    """One sub-model call per invocation, and the check that they all shared one route."""

    def __init__(self, port: int) -> None:
        self.connector = _connector()
        self.url = _url(port)
        self.route: Any = None

    def __call__(self) -> str:
        text: str = self.connector.generate_response_with_model(
            fixtures.PROMPT, MODEL, PROVIDER, base_url=self.url
        )
        return text

    def _cached(self) -> Any:
        return self.connector.route(MODEL, PROVIDER, base_url=self.url)

    def check_after(self) -> dict[str, Any]:
        """After the timed loop: the route the calls used is still the one cached after the
        first call (so no call rebuilt it), open, with a single target."""
        route = self._cached()
        if self.route is None:
            self.route = route
        if route is not self.route or route.closed or len(route.targets) != 1:
            raise RuntimeError(f"the sub-model calls did not share one cached route: {route!r}")
        return {"route": repr(route)}


def ours(port: int) -> Callable[[], Any]:
    call = _RouteCall(port)
    first = call()  # makes the route; remember it before the warm-up and timed loop
    if first != fixtures.REPLY:
        raise RuntimeError(f"route contender returned {first[:120]!r}")
    call.route = call._cached()
    return call


def bare_httpx2(port: int) -> Callable[[], Any]:
    import json

    import httpx2

    client = httpx2.Client(
        headers={"Content-Type": "application/json", "Accept": "application/json"}, timeout=60
    )
    url = _url(port) + "/chat/completions"
    messages = [{"role": "user", "content": fixtures.PROMPT}]

    def call() -> str:
        body = json.dumps({"model": MODEL, "messages": messages}).encode()
        data = json.loads(client.post(url, content=body).content)
        return str(data["choices"][0]["message"]["content"])

    return call


def cases() -> dict[str, dict[str, Callable[[int], Callable[[], Any]]]]:
    """`SYNC_CASES` entries for `contenders.py`: case -> contender -> factory(port)."""
    return {"route": {"current": current, "ours": ours, "httpx2": bare_httpx2}}
