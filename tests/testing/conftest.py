"""Official SDK clients pointed at a local protocol server, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlm_code.testing import LocalProtocolServer

OPENAI_KEY = "sk-test-123"
ANTHROPIC_KEY = "sk-ant-test-123"
GEMINI_KEY = "AIzaTest123"


def _options(api_key: str, timeout: float, overrides: dict[str, Any]) -> dict[str, Any]:
    """A test key, no retries and a short timeout; the test's own arguments win."""
    return {"api_key": api_key, "max_retries": 0, "timeout": timeout, **overrides}


class Clients:
    """Builds SDK clients for a server with test keys, no retries and short timeouts."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], Any]] = []

    def _closed_after(self, client: Any, close: Callable[[], Any] | None = None) -> Any:
        self._closers.append(client.close if close is None else close)
        return client

    def openai(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import openai

        options = _options(OPENAI_KEY, 10.0, kwargs)
        return self._closed_after(openai.OpenAI(base_url=server.openai_base_url, **options))

    def async_openai(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import openai

        options = _options(OPENAI_KEY, 20.0, kwargs)
        return openai.AsyncOpenAI(base_url=server.openai_base_url, **options)

    def anthropic(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import anthropic

        options = _options(ANTHROPIC_KEY, 10.0, kwargs)
        return self._closed_after(anthropic.Anthropic(base_url=server.base_url, **options))

    def gemini(self, server: LocalProtocolServer, api_key: str = GEMINI_KEY) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=server.base_url, timeout=10_000)
        return self._closed_after(genai.Client(api_key=api_key, http_options=options))

    def ollama(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import ollama

        client = ollama.Client(host=server.base_url, timeout=10.0, **kwargs)
        return self._closed_after(client, client._client.close)

    def close(self) -> None:
        for close in reversed(self._closers):
            close()


@pytest.fixture
def clients() -> Iterator[Clients]:
    made = Clients()
    try:
        yield made
    finally:
        made.close()
