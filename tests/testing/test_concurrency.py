"""Many simultaneous streams, the load the connector's benchmarks put on the server."""

from __future__ import annotations

import asyncio

from rlm_code.testing import LocalProtocolServer

from .conftest import Clients


def test_fifty_concurrent_streams_all_complete(
    fresh_server: LocalProtocolServer, clients: Clients
) -> None:
    async def one(client: object, index: int) -> tuple[str, int | None]:
        stream = await client.chat.completions.create(  # type: ignore[attr-defined]
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": f"request number {index}"}],
            stream=True,
            stream_options={"include_usage": True},
            extra_headers={"X-Stream-Chunks": "20"},
        )
        text, tokens = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            elif chunk.usage is not None:
                tokens = chunk.usage.completion_tokens
        return text, tokens

    async def run_all() -> list[tuple[str, int | None]]:
        async with clients.async_openai(fresh_server) as client:
            return await asyncio.gather(*(one(client, index) for index in range(50)))

    results = asyncio.run(run_all())
    assert len(results) == 50
    for index, (text, tokens) in enumerate(results):
        expected = f"Echo: request number {index}" + " word" * 16
        assert text == expected
        assert tokens == 20
    assert len(fresh_server.requests) == 50
