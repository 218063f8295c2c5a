"""No API key leaves through an error, a log line, a status dict or a repr, for any adapter
and any fault.

Each adapter is connected with a recognisable fake key (the raw-HTTP adapters get one too: they
send it as a bearer token), every fault mode is played through every call style, and everything
a user or a log collector could see is searched for the key's text.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from rlm_code.core.exceptions import ModelError
from rlm_code.testing import FAULT_MODES

from .conftest import CANARY_KEYS, Target, chat_requests
from .test_contract import MODES, expected_outcome, run

pytestmark = [
    pytest.mark.filterwarnings("ignore:The model .* is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Inheritance class AiohttpClientSession:DeprecationWarning"),
]

# Every logger that could see a request: ours, the HTTP stacks, the SDKs, asyncio.
LOGGERS = (
    None,
    "rlm_code",
    "httpx2",
    "httpcore2",
    "httpx",
    "httpcore",
    "openai",
    "anthropic",
    "google_genai",
    "google",
    "aiohttp",
    "asyncio",
)
CANARY = "CANARY0123456789"
# Faults that only change timing, not content: one call style is enough for them.
TIMING_FAULTS = {"drip": ("generate",), "hang": ("generate", "astream")}


def test_canary_keys_are_the_fake_ones():
    assert all(CANARY in key for key in CANARY_KEYS.values())
    assert CANARY_KEYS == {
        "openai": "sk-test-CANARY0123456789",
        "anthropic": "sk-ant-test-CANARY0123456789",
        "gemini": "AIzaTestCANARY0123456789",
    }


def test_canary_key_never_leaks(target: Target, connect, fresh_server, caplog):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    key = CANARY_KEYS.get(target.adapter, "sk-test-CANARY0123456789")
    connector = connect(target, fresh_server, read=0.5, backoff_max=0.5, key=key)
    assert chat_requests(target, fresh_server) == []

    seen: list[str] = [repr(connector), str(connector.get_connection_status())]
    errors = 0
    for fault in FAULT_MODES:
        for mode in TIMING_FAULTS.get(fault, MODES):
            expected = expected_outcome(target.adapter, fault, mode)
            fresh_server.script_faults([fault] * expected.attempts)
            try:
                run(connector, mode, timeout=0.3 if fault == "hang" else None)
            except ModelError as exc:
                errors += 1
                seen += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
            assert fresh_server.pending_faults() == []  # the next case starts clean
            seen += [repr(connector), str(connector.get_connection_status())]
    seen.append(str(connector.list_models()))

    # The key did reach the provider, and every record is rendered as a handler would.
    assert any(
        key in r.headers.values() or f"Bearer {key}" in r.headers.values()
        for r in fresh_server.requests
    )
    assert errors >= 10
    assert caplog.records, "nothing was logged: the loggers were not captured"
    seen.append(caplog.text)
    seen += [record.getMessage() for record in caplog.records]
    leaks = [text for text in seen if CANARY in text]
    assert leaks == []
