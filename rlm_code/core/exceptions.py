"""Typed errors of the provider layer.

Callers catch one base, `ModelError`; its children say what went wrong and every message
says what to do next. Adapters map SDK and HTTP errors onto these once, at their boundary.

    RLMCodeError
    ├── ConfigError                  a config file or setting is malformed
    └── ModelError                   anything about providers, models and calls
        ├── InvalidInputError        bad argument (empty prompt, wrong type); also a ValueError
        │   └── UnsupportedParameterError  a setting this provider or route cannot honour
        ├── ProviderNotFoundError    unknown provider id or alias
        ├── MissingAPIKeyError       no key in the argument, env vars or key store
        ├── InvalidAPIKeyFormatError key does not have the provider's prefix (never echoed)
        ├── SDKNotInstalledError     provider SDK missing; message has the exact pip command
        ├── NotConnectedError        generate called before connect
        ├── ModelNotFoundError       the provider does not know the model
        ├── ProviderConnectionError  cannot reach the server (refused, DNS, reset)
        ├── AuthenticationError      401/403: key rejected
        ├── RateLimitError           429; carries `retry_after` seconds when the provider said
        ├── ModelTimeoutError        connect or read timeout; also a TimeoutError
        ├── BudgetExceededError      a usage budget would be (or was) overspent; says which limit
        └── ProviderError            5xx, HTML pages, malformed or truncated answers
            ├── ResponseFormatError  the answer could not be parsed (bad JSON, bad stream)
            ├── ContextLengthExceededError  the prompt (plus max tokens) is over the context
            └── ContentFilterError   the provider refused the prompt or reply as unsafe

No message, repr or attribute of these errors holds an API key: text passes through
`rlm_code.core.redact.redact` when the error is rendered.
"""

from __future__ import annotations

from rlm_code.core.redact import redact


class RLMCodeError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    def __str__(self) -> str:
        return redact(super().__str__())

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class ConfigError(RLMCodeError):
    """A config file or setting cannot be used. The message names the file and line."""


class ModelError(RLMCodeError):
    """Base of all provider and model errors.

    Attributes:
        provider: provider id the error is about, when known.
        status_code: HTTP status of the failed call, when there was one.
        retry_after: seconds the provider asked us to wait (rate limits), when it said.
        original: type name of the transport or SDK exception this error was mapped from
            (e.g. "httpx2.ReadTimeout"), for debugging; the original itself is not kept, so
            nothing it held (an echoed key, a URL with a password) can leak through it.
    """

    default_hint = ""
    retryable = False  # whether a new attempt may succeed (the retry policy reads this)

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        retry_after: float | None = None,
        hint: str | None = None,
        retryable: bool | None = None,
        original: str | None = None,
    ) -> None:
        hint = self.default_hint if hint is None else hint
        text = message.rstrip()
        if hint and hint not in text:
            text = f"{text} {hint}" if text.endswith((".", "!", "?")) else f"{text}. {hint}"
        super().__init__(text)
        self.provider = provider
        self.status_code = status_code
        self.retry_after = retry_after
        self.original = original
        if retryable is not None:
            self.retryable = retryable


class InvalidInputError(ModelError, ValueError):
    """An argument is unusable (empty prompt, wrong type, bad model name)."""

    default_hint = "Check the arguments of the call."


class UnsupportedParameterError(InvalidInputError):
    """A setting the provider's API (or this route to it, or this model) cannot honour.

    Raised before any request is sent wherever the library knows it (a setting is never
    silently dropped), and mapped from the provider's own 400 when only the provider knows
    (e.g. `temperature` on a reasoning model that rejects it)."""

    default_hint = "Leave the setting out, or use a provider that supports it."


class ProviderNotFoundError(ModelError):
    """The provider id or alias is not in the registry."""

    default_hint = "Run `rlm-code providers` to see the supported ids."


class MissingAPIKeyError(ModelError):
    """No API key was found for a provider that needs one."""

    default_hint = (
        "Set the provider's API key env var (see `rlm-code providers --json`) or pass api_key=."
    )


class InvalidAPIKeyFormatError(ModelError):
    """The key does not look like the provider's keys. The key itself is never shown."""

    default_hint = "Check that the key was copied whole and belongs to this provider."


class SDKNotInstalledError(ModelError):
    """The provider's SDK is not installed; the message holds the exact install command."""

    default_hint = "Install it with `pip install 'rlm-code[all]'`."


class NotConnectedError(ModelError):
    """A call needs a connection and there is none."""

    default_hint = "Connect first, e.g. connect_to_model('ollama/llama3.2') or `/connect`."


class ModelNotFoundError(ModelError):
    """The provider does not serve the requested model."""

    default_hint = "Run `rlm-code models PROVIDER` to see the model names."


class ProviderConnectionError(ModelError):
    """The provider's server could not be reached."""

    default_hint = "Check that the server is running and the base URL is right."
    retryable = True


class AuthenticationError(ModelError):
    """The provider rejected the key (HTTP 401 or 403)."""

    default_hint = "Check the API key (env var or `api_key=`) and its permissions."


class RateLimitError(ModelError):
    """The provider is rate limiting us (HTTP 429)."""

    default_hint = "Wait and retry, or lower the request rate."
    retryable = True


class ModelTimeoutError(ModelError, TimeoutError):
    """The call did not finish within its connect or read timeout."""

    default_hint = "Raise the timeout (config `timeouts`) or try again."


class ProviderError(ModelError):
    """The provider failed: a 5xx, an HTML error page, or an answer we cannot use."""

    default_hint = "Retry later; run with --debug for the provider's answer."


class ResponseFormatError(ProviderError):
    """The provider's answer could not be parsed (malformed JSON, broken stream)."""


class ContextLengthExceededError(ProviderError):
    """The request does not fit the model's context window.

    `limit` (the context size) and `requested` (the tokens asked for) are set when the
    provider's error states them; an agent can then shorten the prompt or pick a larger model.
    """

    default_hint = "Shorten the prompt or history, lower max_tokens, or use a larger-context model."

    def __init__(
        self,
        message: str,
        *,
        limit: int | None = None,
        requested: int | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.limit = limit
        self.requested = requested


class ContentFilterError(ProviderError):
    """The provider refused the prompt (or stopped the reply) as unsafe content."""

    default_hint = "Rephrase the request; the provider's safety filter refused it."


class BudgetExceededError(ModelError):
    """A `Budget` limit would be overspent by this request, or was reached mid-stream.

    `limit` names the limit (`max_cost_usd`, `max_input_tokens`, `max_output_tokens`,
    `max_requests`, `deadline_s`), `reached` is the figure reached and `maximum` the limit.
    """

    default_hint = "Raise the budget, or start a new scope."

    def __init__(
        self,
        message: str,
        *,
        limit: str | None = None,
        reached: float | None = None,
        maximum: float | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.limit = limit
        self.reached = reached
        self.maximum = maximum


__all__ = [
    "AuthenticationError",
    "BudgetExceededError",
    "ConfigError",
    "ContentFilterError",
    "ContextLengthExceededError",
    "InvalidAPIKeyFormatError",
    "InvalidInputError",
    "MissingAPIKeyError",
    "ModelError",
    "ModelNotFoundError",
    "ModelTimeoutError",
    "NotConnectedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderNotFoundError",
    "RLMCodeError",
    "RateLimitError",
    "ResponseFormatError",
    "SDKNotInstalledError",
    "UnsupportedParameterError",
]
