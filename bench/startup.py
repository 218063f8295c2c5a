"""The start-up case as a user feels it (issue 11 item 6), used by `runner.py`'s cold start.

Importing the connector alone says little: a cost can move from the import into the first
`LLMConnector()` or the first call. So the case times whole processes that do the whole job:
import the connector, connect to the loopback OpenAI-compatible server (nginx, which also
answers the connect-time `/v1/models` check) and print one reply; next to a bare `httpx2`
script sending the same request and printing the same reply. Both run as `python -c CODE` (no
script file to compile) from the same interpreter. Target: ours <= 1.10x the bare script.

Standard library only, like the rest of the harness.
"""

from __future__ import annotations

import subprocess

import fixtures

USER_TARGET = 1.10

_OURS = """\
from rlm_code.core.config import ConfigManager
from rlm_code.models.llm_connector import LLMConnector

with LLMConnector(ConfigManager()) as connector:
    connector.connect_to_model("openai_compatible/bench", base_url={base!r})
    print(connector.generate_response({prompt!r}))
"""

_BARE = """\
import json

import httpx2

body = json.dumps({{"model": "bench", "messages": [{{"role": "user", "content": {prompt!r}}}]}})
with httpx2.Client(timeout=60) as client:
    response = client.post(
        {base!r} + "/chat/completions",
        content=body.encode(),
        headers={{"Content-Type": "application/json"}},
    )
    print(response.json()["choices"][0]["message"]["content"])
"""


def user_commands(python: str, port: int) -> list[tuple[str, str, list[str]]]:
    """(key, label, argv) of the two whole-process contenders."""
    base = f"http://127.0.0.1:{port}/v1"
    ours = _OURS.format(base=base, prompt=fixtures.PROMPT)
    bare = _BARE.format(base=base, prompt=fixtures.PROMPT)
    return [
        (
            "user_httpx2",
            "user start-up baseline: bare `httpx2` script, one POST, print the reply",
            [python, "-c", bare],
        ),
        (
            "user_ours",
            "user start-up: import the connector, `connect_to_model('openai_compatible/bench')`, "
            "print `generate_response`",
            [python, "-c", ours],
        ),
    ]


def check_reply(argv: list[str], env: dict[str, str], cwd: str) -> str | None:
    """Run one command and check it printed the fixture's reply; the error text, or None."""
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=60, check=False
    )
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return f"exit {proc.returncode}: {tail[:200]}"
    if proc.stdout.strip() != fixtures.REPLY:
        return f"printed {proc.stdout.strip()[:80]!r}, not the fixture's reply"
    return None


def paired_ratio(slot: dict, base: dict) -> float | None:
    """Median over rounds of slot / base in the same round (as `runner.summarize`)."""
    pairs = sorted(
        value / base["by_round"][r]
        for r, value in slot.get("by_round", {}).items()
        if r in base.get("by_round", {})
    )
    if not pairs:
        return None
    mid = len(pairs) // 2
    return pairs[mid] if len(pairs) % 2 else (pairs[mid - 1] + pairs[mid]) / 2
