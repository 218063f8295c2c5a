"""Canaries beyond the key itself: credentials inside a base URL, and everything chained onto
an error (`__cause__`, `__context__`), never show up where a user or a log collector looks.

A URL password and a `?key=`/`?token=` value are secrets just like an API key (issue "A
hostile world" #6, #11): the status dict, the connector's repr, every error with its whole
chain, and every log record at DEBUG on every logger are searched for them, through faults
that make each adapter fail in its own way.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ModelError
from rlm_code.models.llm_connector import LLMConnector

PASSWORD = "PwCANARY0123456789"
LOGGERS = (
    None,
    "rlm_code",
    "httpx2",
    "httpcore2",
    "openai",
    "anthropic",
    "google_genai",
    "aiohttp",
)
FAULTS = ("500", "401", "malformed", "truncate")

pytestmark = [
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error and everything reachable through `__cause__` / `__context__`."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [e for e in (current.__cause__, current.__context__) if e is not None]


def _texts(error: BaseException) -> list[str]:
    texts = []
    for link in _chain(error):
        texts += [str(link), repr(link), "".join(traceback.format_exception(link))]
        texts += [str(value) for value in vars(link).values()] if hasattr(link, "__dict__") else []
    return texts


def _cases(server: Any) -> list[tuple[str, str, str | None]]:
    """(model, base URL, key): the secret is the URL's password for the local servers, and the
    key itself for the clouds (their errors' whole chains are searched for it)."""
    host = server.base_url.removeprefix("http://")
    return [
        ("vllm/m1", f"http://user:{PASSWORD}@{host}/v1", None),
        ("ollama/llama3.2", f"http://user:{PASSWORD}@{host}", None),
        ("gemini/gemini-2.5-flash", f"http://{host}", f"AIzaTest{PASSWORD}"),
        ("openai/gpt-4o", f"http://{host}/v1", f"sk-test-{PASSWORD}"),
        ("anthropic/claude-sonnet-4-5-20250929", f"http://{host}", f"sk-ant-test-{PASSWORD}"),
    ]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/v1?token={pw}",
        "http://127.0.0.1:9/v1?api_key={pw}&x=1",
        "https://api.example.test/v1?key={pw}",
        "http://127.0.0.1:9/v1#{pw}",
    ],
)
@pytest.mark.parametrize("model", ["vllm/m1", "gemini/gemini-2.5-flash", "groq/llama-3.3-70b"])
def test_a_base_url_with_a_query_is_refused_without_showing_it(model: str, url: str) -> None:
    from rlm_code.core.exceptions import InvalidInputError

    key = {"gemini": "AIzaTestQueryCanary1", "groq": "gsk_test_query_canary_1"}.get(
        model.split("/")[0]
    )
    with pytest.raises(InvalidInputError, match="query string or fragment") as info:
        LLMConnector().connect_to_model(model, api_key=key, base_url=url.format(pw=PASSWORD))
    if "#" not in url:  # a fragment is not a credential; the query values named above are
        assert PASSWORD not in str(info.value) + repr(info.value)


@pytest.mark.parametrize("index", range(5), ids=["vllm", "ollama", "gemini", "openai", "anthropic"])
def test_url_credentials_and_keys_never_leak(
    index: int, fresh_server: Any, caplog: Any, tmp_path: Path
) -> None:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    model, url, key = _cases(fresh_server)[index]
    # One attempt per call, so each call takes exactly the one fault scripted for it.
    (tmp_path / "rlm_config.yaml").write_text("retries: {max_attempts: 1}\n")
    connector = LLMConnector(ConfigManager(project_root=tmp_path))
    connector.connect_to_model(model, api_key=key, base_url=url)
    seen = [repr(connector), str(connector.get_connection_status())]
    errors = 0
    for fault in FAULTS:
        fresh_server.script_faults([fault])
        try:
            connector.generate_response("hello there", timeout=5)
        except ModelError as exc:
            errors += 1
            seen += _texts(exc)
        fresh_server.script_faults([fault])
        try:
            "".join(connector.stream_response("hello there", timeout=5))
        except ModelError as exc:
            errors += 1
            seen += _texts(exc)
        assert fresh_server.pending_faults() == []

    async def one_async() -> None:
        fresh_server.script_faults(["500"])
        try:
            await connector.agenerate_response("hello there", timeout=5)
        except ModelError as exc:
            seen.extend(_texts(exc))

    asyncio.run(one_async())
    assert connector.generate_response("hello there").startswith("Echo: hello there")
    connector.close()

    assert errors >= 2 * len(FAULTS) - 1, "the faults did not make the calls fail"
    assert caplog.records, "nothing was logged: the loggers were not captured"
    seen.append(caplog.text)
    seen += [record.getMessage() for record in caplog.records]
    leaks = [text[:200] for text in seen if PASSWORD in text]
    assert leaks == []


def test_the_chain_walk_sees_a_hidden_context() -> None:
    # `raise ... from None` hides the context from tracebacks but keeps it on the error:
    # the walk above must still find it, or it would prove nothing.
    try:
        try:
            raise ValueError(f"echoed {PASSWORD}")
        except ValueError:
            raise ModelError("mapped") from None
    except ModelError as error:
        assert PASSWORD not in "".join(traceback.format_exception(error))
        assert any(PASSWORD in text for text in _texts(error))
