"""The error boundary of the Gemini route: google-genai's exceptions, and the httpx2,
aiohttp and parsing errors that escape it, as typed errors (see `_sdk.ErrorMapper`).

The SDK puts the decoded error body on `APIError.details`; a 429 carries its wait as a
`google.rpc.RetryInfo` detail rather than a `Retry-After` header, so that is read too. A prompt
Gemini blocks outright is no error status at all: a 200 without candidates whose
`promptFeedback.blockReason` says why (`blocked_prompt`, a `ContentFilterError`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from rlm_code.core.exceptions import ContentFilterError, ModelError, RateLimitError
from rlm_code.models.adapters._sdk import ErrorMapper
from rlm_code.models.adapters.base import Endpoint
from rlm_code.models.adapters.errors import (
    bad_payload,
    error_for_status,
    map_aiohttp_error,
    map_httpx_error,
    stream_error,
    timed_out,
)

_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def retry_delay(details: Any) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "1.5s"`), if any."""
    error = details.get("error", details) if isinstance(details, dict) else None
    items = error.get("details") if isinstance(error, dict) else None
    if not isinstance(items, list):
        return None
    for item in items:
        if isinstance(item, dict) and item.get("@type") == _RETRY_INFO:
            delay = item.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(0.0, float(delay[:-1]))
                except ValueError:
                    return None
    return None


def blocked_prompt(provider: str, response: Any) -> ContentFilterError | None:
    """The error for a reply whose prompt Gemini blocked (`prompt_feedback.block_reason` set,
    no candidates), whole or as a stream's first chunk; None when nothing was blocked."""
    feedback = getattr(response, "prompt_feedback", None)
    reason = getattr(feedback, "block_reason", None)
    if reason is None:
        return None
    said = getattr(feedback, "block_reason_message", None)
    why = f": {said}" if isinstance(said, str) and said else ""
    return ContentFilterError(
        f"{provider} blocked the prompt ({getattr(reason, 'value', reason)}){why}",
        provider=provider,
        hint="Rephrase the prompt; Gemini's safety filters refused it.",
    )


class GeminiErrors(ErrorMapper):
    """google-genai's exceptions, and the httpx2/aiohttp/parsing ones that escape it."""

    def __init__(self, endpoint: Endpoint, genai_errors: Any, httpx: Any, aiohttp: Any) -> None:
        self.provider = endpoint.provider_id
        self.where = endpoint.base_url
        self.timeouts = endpoint.timeouts
        self.api_error = genai_errors.APIError
        self.httpx = httpx
        self.aiohttp = aiohttp
        self.catch = (
            genai_errors.APIError,
            httpx.TransportError,
            aiohttp.ClientError,
            TimeoutError,  # asyncio.timeout, around the async calls
            genai_errors.UnknownApiResponseError,
            # The SDK converts answers with plain code and pydantic: a body of the wrong shape
            # (`{"candidates": false}`, `{"usageMetadata": []}`) surfaces as one of these.
            # ValueError covers json.JSONDecodeError, UnicodeDecodeError and pydantic's errors.
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
        )

    def map(self, exc: BaseException, model: str | None, seconds: float | None) -> ModelError:
        provider, where, timeouts = self.provider, self.where, self.timeouts
        if isinstance(exc, self.api_error):
            return self._status_error(exc, model)
        if isinstance(exc, self.httpx.TransportError):
            return map_httpx_error(self.httpx, provider, exc, where, timeouts, seconds)
        if isinstance(exc, self.aiohttp.ClientError):
            return map_aiohttp_error(self.aiohttp, provider, exc, where, timeouts, seconds)
        if isinstance(exc, TimeoutError):  # our asyncio.timeout
            return timed_out(provider, "answer in time", seconds or timeouts.read, False)
        return bad_payload(provider, exc)

    def _status_error(self, exc: Any, model: str | None) -> ModelError:
        provider = self.provider
        details = getattr(exc, "details", None)
        code = getattr(exc, "code", None)
        status = code if isinstance(code, int) else 0
        body: str | None
        if isinstance(details, dict) and "error" not in details and "message" in details:
            body = str(details["message"])  # a body that was not JSON (an HTML page, ...)
        elif details is not None:
            body = json.dumps(details, default=str)
        else:
            body = getattr(exc, "message", None)
        if status < 300:
            return stream_error(provider, body)
        headers: Mapping[str, str] | None = getattr(getattr(exc, "response", None), "headers", None)
        error = error_for_status(provider, status, body, headers, model=model)
        if isinstance(error, RateLimitError) and error.retry_after is None:
            delay = retry_delay(details)
            if delay is not None:
                error = error_for_status(
                    provider, status, body, {"retry-after": f"{delay:g}"}, model=model
                )
        return error
