"""The aiohttp application of the local protocol server: routes and the per-request flow.

Every protocol route goes through the same steps, in the order a real service would apply them:
record the request, take the next scripted fault, wait the configured latency, check the key,
pick the fault (header, then ``fault-MODE`` model, then the script), then parse, check the model
and answer. Only the JSON shapes differ per protocol; they come from `rlm_code.testing.formats`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from rlm_code.testing.completion import complete
from rlm_code.testing.faults import (
    BODY_FAULTS,
    STATUS_FAULTS,
    Fault,
    UnknownFaultError,
    fault_from_model,
    fault_reply,
    int_header,
    is_fault_model,
    parse_fault_mode,
)
from rlm_code.testing.formats import (
    AnthropicFormat,
    GeminiFormat,
    LlamaCppFormat,
    OllamaFormat,
    OpenAIFormat,
    TgiFormat,
)
from rlm_code.testing.formats.ollama import OLLAMA_VERSION
from rlm_code.testing.info_routes import InfoRoutes
from rlm_code.testing.modes import chat_mode
from rlm_code.testing.state import RecordedRequest, ServerState
from rlm_code.testing.text import total_tokens
from rlm_code.testing.wire import (
    ErrorKind,
    ErrorReply,
    JsonObject,
    WireError,
    WireFormat,
    WireRequest,
    dumps,
)
from rlm_code.testing.writers import HTML_BAD_GATEWAY, hang, pause, send_body, send_stream

__all__ = ["build_app"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Exchange:
    """One request in flight: what was received and which fault the script handed it."""

    request: web.Request
    fmt: WireFormat
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    json: object
    scripted: str | None


class _Routes(InfoRoutes):
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.config = state.config
        self.openai = OpenAIFormat()
        self.anthropic = AnthropicFormat()
        self.gemini = GeminiFormat()
        self.ollama = OllamaFormat()
        self.tgi = TgiFormat()
        self.llamacpp = LlamaCppFormat()

    # -- route table ----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        add = app.router.add_route
        enabled = self.config.enabled
        if enabled("openai", "tgi", "llamacpp", "anthropic", "gemini"):
            # Shared by OpenAI, Anthropic and Gemini's ``v1``; see `_v1_models_format`.
            add("GET", "/v1/models", self.v1_models)
            add("GET", "/v1/models/{model:.+}", self.v1_model)
        if enabled("openai", "tgi", "llamacpp"):
            add("POST", "/v1/chat/completions", self.openai_chat)
        if enabled("anthropic"):
            add("POST", "/v1/messages", self.anthropic_messages)
            add("POST", "/v1/messages/count_tokens", self.anthropic_count_tokens)
        if enabled("gemini"):
            # google-genai 3.x defaults to ``v1``, earlier versions to ``v1beta``: serve both.
            add("POST", "/v1/models/{model:.+}", self.gemini_call)
            add("GET", "/v1beta/models", self.gemini_models)
            add("GET", "/v1beta/models/{model:.+}", self.gemini_model)
            add("POST", "/v1beta/models/{model:.+}", self.gemini_call)
        if enabled("ollama"):
            add("GET", "/", self.ollama_root)
            add("HEAD", "/", self.ollama_root)  # the ollama CLI's heartbeat
            add("GET", "/api/tags", self.ollama_tags)
            add("GET", "/api/version", self.ollama_version)
            add("GET", "/api/ps", self.ollama_ps)
            add("POST", "/api/show", self.ollama_show)
            add("POST", "/api/chat", self.ollama_chat)
            add("POST", "/api/generate", self.ollama_generate)
        if enabled("tgi"):
            add("GET", "/info", self.tgi_info)
        if enabled("llamacpp"):
            add("GET", "/props", self.llamacpp_props)
        if enabled("tgi", "llamacpp"):
            add("GET", "/health", self.health)
        if enabled("openai"):
            add("GET", "/api/v0/models", self.lmstudio_models)  # LM Studio
            add("GET", "/get_model_info", self.sglang_model_info)  # SGLang

    # -- OpenAI, TGI, llama.cpp -----------------------------------------------------------------

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self._openai_family(), endpoint="chat")

    # -- Anthropic ------------------------------------------------------------------------------

    async def anthropic_messages(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self.anthropic, endpoint="messages")

    async def anthropic_count_tokens(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self.anthropic, endpoint="count_tokens")

    # -- Gemini ---------------------------------------------------------------------------------

    async def gemini_call(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["model"].rpartition(":")
        if method not in ("generateContent", "streamGenerateContent", "countTokens"):
            raise web.HTTPNotFound()
        return await self._chat(request, self.gemini, endpoint=method, path_model=model)

    # -- Ollama ---------------------------------------------------------------------------------

    async def ollama_root(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text="Ollama is running")

    async def ollama_tags(self, request: web.Request) -> web.StreamResponse:
        names = list(self.config.models)
        return await self._document(request, self.ollama, lambda: self.ollama.render_tags(names))

    async def ollama_version(self, request: web.Request) -> web.StreamResponse:
        return await self._document(
            request, self.ollama, lambda: {"version": OLLAMA_VERSION}, auth=False
        )

    async def ollama_ps(self, request: web.Request) -> web.StreamResponse:
        return await self._document(request, self.ollama, lambda: {"models": []})

    async def ollama_show(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self.ollama, endpoint="show")

    async def ollama_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self.ollama, endpoint="chat")

    async def ollama_generate(self, request: web.Request) -> web.StreamResponse:
        return await self._chat(request, self.ollama, endpoint="generate")

    # -- the shared flow ------------------------------------------------------------------------

    async def _receive(self, request: web.Request, fmt: WireFormat) -> _Exchange | None:
        """Record the request, take a scripted fault and wait the latency; None if stopped."""
        body = await request.read()
        parsed: object = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        query = {name: value for name, value in request.query.items()}
        self.state.record(
            RecordedRequest(
                method=request.method,
                path=request.path,
                query=query,
                headers=headers,
                json=parsed,
                body=body,
            )
        )
        scripted = self.state.next_scripted_fault()
        latency_ms = int_header(headers, "x-latency-ms", self.config.latency_ms)
        if latency_ms > 0 and not await pause(request, self.state.stopping, latency_ms / 1000):
            return None
        return _Exchange(request, fmt, headers, query, body, parsed, scripted)

    def _auth_error(self, ex: _Exchange) -> ErrorKind | None:
        required = self.config.require_key
        if required is None or required is False:
            return None
        key = ex.fmt.api_key(ex.headers, ex.query)
        if key is None:
            return "auth_missing"
        if required is True:
            return None
        if not hmac.compare_digest(key.encode(), str(required).encode()):
            return "auth_invalid"
        return None

    def _choose_fault(self, ex: _Exchange, model: str) -> Fault | None:
        """Header beats model name beats the script (whose entry was consumed either way)."""
        mode: str | None
        header = ex.headers.get("x-fault")
        if header is not None:
            mode = parse_fault_mode(header)
        else:
            mode = fault_from_model(model) if model else None
            if mode is None:
                mode = ex.scripted
        return Fault.from_headers(mode, ex.headers) if mode else None

    async def _error(
        self,
        ex: _Exchange,
        kind: ErrorKind,
        *,
        model: str = "",
        message: str | None = None,
        param: str | None = None,
        fault: Fault | None = None,
    ) -> web.StreamResponse:
        retry_after = fault.retry_after if fault else 1
        reply = ex.fmt.error(
            kind, model=model, message=message, param=param, retry_after=retry_after
        )
        return await self._reply(ex, reply, retry_after)

    async def _reply(self, ex: _Exchange, reply: ErrorReply, retry: int = 1) -> web.StreamResponse:
        """Send an `ErrorReply` (a text body is plain text unless it names its Content-Type)."""
        headers = {**ex.fmt.response_headers(), **reply.headers}
        if reply.status == 429:
            headers["Retry-After"] = str(retry)
        text = reply.body if isinstance(reply.body, str) else None
        return await send_body(
            ex.request,
            self.state.stopping,
            status=reply.status,
            body=text.encode() if text is not None else dumps(reply.body),
            content_type=headers.pop(
                "Content-Type", "application/json" if text is None else "text/plain"
            ),
            headers=headers,
            fault=None,
        )

    async def _fault_answer(
        self, ex: _Exchange, fault: Fault, model: str
    ) -> web.StreamResponse | None:
        """The answer of a fault that replaces the whole response, else None."""
        if fault.mode == "hang":
            return await hang(ex.request, self.state.stopping)
        if fault.mode == "html":
            return await send_body(
                ex.request,
                self.state.stopping,
                status=502,
                body=HTML_BAD_GATEWAY.encode(),
                content_type="text/html",
                headers={"Server": "nginx"},
                fault=None,
            )
        kinds: dict[str, ErrorKind] = {
            "429": "rate_limit",
            "401": "unauthorized",
            "404": "not_found",
            "500": "server_error",
            "503": "unavailable",
        }
        if fault.mode in kinds:
            return await self._error(ex, kinds[fault.mode], model=model, fault=fault)
        return None

    async def _prelude(
        self, request: web.Request, fmt: WireFormat, model: str, *, auth: bool = True
    ) -> tuple[_Exchange | None, Fault | None, web.StreamResponse | None]:
        """Steps shared by every route; a response in the result means: answer that."""
        ex = await self._receive(request, fmt)
        if ex is None:
            return None, None, web.Response(status=503)
        if auth and (kind := self._auth_error(ex)) is not None:
            return ex, None, await self._error(ex, kind)
        if not model and isinstance(ex.json, dict) and isinstance(ex.json.get("model"), str):
            model = ex.json["model"]
        try:
            fault = self._choose_fault(ex, model)
        except UnknownFaultError as exc:
            return ex, None, await self._error(ex, "bad_request", message=str(exc))
        if fault is not None and (fault.mode in STATUS_FAULTS or fault.mode == "hang"):
            return ex, fault, await self._fault_answer(ex, fault, model)
        if fault is not None and fault.mode in BODY_FAULTS and request.method == "POST":
            reply = fault_reply(fmt, fault, model=model, body=ex.json, path=request.path)
            if reply is not None:  # else the service has no such error: answered normally
                return ex, fault, await self._reply(ex, reply)
        return ex, fault, None

    async def _document(
        self,
        request: web.Request,
        fmt: WireFormat,
        render: Callable[[], JsonObject] | None,
        model: str = "",
        *,
        auth: bool = True,
    ) -> web.StreamResponse:
        """Answer a GET route with a JSON document (or an empty 200 when ``render`` is None)."""
        ex, fault, answer = await self._prelude(request, fmt, model, auth=auth)
        if answer is not None:
            return answer
        assert ex is not None
        known = self.state.model_exists(model) or is_fault_model(model)
        if model and self.config.strict_models and not known:
            return await self._error(ex, "not_found", model=model)
        body = dumps(render()) if render is not None else b""
        return await send_body(
            request,
            self.state.stopping,
            status=200,
            body=body,
            content_type="application/json",
            headers=fmt.response_headers(),
            fault=fault,
        )

    async def _chat(
        self,
        request: web.Request,
        fmt: WireFormat,
        *,
        endpoint: str,
        path_model: str | None = None,
    ) -> web.StreamResponse:
        ex, fault, answer = await self._prelude(request, fmt, path_model or "")
        if answer is not None:
            return answer
        assert ex is not None
        if ex.json is None:
            message = "We could not parse the JSON body of your request."
            return await self._error(ex, "bad_request", message=message)
        try:
            chat = fmt.parse(ex.json, endpoint=endpoint, path_model=path_model)
        except WireError as exc:
            return await self._error(ex, exc.kind, message=exc.message, param=exc.param)
        strict = self.config.strict_models or fmt is self.ollama
        known = self.state.model_exists(chat.model) or is_fault_model(chat.model)
        if strict and not known:
            return await self._error(ex, "not_found", model=chat.model)
        if endpoint in ("count_tokens", "countTokens", "show"):
            return await self._send_info(ex, fmt, chat, endpoint)
        chat, refusal = chat_mode(fmt, chat, ex.json, request.path)
        if refusal is not None:
            return await self._reply(ex, refusal)
        if self.config.strict and chat.strict_problem is not None:
            problem = chat.strict_problem
            return await self._error(ex, problem.kind, message=problem.message, param=problem.param)
        completion = complete(
            chat,
            scripted=self.state.reply_for(chat.model),
            queued=self.state.next_queued_reply(),
            fault_mode=fault.mode if fault else None,
            min_chunks=int_header(ex.headers, "x-stream-chunks", 0),
        )
        headers = fmt.response_headers()
        if chat.stream:
            return await send_stream(
                request,
                self.state.stopping,
                plan=fmt.stream(
                    completion, terminate=fault is None or fault.mode != "no_terminator"
                ),
                content_type=fmt.stream_content_type,
                headers=headers,
                malformed_frame=fmt.malformed_frame(),
                fault=fault,
            )
        return await send_body(
            request,
            self.state.stopping,
            status=200,
            body=dumps(fmt.render(completion)),
            content_type="application/json",
            headers=headers,
            fault=fault,
        )

    async def _send_info(
        self, ex: _Exchange, fmt: WireFormat, chat: WireRequest, endpoint: str
    ) -> web.StreamResponse:
        """Token counting and Ollama's model details: small documents about the request."""
        prompt = total_tokens(chat.texts)
        document: JsonObject
        if endpoint == "count_tokens":
            document = {"input_tokens": prompt}
        elif endpoint == "countTokens":
            document = {"totalTokens": prompt}
        else:
            document = self.ollama.render_show(chat.model)
        return await send_body(
            ex.request,
            self.state.stopping,
            status=200,
            body=dumps(document),
            content_type="application/json",
            headers=fmt.response_headers(),
            fault=None,
        )


def build_app(state: ServerState) -> web.Application:
    """The application for one server; routes of disabled protocols are simply absent (404)."""
    app = web.Application(client_max_size=64 * 1024 * 1024)
    _Routes(state).install(app)
    return app
