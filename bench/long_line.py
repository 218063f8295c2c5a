"""Contenders of the long-line cases: one streamed reply whose one content chunk is a single
SSE line of 40 MB (`line40`) or 15 MB (`line15`), issue 10 item 9.

Before the fix the openai_compatible adapter re-joined the pending bytes for every network
chunk, so one 40 MB line cost ~8.5 s of CPU against ~0.4 s for the openai SDK. Lines are now
assembled in linear time and capped at 16 MiB with a typed `ResponseFormatError`: the 40 MB line
is *refused*, and the timed operation for ours is the time until that typed error; the 15 MB
line (under the cap) is read whole by every contender.

Each operation checks its own answer (length of the text, or the typed refusal) and returns
`None`; a wrong answer raises. Standard library at module level, like `contenders.py`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import fixtures

Op = Callable[[], Any]
KEY = "sk-test-bench-0000000000000000"
MESSAGES = [{"role": "user", "content": fixtures.PROMPT}]


def _base(case: str, port: int) -> str:
    return f"http://127.0.0.1:{port}/{case}/v1"


def _expect_length(text: str, case: str, who: str) -> None:
    want = fixtures.LONG_LINES[case]
    if len(text) != want or text[:1] != fixtures.LONG_LINE_CHAR:
        raise RuntimeError(f"{who} returned {len(text)} characters, expected {want}")


def ours(case: str, port: int) -> Op:
    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import ResponseFormatError
    from rlm_code.models.llm_connector import LLMConnector

    connector = LLMConnector(ConfigManager())
    connector.connect_to_model("openai_compatible/bench", base_url=_base(case, port))
    over_cap = fixtures.LONG_LINES[case] > 16 * 1024 * 1024

    def call() -> None:
        try:
            text = "".join(connector.stream_response(fixtures.PROMPT))
        except ResponseFormatError as exc:
            if not over_cap:
                raise
            if "limit" not in str(exc):
                raise RuntimeError(f"unexpected refusal: {exc}") from exc
            return
        if over_cap:
            raise RuntimeError(f"a {fixtures.LONG_LINES[case]:,}-byte line was not refused")
        _expect_length(text, case, "ours")

    return call


def openai(case: str, port: int) -> Op:
    from openai import OpenAI

    client = OpenAI(api_key=KEY, base_url=_base(case, port), timeout=120)

    def call() -> None:
        chunks = client.chat.completions.create(model="bench", messages=MESSAGES, stream=True)
        parts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
        _expect_length("".join(parts), case, "openai")

    return call


def openai_sse_text(lines: Iterable[str]) -> str:
    """The reply text of an OpenAI chat stream read as a bare HTTP client would: `data:` lines
    up to `[DONE]`, the `delta.content` of each chunk. The baseline of the bare-client cases
    here and in `contenders.py`: one loop, so every bare contender does the same work."""
    parts = []
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        choices = json.loads(data).get("choices")
        if choices:
            text = choices[0]["delta"].get("content")
            if text:
                parts.append(text)
    return "".join(parts)


def httpx2(case: str, port: int) -> Op:
    import httpx2 as module

    client = module.Client(timeout=120)
    url = _base(case, port) + "/chat/completions"
    body = json.dumps({"model": "bench", "messages": MESSAGES, "stream": True}).encode()

    def call() -> None:
        with client.stream("POST", url, content=body) as response:
            text = openai_sse_text(response.iter_lines())
        _expect_length(text, case, "httpx2")

    return call


def cases() -> dict[str, dict[str, Callable[[int], Op]]]:
    """`SYNC_CASES` entries for `contenders.py`: case -> contender -> factory(port)."""
    table: dict[str, dict[str, Callable[[int], Op]]] = {}
    for case in fixtures.LONG_LINES:
        table[case] = {
            "openai": lambda port, c=case: openai(c, port),
            "ours": lambda port, c=case: ours(c, port),
            "httpx2": lambda port, c=case: httpx2(c, port),
        }
    return table
