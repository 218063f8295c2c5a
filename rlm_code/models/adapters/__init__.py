"""Provider adapters: one per wire protocol, behind the `base.Adapter` contract.

=====================  ================================  =====================================
adapter type           module                            speaks
=====================  ================================  =====================================
``openai``             `openai_sdk.OpenAIAdapter`        OpenAI through the ``openai`` SDK
``anthropic``          `anthropic_sdk.AnthropicAdapter`  Anthropic through the ``anthropic`` SDK
``gemini``             `gemini_sdk.GeminiAdapter`        Gemini through ``google-genai``
``ollama``             `ollama.OllamaAdapter`            Ollama's REST API (httpx2 / aiohttp)
``openai_compatible``  `openai_compatible.<...>Adapter`  ``/v1/chat/completions`` (raw HTTP)
(OpenCode keyless)     `opencode_cli.OpenCodeCLIAdapter` the local ``opencode run`` command
=====================  ================================  =====================================

Importing this package loads nothing heavy: `base.load_adapter` imports an adapter module, and
the adapter imports its SDK (`base.require_sdk`) or HTTP stack, when a connection needs it.

Every adapter maps failures to the typed errors of `rlm_code.core.exceptions` once, at its own
boundary, and retries through the same `retry.RetryPolicy` (the SDKs' own retries are off), so
every provider fails the same way for the same fault. The contract suite
(`tests/models/adapters/test_contract.py`) checks this table against the local protocol
server's fault modes (`rlm_code.testing`), for plain, streamed, async and async-streamed calls
of all five adapter types. "Attempts" counts requests with ``retries.max_attempts: 3``.

==============  ===========================================================  ===============
fault           error raised                                                 attempts
==============  ===========================================================  ===============
429             `RateLimitError`, ``retry_after`` = the ``Retry-After``      up to 3, waiting
                seconds (Gemini: also a ``RetryInfo`` detail)                Retry-After; 1
                                                                             if it is longer
                                                                             than
                                                                             ``backoff_max``
401             `AuthenticationError`                                        1 (never)
404             `ModelNotFoundError` (the body names the model)              1
500             `ProviderError`, ``status_code`` 500                         3 (backoff)
503             `ProviderError`, ``status_code`` 503                         3 (backoff)
html            `ProviderError`, ``status_code`` 502, "HTML page"            3 (502 is a
                                                                             gateway error)
malformed       `ResponseFormatError`                                        1
truncate        `ProviderError` ("closed the connection before the answer    1
                was complete"): the reply may be partial, so never re-sent
no_terminator   streams: `ProviderError` ("without its end marker");         1
                whole replies: no error (they have no end marker)
bad_utf8        `ResponseFormatError`; exception: blocking Gemini calls,     1
                where google-genai decodes leniently and the text holds
                U+FFFD (no error)
split_utf8      no error; the exact text ``"héllo → 日本"``                  1
empty           no error; ``""`` with 0 completion tokens                    1
empty_body      whole replies: `ResponseFormatError`; streams:               1
                `ProviderError` ("without its end marker")
drip            no error (each pause is shorter than the read timeout)       1
hang            `ModelTimeoutError` after the read timeout (Gemini async:    1 (a read
                after read + connect, see `gemini_sdk`)                      timeout is not
                                                                             retried)
no_usage        no error; the call is counted with unknown usage             1
                (``unknown_usage_calls`` + 1, token totals unchanged)
==============  ===========================================================  ===============

Transport failures follow the same rule everywhere (`errors` has the table, and the one
boundary per transport that applies it): refused or reset before an answer and connect
timeouts are `ProviderConnectionError` / `ModelTimeoutError` and retried; a read timeout or a
connection cut mid-answer is raised at once. Streams are retried only until they are open,
never after text has been yielded.

A call's `timeout` (`GenerationParams.timeout`) bounds the whole call: connecting, waiting,
reading every byte, and the retries' waits; past it the call ends in `ModelTimeoutError`,
however slowly the server drips bytes. Without it, the connection's connect and read timeouts
bound each step. Replies are capped (`_lines.MAX_LINE_BYTES`, `_lines.MAX_REPLY_BYTES`, after
decompression), redirects are never followed, and a stream stops reading at its end marker.

Modules of the raw-HTTP route: `_transport` (httpx2 and aiohttp clients), `_lines` (line and
SSE readers, size caps), `_loop_local` (one resource per event loop), `http_adapter` (the call
loop shared by ``ollama`` and ``openai_compatible``).
"""
