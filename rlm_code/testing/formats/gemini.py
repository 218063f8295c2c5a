"""Gemini API (generativelanguage ``v1beta``) wire format.

Shapes follow what the ``google-genai`` SDK parses: ``GenerateContentResponse`` objects with
``candidates``/``content``/``parts`` and ``usageMetadata``, SSE streams
(``streamGenerateContent?alt=sse``) whose every event is such a response, and
``{"error": {"code", "message", "status"}}`` errors. The model is part of the URL path.

Body faults: ``context_length`` and ``unsupported_parameter`` are 400 ``INVALID_ARGUMENT`` with
Gemini's own messages ("The input token count (N) exceeds the maximum number of tokens allowed
(M)."; "Function calling is not enabled for models/MODEL", as for Gemma). ``content_filter`` is
no error status: Gemini answers a prompt it blocks with a 200 that has no candidates, only
``promptFeedback`` (``blockReason: SAFETY`` and the ratings) and the prompt's usage; streamed,
that response is the one event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping

from rlm_code.testing.faults import Fault
from rlm_code.testing.formats.gemini_requests import parse_request
from rlm_code.testing.text import count_tokens, total_tokens
from rlm_code.testing.wire import (
    ErrorKind,
    ErrorReply,
    ErrorSpec,
    JsonObject,
    StreamPlan,
    WireError,
    WireFormat,
    WireReply,
    WireRequest,
    dumps,
    require_object,
)

__all__ = ["GeminiFormat"]

_API_KEY_INVALID = "API key not valid. Please pass a valid API key."
MALFORMED_CALL = "MALFORMED_FUNCTION_CALL"

_ERRORS: dict[ErrorKind, ErrorSpec] = {
    "bad_request": ErrorSpec(400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "auth_missing": ErrorSpec(
        403,
        "PERMISSION_DENIED",
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    ),
    "auth_invalid": ErrorSpec(400, "INVALID_ARGUMENT", _API_KEY_INVALID),
    "unauthorized": ErrorSpec(
        401,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential.",
    ),
    "not_found": ErrorSpec(
        404,
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    ),
    "rate_limit": ErrorSpec(
        429,
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    "server_error": ErrorSpec(
        500,
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "unavailable": ErrorSpec(
        503, "UNAVAILABLE", "The model is overloaded. Please try again later."
    ),
}


class GeminiFormat(WireFormat):
    name = "gemini"
    stream_content_type = "text/event-stream"
    errors = _ERRORS

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return (headers.get("x-goog-api-key") or query.get("key") or "").strip() or None

    def error_body(
        self, kind: ErrorKind, spec: ErrorSpec, text: str, param: str | None, retry_after: int
    ) -> JsonObject:
        error: JsonObject = {"code": spec.status, "message": text, "status": spec.type}
        if kind == "auth_invalid":
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ]
        elif kind == "rate_limit":
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after}s",
                }
            ]
        return {"error": error}

    def fault_error(
        self, fault: Fault, *, model: str, body: object, path: str
    ) -> ErrorReply | None:
        if fault.mode == "context_length":
            text = (
                f"The input token count ({fault.context_requested}) exceeds the maximum number "
                f"of tokens allowed ({fault.context_limit})."
            )
        elif fault.mode == "unsupported_parameter":
            text = f"Function calling is not enabled for models/{model}"
        elif fault.mode == "content_filter":
            return self._blocked(model, body, stream=":streamGenerateContent" in path)
        else:
            return None
        spec = self.errors["bad_request"]
        return ErrorReply(400, self.error_body("bad_request", spec, text, None, 1))

    def _blocked(self, model: str, body: object, *, stream: bool) -> ErrorReply:
        try:
            prompt = total_tokens(
                self.parse(body, endpoint="generateContent", path_model=model).texts
            )
        except WireError:
            prompt = 0
        ratings: list[JsonObject] = [
            {"category": category, "probability": "NEGLIGIBLE"}
            for category in ("HARM_CATEGORY_HATE_SPEECH", "HARM_CATEGORY_HARASSMENT")
        ]
        ratings.append(
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
        )
        response: JsonObject = {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
            "usageMetadata": {
                "promptTokenCount": prompt,
                "totalTokenCount": prompt,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            },
            "modelVersion": model,
            "responseId": uuid.uuid4().hex,
        }
        if not stream:
            return ErrorReply(200, response)
        event = (b"data: " + dumps(response) + b"\r\n\r\n").decode("utf-8")
        return ErrorReply(200, event, {"Content-Type": "text/event-stream"})

    def malformed_frame(self) -> bytes:
        return b'data: {"candidates":[{"content":{"parts":[{"text":\r\n\r\n'

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: object, *, endpoint: str, path_model: str | None) -> WireRequest:
        return parse_request(require_object(body), endpoint=endpoint, path_model=path_model)

    # -- answers --------------------------------------------------------------------------------

    def render(self, completion: WireReply) -> JsonObject:
        if not (completion.tool_calls or completion.reasoning):
            return self._response(completion, completion.text, completion.completion_tokens, True)
        candidates = completion.completion_tokens - completion.reasoning_tokens
        return self._frame(completion, _parts(completion), candidates, True)

    def stream(self, completion: WireReply, *, terminate: bool) -> StreamPlan:
        if completion.tool_calls or completion.reasoning:
            steps = _steps(completion)
            content = self._step_events(completion, steps, terminate)
            return StreamPlan(head=(), content=content, piece_count=len(steps))
        pieces = completion.pieces
        if not pieces:  # an empty reply is still one event, with an empty text part
            last = self._event(completion, "", completion.completion_tokens, terminate)
            return StreamPlan(head=(), content=(), piece_count=0, tail=[last])
        return StreamPlan(
            head=(), content=self._events(completion, terminate), piece_count=len(pieces)
        )

    def _events(self, completion: WireReply, terminate: bool) -> Iterator[bytes]:
        """One event per piece, encoded when the writer asks for it.

        Usage is cumulative on every event and the last one carries the final numbers. The
        running count adds each piece's words: pieces split at whitespace, so this equals the
        word count of the text sent so far, without re-splitting that text (quadratic).
        """
        pieces = completion.pieces
        last = len(pieces) - 1
        tokens = 0
        for index, piece in enumerate(pieces):
            tokens += count_tokens(piece)
            final = index == last
            count = completion.completion_tokens if final else tokens
            yield self._event(completion, piece, count, final and terminate)

    def _event(self, completion: WireReply, text: str, tokens: int, finish: bool) -> bytes:
        return b"data: " + dumps(self._response(completion, text, tokens, finish)) + b"\r\n\r\n"

    def _step_events(
        self, completion: WireReply, steps: list[_Step], terminate: bool
    ) -> Iterator[bytes]:
        """A reply with reasoning or tool calls: one event per thought piece, text piece and
        function call (Gemini sends a call whole), cumulative usage on each, the finish reason
        and the final counts on the last."""
        thoughts = candidates = 0
        last = len(steps) - 1
        for index, (part, thought_tokens, candidate_tokens) in enumerate(steps):
            thoughts += thought_tokens
            candidates += candidate_tokens
            final = index == last
            if final:
                thoughts = completion.reasoning_tokens
                candidates = completion.completion_tokens - thoughts
            frame = self._frame(completion, [part], candidates, final and terminate, thoughts)
            yield b"data: " + dumps(frame) + b"\r\n\r\n"

    def render_models(self, names: list[str]) -> JsonObject:
        return {"models": [self.render_model(name) for name in names]}

    def render_model(self, name: str) -> JsonObject:
        return {
            "name": "models/" + name,
            "version": "001",
            "displayName": name,
            "description": "Local protocol server model " + name,
            "inputTokenLimit": 1048576,
            "outputTokenLimit": 65536,
            "supportedGenerationMethods": ["generateContent", "countTokens"],
            "temperature": 1,
            "topP": 0.95,
            "topK": 64,
            "maxTemperature": 2,
        }

    def _response(
        self, completion: WireReply, text: str, completion_tokens: int, finish: bool
    ) -> JsonObject:
        return self._frame(completion, [{"text": text}], completion_tokens, finish)

    def _frame(
        self,
        completion: WireReply,
        parts: list[JsonObject],
        candidates_tokens: int,
        finish: bool,
        thoughts_tokens: int | None = None,
    ) -> JsonObject:
        """One `GenerateContentResponse`: these parts, and the counts so far."""
        candidate: JsonObject = {"content": {"parts": parts, "role": "model"}, "index": 0}
        if finish:
            if _malformed(completion) is not None:
                candidate = {
                    "content": {"parts": [], "role": "model"},
                    "finishReason": MALFORMED_CALL,
                    "index": 0,
                    "finishMessage": f"Malformed function call: {_malformed(completion)}",
                }
            else:
                candidate["finishReason"] = "MAX_TOKENS" if completion.truncated else "STOP"
        response: JsonObject = {"candidates": [candidate]}
        if completion.usage:
            prompt = completion.prompt_tokens
            if thoughts_tokens is None:
                thoughts_tokens = completion.reasoning_tokens
            usage: JsonObject = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": candidates_tokens,
                "totalTokenCount": prompt + candidates_tokens + thoughts_tokens,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            }
            if thoughts_tokens:
                usage["thoughtsTokenCount"] = thoughts_tokens
            response["usageMetadata"] = usage
        response["modelVersion"] = completion.model
        response["responseId"] = completion.id or uuid.uuid4().hex
        return response


_Step = tuple[JsonObject, int, int]  # (one part, its thought tokens, its candidate tokens)


def _thoughts_shown(completion: WireReply) -> bool:
    """Thought parts are sent when the request asked for them (`includeThoughts`)."""
    return bool(completion.reasoning) and getattr(completion.request, "include_thoughts", True)


def _malformed(completion: WireReply) -> str | None:
    """The argument text of the first call whose arguments are not a JSON object: Gemini
    sends arguments as an object, so it ends such a reply `MALFORMED_FUNCTION_CALL`."""
    for call in completion.tool_calls:
        if not isinstance(call.arguments, dict):
            return call.arguments_json
    return None


def _call_parts(completion: WireReply) -> list[JsonObject]:
    """The reply's `functionCall` parts (no `id`: the API sends none for most models); the
    first carries the thought signature when the model reasoned."""
    parts: list[JsonObject] = []
    for call in completion.tool_calls:
        part: JsonObject = {"functionCall": {"name": call.name, "args": call.arguments}}
        if completion.reasoning and not parts:
            part["thoughtSignature"] = completion.signature
        parts.append(part)
    return parts


def _parts(completion: WireReply) -> list[JsonObject]:
    """A whole reply's parts: thoughts, text, calls; without calls the signature goes on the
    last part (as Gemini 3 does)."""
    parts: list[JsonObject] = []
    if _thoughts_shown(completion):
        parts.append({"text": completion.reasoning, "thought": True})
    calls = [] if _malformed(completion) is not None else _call_parts(completion)
    if completion.text or not calls:
        parts.append({"text": completion.text})
    if calls:
        parts += calls
    elif completion.reasoning:
        parts[-1]["thoughtSignature"] = completion.signature
    return parts


def _steps(completion: WireReply) -> list[_Step]:
    """A streamed reply's parts, one per event: thought pieces, text pieces, then each call
    whole. Without calls the signature rides on the last text part (an empty one if the
    reply has no text)."""
    steps: list[_Step] = []
    if _thoughts_shown(completion):
        steps += [
            ({"text": piece, "thought": True}, count_tokens(piece), 0)
            for piece in completion.reasoning_pieces
        ]
    steps += [({"text": piece}, 0, count_tokens(piece)) for piece in completion.pieces]
    if _malformed(completion) is not None:
        steps.append(({"text": ""}, 0, 0))  # its frame becomes the MALFORMED_FUNCTION_CALL end
        return steps
    calls = _call_parts(completion)
    if calls:
        steps += [
            (part, 0, count_tokens(call.arguments_json))
            for part, call in zip(calls, completion.tool_calls, strict=True)
        ]
    elif completion.reasoning:
        if not completion.pieces:
            steps.append(({"text": ""}, 0, 0))
        steps[-1][0]["thoughtSignature"] = completion.signature
    return steps
