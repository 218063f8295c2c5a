"""Official SDK clients pointed at a local protocol server, closed after each test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rlm_code.testing import LocalProtocolServer

OPENAI_KEY = "sk-test-123"
ANTHROPIC_KEY = "sk-ant-test-123"
GEMINI_KEY = "AIzaTest123"


class Clients:
    """Builds SDK clients for a server with test keys, no retries and short timeouts."""

    def __init__(self) -> None:
        self._closers: list[Callable[[], Any]] = []

    def openai(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import openai

        options: dict[str, Any] = {"api_key": OPENAI_KEY, "max_retries": 0, "timeout": 10.0}
        options.update(kwargs)
        client = openai.OpenAI(base_url=server.openai_base_url, **options)
        self._closers.append(client.close)
        return client

    def async_openai(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import openai

        options: dict[str, Any] = {"api_key": OPENAI_KEY, "max_retries": 0, "timeout": 20.0}
        options.update(kwargs)
        return openai.AsyncOpenAI(base_url=server.openai_base_url, **options)

    def anthropic(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import anthropic

        options: dict[str, Any] = {"api_key": ANTHROPIC_KEY, "max_retries": 0, "timeout": 10.0}
        options.update(kwargs)
        client = anthropic.Anthropic(base_url=server.base_url, **options)
        self._closers.append(client.close)
        return client

    def gemini(self, server: LocalProtocolServer, api_key: str = GEMINI_KEY) -> Any:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(base_url=server.base_url, timeout=10_000)
        client = genai.Client(api_key=api_key, http_options=options)
        self._closers.append(client.close)
        return client

    def ollama(self, server: LocalProtocolServer, **kwargs: Any) -> Any:
        import ollama

        client = ollama.Client(host=server.base_url, timeout=10.0, **kwargs)
        self._closers.append(client._client.close)
        return client

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
