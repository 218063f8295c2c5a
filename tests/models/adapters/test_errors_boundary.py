"""errors.py: redact before truncating (10.4), the transport boundaries (11.4, 10.11), the
usage buckets of the raw adapters (10.17, 11.1)."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from rlm_code.core.config import TimeoutSettings
from rlm_code.core.exceptions import InvalidInputError, ModelTimeoutError, ProviderError
from rlm_code.core.redact import register_secret
from rlm_code.models.adapters.errors import (
    aiohttp_errors,
    error_detail,
    error_for_status,
    httpx_errors,
    safe_url,
)
from rlm_code.models.adapters.ollama import parse_message
from rlm_code.models.adapters.openai_compatible import ChatStreamParser, usage_counts
from rlm_code.models.types import StreamEnd, TextDelta, Usage, UsageReport

# A registered key with no recognisable shape: only the exact-value pass can mask it.
SHAPELESS_KEY = "Zq9" + "x7Yw" * 15 + "a"


def test_error_text_is_redacted_before_it_is_truncated():
    register_secret(SHAPELESS_KEY)
    body = "error: " + "a" * (300 - 7 - 63) + SHAPELESS_KEY + " more words"
    detail = error_detail(body)
    assert SHAPELESS_KEY[:20] not in detail and len(detail) <= 300
    error = error_for_status("p", 400, json.dumps({"error": {"message": body}}))
    assert SHAPELESS_KEY[:20] not in str(error) and "[REDACTED]" in str(error)


def test_a_redirect_status_is_a_typed_error_with_a_safe_location():
    error = error_for_status(
        "p", 301, b"", {"Location": "https://u:pw9secret@evil.test/x?key=k1234"}
    )
    assert isinstance(error, ProviderError) and error.status_code == 301
    assert "https://evil.test/x" in str(error)
    assert "pw9secret" not in str(error) and "k1234" not in str(error)
    assert safe_url("http://a:b@h:8/p?q=1#f") == "http://h:8/p"


def test_the_httpx_boundary_names_the_original_and_chains_nothing():
    secret = "sk-test-echoed-" + "e" * 30
    with pytest.raises(ModelTimeoutError) as caught:
        try:
            raise KeyError(secret)  # an exception already being handled must not leak either
        except KeyError:
            with httpx_errors("p", "http://h", TimeoutSettings()):
                raise httpx2.ReadTimeout(f"echo {secret}")  # noqa: B904 - the context is the point
    error = caught.value
    assert error.original == "httpx2.ReadTimeout"
    assert error.__cause__ is None and error.__context__ is None and error.__suppress_context__
    assert secret not in repr(error)


def test_the_boundaries_turn_bad_input_into_invalid_input_only_before_the_answer():
    before = httpx_errors("p", "u", TimeoutSettings(), answering=False)
    with pytest.raises(InvalidInputError) as caught, before:
        httpx2.URL("http://[::1")
    assert caught.value.original == "httpx2.InvalidURL"
    after = httpx_errors("p", "u", TimeoutSettings(), answering=True)
    with pytest.raises(ValueError) as plain, after:  # our own bugs are not disguised as bad input
        raise ValueError("a bug")
    assert not isinstance(plain.value, InvalidInputError)


def test_the_aiohttp_boundary_maps_asyncio_timeouts():
    async def go() -> None:
        with aiohttp_errors("p", "u", TimeoutSettings(read=0.01)):
            await asyncio.wait_for(asyncio.sleep(1), 0.01)

    with pytest.raises(ModelTimeoutError) as caught:
        asyncio.run(go())
    assert caught.value.original == "TimeoutError" and caught.value.__context__ is None


def test_openai_compatible_usage_buckets():
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": 30,
        "prompt_tokens_details": {"cached_tokens": 60},
        "completion_tokens_details": {"reasoning_tokens": 12},
    }
    assert usage_counts(usage) == Usage(40, 30, 60, None, 12)
    deepseek = {"prompt_tokens": 50, "completion_tokens": 5, "prompt_cache_hit_tokens": 20}
    assert usage_counts(deepseek) == Usage(30, 5, 20, None, None)
    assert usage_counts({"completion_tokens": 5}) == Usage(None, 5)
    assert usage_counts(None) == Usage()


def test_ollama_without_prompt_eval_count_reports_unknown_input():
    events = parse_message(
        {"message": {"content": "x"}, "done": True, "eval_count": 4, "done_reason": "length"}, "o"
    )
    assert events == [TextDelta("x"), UsageReport(Usage(None, 4)), StreamEnd("length", "length")]
    assert parse_message({"message": {"content": ""}, "done": False}, "o") == []


def test_the_stream_end_carries_the_finish_reason_sent_before_done():
    parser = ChatStreamParser("p")
    body = (
        b'data: {"choices":[{"delta":{"content":"a"},"finish_reason":"tool_calls"}]}\n\n'
        b"data: [DONE]\n\ndata: ignored-after-the-end\n\n"
    )
    assert parser.feed(body) == [TextDelta("a"), StreamEnd("tool_calls", "tool_calls")]
