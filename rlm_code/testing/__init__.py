"""Local protocol server: one loopback port speaking six LLM APIs, for tests and offline work.

Connector, discovery and CLI tests need real HTTP exchanges with exact, predictable answers and
every kind of failure on demand; users need something to talk to offline. This server speaks
the wire formats of OpenAI, Anthropic, Gemini, Ollama, TGI and llama.cpp (plain and streamed) as
the real services send them, so the official SDKs parse its answers unchanged::

    from rlm_code.testing import run_local_server

    with run_local_server() as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test-123")

Importing this package is cheap: names are loaded on first use (aiohttp only then).

Routes
------
OpenAI (also TGI and llama.cpp): ``POST /v1/chat/completions``, ``GET /v1/models[/{id}]``.
Anthropic: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``, ``GET /v1/models[/{id}]``
when the request has an ``anthropic-version`` header (else OpenAI's list shape).
Gemini: ``POST /v1beta/models/{model}:generateContent``, ``...:streamGenerateContent?alt=sse``,
``...:countTokens``, ``GET /v1beta/models[/{model}]``.
Ollama: ``POST /api/chat``, ``POST /api/generate``, ``POST /api/show``, ``GET /api/tags``,
``GET /api/version``, ``GET /api/ps``, ``GET /`` ("Ollama is running").
TGI: ``GET /info``; llama.cpp: ``GET /props``; both: ``GET /health``.
LM Studio: ``GET /api/v0/models``; SGLang: ``GET /get_model_info`` (with OpenAI enabled).
Routes of disabled protocols answer a plain 404.

Keys
----
``require_key=None`` accepts anything; a string requires exactly that key; ``True`` requires any
non-empty key. Keys are read from ``Authorization: Bearer`` (OpenAI, TGI, llama.cpp, Ollama),
``x-api-key`` or ``Authorization: Bearer`` (Anthropic; its SDK 2.x sends the latter),
``x-goog-api-key`` or ``?key=`` (Gemini). A missing key gets
OpenAI 401 ``invalid_request_error``, Anthropic 401 ``authentication_error``, Gemini 403
``PERMISSION_DENIED``, Ollama 401 ``{"error": "unauthorized"}``; a wrong key gets the same
except Gemini: 400 ``INVALID_ARGUMENT`` with reason ``API_KEY_INVALID``. Keys never appear in
answers, and there is no access log (a Gemini URL may hold ``?key=``). ``/health``,
``/api/version`` and ``/`` need no key.

Models
------
Default names: ``test-model``, ``llama3.2:latest``, ``qwen2.5-coder:7b``, ``gpt-4o-mini``,
``claude-sonnet-4-5-20250929``, ``gemini-2.5-flash``; ``models=[...]`` adds to them. Ollama
routes know only these (an untagged name means ``:latest``) and answer other names with Ollama's
404 ``model "NAME" not found, try pulling it first``. The other protocols accept any model name
unless ``strict_models=True``, which gives each protocol's model-not-found 404.

Deterministic answers
---------------------
* Reply: ``echo_reply(text)`` = ``"Echo: " + text``, where text is the last user message (for
  content blocks and parts, the concatenation, without separator, of their ``text`` values;
  Ollama ``/api/generate``: the prompt). ``set_reply(model, text)`` overrides it per model.
* ``count_tokens(text)`` = ``len(text.split())``.
* Prompt tokens = the sum of ``count_tokens`` over the text of every message in the request,
  system prompt included: OpenAI messages of any role, Anthropic ``system`` (string or text
  blocks) plus messages, Gemini ``systemInstruction`` plus ``contents``, Ollama messages, or
  ``system`` plus ``prompt`` for ``/api/generate``. Completion tokens = ``count_tokens(reply)``.
* A max-tokens limit (OpenAI ``max_tokens``/``max_completion_tokens``, Anthropic
  ``max_tokens``, Gemini ``generationConfig.maxOutputTokens``, Ollama ``options.num_predict``)
  smaller than the reply's word count cuts the reply to that many words (trailing spaces
  dropped) and reports ``length`` / ``max_tokens`` / ``MAX_TOKENS`` / ``done_reason: length``.
  Anthropic requires ``max_tokens`` (400 ``invalid_request_error`` without it), as the real API.
* Streams send one content chunk per word piece: ``re.findall(r"\\S+\\s*", reply)``, so the
  chunks join to the reply exactly. A request header ``X-Stream-Chunks: N`` first pads the
  reply with ``" word"`` until it has at least N pieces (streamed requests only; at most
  100,000). Frames are encoded one at a time as they are sent and the server yields to its
  event loop between frames, so a long stream never holds up other requests.
* Usage on the wire: OpenAI ``usage`` (streams: a last chunk with ``choices: []`` when
  ``stream_options.include_usage``), Anthropic ``usage`` (streams: ``message_start`` has the
  input tokens and ``output_tokens`` 1, or 0 for an empty reply; ``message_delta`` the final
  output count), Gemini ``usageMetadata`` on every event (cumulative), Ollama
  ``prompt_eval_count``/``eval_count`` on the ``done: true`` object.
* Latency: ``latency_ms`` for every request, or the request header ``X-Latency-Ms: N``.

Tool calls, reasoning, structured output
----------------------------------------
Every protocol speaks them as its provider does (streamed argument deltas, Anthropic
``input_json_delta`` and ``signature_delta``, Gemini ``functionCall`` parts, Ollama
``tool_calls`` and ``thinking``). What the "model" does is deterministic: a queue of
``ScriptedReply`` (``server.queue_replies([...])``) or documented conventions (a user line
``call NAME {json}`` calls a tool; tool results are answered ``"Tool result: ..."``; a JSON
schema gets a valid instance; reasoning is ``"Thinking about: ..."``), see
``rlm_code.testing.scripted``. ``strict=True`` makes each protocol refuse, with its provider's
real 400 body, a conversation that forgot a tool result or did not send reasoning back.

Model profiles: context limits, capabilities, Ollama and Mistral modes
-----------------------------------------------------------------------
Driven by the model name alone (`rlm_code.testing.modes`), so no server flag is needed:

* ``ctxN`` or ``ctxNk`` as a part of the name (``tiny-ctx8192``, ``coder-ctx32k:latest``) sets
  the model's context window to N tokens (words). A prompt above it gets the protocol's own
  context-length error (the ``context_length`` fault bodies, with the real figures); Ollama
  instead cuts it, as below. ``/api/show`` (``model_info["<arch>.context_length"]``, else
  131072), ``/props`` (``default_generation_settings.n_ctx`` of the served model: the first
  one added with ``models=``, else ``test-model``; 4096 without ``ctxN``), ``/v1/models``
  (vLLM's ``max_model_len``, only on names with ``ctxN``) and ``/api/v0/models``
  (``loaded_context_length``, 4096 without ``ctxN``) report it.
* ``vision``, ``-vl`` or ``llava`` in the name: images (Ollama ``capabilities``, LM Studio
  ``type: "vlm"``, SGLang ``has_image_understanding``, llama.cpp ``modalities``); ``think`` or
  ``-r1``: Ollama's ``thinking`` capability; ``notools``: no ``tools`` / ``tool_use``.
* Ollama truncation: a prompt longer than the context is cut to its last tokens without an
  error (``prompt_eval_count`` says how many were kept, the echo answers the tail), as Ollama
  does. The context is ``options.num_ctx`` when sent, else 4096 (Ollama's default on machines
  with less than 24 GiB of VRAM), never more than the model's own.
* Mistral: a model named ``mistral*``, ``codestral*``, ``ministral*``, ``magistral*``,
  ``devstral*`` or ``pixtral*`` on the OpenAI route answers ``stream_options`` or
  ``max_completion_tokens`` with Mistral's 422 (``{"object": "error", "message": {"detail":
  [{"type": "extra_forbidden", "loc": ["body", FIELD], ...}]}, "type":
  "invalid_request_error"}``), and its streams carry usage without being asked.

Load counters and rate limits
-----------------------------
``server.in_flight``, ``server.max_in_flight`` (since ``server.reset_counters()``) and
``server.connections_opened`` give the server's view of a client's concurrency and connection
reuse. ``ratelimit=(N, WINDOW_S)`` makes the server act like a provider with a request limit:
OpenAI-style ``x-ratelimit-*`` headers on every answer and a 429 with ``Retry-After`` past the
limit (see ``rlm_code.testing.limits``).

Recorded requests
-----------------
``server.requests`` lists what the server received, for assertions, and is bounded so a
long-running ``serve-local`` does not grow: the newest ``max_recorded_requests`` (default 1000)
requests are kept, each body cut to ``max_recorded_body`` bytes (default 64 KiB; a cut record
has ``truncated=True``, ``json=None`` and ``body_size`` the length received).
``server.recorded_bytes`` is what the kept bodies weigh. Requests themselves may be up to 64 MiB.

Faults
------
Chosen per request by the ``X-Fault: MODE`` header, else a model named ``fault-MODE`` (Gemini:
in the URL), else the next entry of ``script_faults([...])`` (a FIFO; every request to a
protocol route but Ollama's ``/`` takes one entry; ``"ok"`` means no fault).
``X-Retry-After: S`` and ``X-Drip-Ms: N`` set parameters. Unknown modes get a 400. Error
bodies are each protocol's own: OpenAI ``{"error": {message, type, param, code}}``, Anthropic
``{"type": "error", "error": {type, message}}``, Gemini ``{"error": {code, message, status}}``,
Ollama ``{"error": "..."}`` (TGI ``{"error", "error_type"}`` and llama.cpp
``{"error": {code, message, type}}`` on their own routes). The modes (`FAULT_MODES`):

``429``
    Status 429 with ``Retry-After`` (default 1, from ``X-Retry-After``). OpenAI
    ``requests``/``rate_limit_exceeded``, Anthropic ``rate_limit_error``, Gemini
    ``RESOURCE_EXHAUSTED`` with a ``RetryInfo`` detail, Ollama ``{"error": ...}``.
``401``
    Status 401: OpenAI ``invalid_api_key``, Anthropic ``authentication_error``, Gemini
    ``UNAUTHENTICATED``, Ollama ``unauthorized``.
``404``
    Each protocol's model-not-found 404 (OpenAI ``model_not_found``, Anthropic
    ``not_found_error``, Gemini ``NOT_FOUND``, Ollama ``model "X" not found...``).
``500``
    OpenAI ``server_error``, Anthropic ``api_error``, Gemini ``INTERNAL``, Ollama runner error.
``503``
    OpenAI ``server_error`` (engine overloaded), Anthropic status 503 ``api_error`` (the real
    API signals overload with 529 ``overloaded_error``; 503 is kept for a uniform status),
    Gemini ``UNAVAILABLE``, Ollama "server busy".
``html``
    Status 502, ``text/html``: an nginx "502 Bad Gateway" page, as a proxy in front would send.
``malformed``
    Non-streamed: status 200, ``application/json``, the first half of the real JSON (invalid).
    Streamed: an invalid-JSON frame (``data: {...`` cut, Anthropic with its ``event:`` line,
    Ollama an NDJSON line) right after the first content chunk; the stream then goes on.
``truncate``
    Streamed: the opening frames and half of the content chunks, then the TCP connection is
    closed without the chunked-encoding terminator. Non-streamed: ``Content-Length`` of the
    full body, half of it sent, then the connection is closed.
``no_terminator``
    Streams end cleanly but without OpenAI ``data: [DONE]``, Anthropic ``message_stop``, Ollama's
    ``done: true`` object, or (Gemini has no terminator) the ``finishReason`` of the last event.
    Non-streamed answers are normal.
``bad_utf8``
    The bytes ``FF FE`` (invalid UTF-8) inside the reply text, right after its first word piece
    (raw, inside the JSON string): in the second content chunk of a stream, or in the body.
``split_utf8``
    The reply is ``"héllo → 日本"`` and every frame (or the body) is written in several TCP
    writes, each cut inside a multi-byte character, 5 ms apart. Valid; clients must reassemble.
``empty``
    A valid answer whose text is ``""`` with 0 completion tokens (streams: no content chunks;
    Gemini: one event with an empty text part).
``empty_body``
    Status 200 with a zero-length body (``Content-Length: 0``).
``drip``
    Streams pause ``X-Drip-Ms`` (default 200 ms) between frames; non-streamed answers come after
    one such pause.
``hang``
    The request is accepted and never answered; the connection is dropped when the client
    leaves or the server stops (stopping does not wait for it).
``no_usage``
    A valid answer without usage: no OpenAI ``usage`` (nor usage chunk), no Anthropic
    ``usage`` (the SDK's ``MessageStream`` helper cannot accumulate that; raw events work), no
    Gemini ``usageMetadata``, no Ollama ``prompt_eval_count``/``eval_count``.

The body faults answer a POST with the service's own body for an error an agent can act on,
before any model work; a service without such an error answers normally. The figures of
``context_length`` are ``X-Context-Limit`` (default 4096) and ``X-Context-Requested`` (5000).

``context_length``
    Status 400: OpenAI ``context_length_exceeded`` ("This model's maximum context length is
    4096 tokens. However, your messages resulted in 5000 tokens..."), Anthropic
    ``invalid_request_error`` "prompt is too long: 5000 tokens > 4096 maximum", Gemini
    ``INVALID_ARGUMENT`` "The input token count (5000) exceeds the maximum number of tokens
    allowed (4096).", Ollama ``{"error": "<llama-server body as a JSON string>"}`` (what it
    sends with ``truncate: false``; by default Ollama silently shortens the prompt), llama.cpp
    ``exceed_context_size_error`` with ``n_prompt_tokens``/``n_ctx``; TGI status 422
    ``validation`` ("`inputs` tokens + `max_new_tokens` must be <= 4096...").
``content_filter``
    OpenAI status 400 ``content_filter`` (Azure OpenAI's body, ``innererror``
    ``ResponsibleAIPolicyViolation``); Anthropic status 400 "Output blocked by content filtering
    policy", or for a streamed request a 200 stream that begins (message_start, a text block,
    one delta) and ends with that ``error`` event; Gemini status 200 without candidates,
    ``promptFeedback.blockReason: SAFETY`` (streamed: that one event). Ollama, llama.cpp and TGI
    have no content filter: a normal answer.
``unsupported_parameter``
    Status 400: OpenAI ``unsupported_parameter`` "Unsupported parameter: 'temperature' is not
    supported with this model.", Anthropic "`temperature` and `top_p` cannot both be specified
    for this model...", Gemini "Function calling is not enabled for models/MODEL", Ollama
    ``"MODEL" does not support thinking``, llama.cpp "Unsupported param: best_of". TGI ignores
    parameters it does not use: a normal answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rlm_code.testing.faults import FAULT_MODES
    from rlm_code.testing.server import LocalProtocolServer, run_local_server
    from rlm_code.testing.state import PROTOCOLS, RecordedRequest
    from rlm_code.testing.text import count_tokens, echo_reply

__all__ = [
    "FAULT_MODES",
    "PROTOCOLS",
    "LocalProtocolServer",
    "RecordedRequest",
    "ScriptedReply",
    "count_tokens",
    "echo_reply",
    "run_local_server",
]

_LAZY = {
    "FAULT_MODES": "rlm_code.testing.faults",
    "PROTOCOLS": "rlm_code.testing.state",
    "RecordedRequest": "rlm_code.testing.state",
    "ScriptedReply": "rlm_code.testing.scripted",
    "LocalProtocolServer": "rlm_code.testing.server",
    "run_local_server": "rlm_code.testing.server",
    "count_tokens": "rlm_code.testing.text",
    "echo_reply": "rlm_code.testing.text",
}


def __getattr__(name: str) -> Any:
    module_name = _LAZY.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
