"""Typed errors: the tree, their attributes, next-step hints, and no secret in any rendering."""

from __future__ import annotations

import pickle
import traceback

import pytest

from rlm_code.core import exceptions as exc_mod
from rlm_code.core.exceptions import (
    AuthenticationError,
    BudgetExceededError,
    ConfigError,
    ContentFilterError,
    ContextLengthExceededError,
    InvalidAPIKeyFormatError,
    InvalidInputError,
    MissingAPIKeyError,
    ModelError,
    ModelNotFoundError,
    ModelTimeoutError,
    NotConnectedError,
    ProviderConnectionError,
    ProviderError,
    ProviderNotFoundError,
    RateLimitError,
    ResponseFormatError,
    RLMCodeError,
    SDKNotInstalledError,
    UnsupportedParameterError,
)
from rlm_code.core.redact import MASK, register_secret

MODEL_ERRORS: list[type[ModelError]] = [
    InvalidInputError,
    ProviderNotFoundError,
    MissingAPIKeyError,
    InvalidAPIKeyFormatError,
    SDKNotInstalledError,
    NotConnectedError,
    ModelNotFoundError,
    ProviderConnectionError,
    AuthenticationError,
    BudgetExceededError,
    RateLimitError,
    ModelTimeoutError,
    ProviderError,
    ResponseFormatError,
    UnsupportedParameterError,
    ContentFilterError,
    ContextLengthExceededError,
    BudgetExceededError,
]
ALL_ERRORS: list[type[RLMCodeError]] = [RLMCodeError, ConfigError, ModelError, *MODEL_ERRORS]
NAMES = [cls.__name__ for cls in MODEL_ERRORS]

# Classes whose situation is the same whoever raises them carry their own next step.
DEFAULT_HINTS: dict[type[ModelError], str] = {
    ProviderNotFoundError: "rlm-code providers",
    NotConnectedError: "Connect first",
    ProviderConnectionError: "server is running",
    AuthenticationError: "Check the API key",
    RateLimitError: "Wait and retry",
    ModelTimeoutError: "Raise the timeout",
}


# -- the tree ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODEL_ERRORS, ids=NAMES)
def test_every_child_is_a_model_error(cls: type[ModelError]) -> None:
    assert issubclass(cls, ModelError)
    assert issubclass(cls, RLMCodeError)
    assert issubclass(cls, Exception)
    with pytest.raises(ModelError):
        raise cls("boom")


def test_special_bases() -> None:
    assert issubclass(ModelTimeoutError, TimeoutError)
    assert issubclass(ModelTimeoutError, OSError)  # TimeoutError is an OSError
    assert issubclass(InvalidInputError, ValueError)
    assert issubclass(ResponseFormatError, ProviderError)
    assert issubclass(ConfigError, RLMCodeError)
    assert not issubclass(ConfigError, ModelError)
    with pytest.raises(TimeoutError):
        raise ModelTimeoutError("read timed out", provider="ollama")
    with pytest.raises(ValueError):
        raise InvalidInputError("empty prompt")


def test_all_exports_every_error() -> None:
    exported = {getattr(exc_mod, name) for name in exc_mod.__all__}
    assert exported == set(ALL_ERRORS)


# -- attributes ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", MODEL_ERRORS, ids=NAMES)
def test_attributes(cls: type[ModelError]) -> None:
    error = cls("it failed", provider="openai", status_code=429, retry_after=2.5)
    assert (error.provider, error.status_code, error.retry_after) == ("openai", 429, 2.5)
    bare = cls("it failed")
    assert (bare.provider, bare.status_code, bare.retry_after) == (None, None, None)


def test_rate_limit_carries_retry_after() -> None:
    error = RateLimitError("429 Too Many Requests", provider="groq", status_code=429,
                           retry_after=12.0)  # fmt: skip
    assert error.retry_after == 12.0
    assert str(error).startswith("429 Too Many Requests")


# -- next-step hints -----------------------------------------------------------------------


@pytest.mark.parametrize("cls", list(DEFAULT_HINTS), ids=lambda c: c.__name__)
def test_default_hint_is_appended(cls: type[ModelError]) -> None:
    text = str(cls("Something failed."))
    assert text.startswith("Something failed")
    assert DEFAULT_HINTS[cls] in text
    assert ".." not in text


@pytest.mark.parametrize("cls", MODEL_ERRORS, ids=NAMES)
def test_explicit_hint_is_appended_once(cls: type[ModelError]) -> None:
    hint = "Run `pip install 'rlm-code[openai]'`."
    text = str(cls("The openai SDK is not installed", hint=hint))
    assert text == "The openai SDK is not installed. " + hint
    # a message that already holds the hint does not get it twice
    assert str(cls(text, hint=hint)).count(hint) == 1


@pytest.mark.parametrize("cls", MODEL_ERRORS, ids=NAMES)
def test_bare_message_still_says_what_to_do_next(cls: type[ModelError]) -> None:
    assert cls.default_hint
    assert str(cls("It failed")).startswith("It failed. ")


def test_empty_hint_suppresses_the_default() -> None:
    assert str(RateLimitError("Slow down.", hint="")) == "Slow down."


def test_default_hints_are_actionable() -> None:
    for cls in MODEL_ERRORS:
        if cls.default_hint:
            first_word = cls.default_hint.split()[0]
            assert first_word[0].isupper(), cls
            assert cls.default_hint.endswith((".", "`")), cls


# -- secrets -------------------------------------------------------------------------------

SECRETS = [
    ("openai key", "sk-test-exc0123456789abcdef", "sk-test-exc0123456789abcdef"),
    ("anthropic key", "sk-ant-test-exc0123456789abcdef", "exc0123456789abcdef"),
    ("project key", "sk-proj-exc0123456789abcdef", "exc0123456789abcdef"),
    ("gemini key", "AIzaTestExc0123456789abcdef", "AIzaTestExc0123456789abcdef"),
    ("bearer", "Authorization: Bearer tok-EXC-0123456789", "tok-EXC-0123456789"),
    ("query key", "GET https://x.example/v1?key=qEXC0123456789&alt=sse", "qEXC0123456789"),
    ("header", "x-api-key: hdrEXC0123456789", "hdrEXC0123456789"),
    ("json field", '{"api_key": "jsonEXC0123456789"}', "jsonEXC0123456789"),
]


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(("label", "text", "secret"), SECRETS, ids=[s[0] for s in SECRETS])
def test_secret_never_in_str_repr_args_or_traceback(
    cls: type[RLMCodeError], label: str, text: str, secret: str
) -> None:
    error = cls(f"provider said: {text} (status 401)")
    renderings = [str(error), repr(error), *map(str, error.args)]
    try:
        raise error
    except RLMCodeError as caught:
        renderings.append("".join(traceback.format_exception(caught)))
    for rendered in renderings:
        assert secret not in rendered, (label, rendered)
    assert MASK in str(error)
    assert "(status 401)" in str(error), "the rest of the message is kept"


def test_registered_secret_of_any_shape_is_masked() -> None:
    secret = "zq7-exc-arbitrary-secret-48c1"
    register_secret(secret)
    error = AuthenticationError(f"key {secret} rejected", provider="custom", status_code=401)
    for rendered in (str(error), repr(error), str(error.args)):
        assert secret not in rendered
    assert MASK in str(error)


def test_secret_registered_after_raising_is_masked_on_render() -> None:
    secret = "zq7-exc-registered-later-77d0"
    error = ProviderError(f"echoed {secret}")
    register_secret(secret)
    assert secret not in str(error)
    assert secret not in repr(error)


def test_secret_in_hint_is_masked() -> None:
    error = MissingAPIKeyError("No key", hint="Tried sk-test-hint0123456789abc.")
    assert "sk-test-hint0123456789abc" not in str(error)


def test_errors_survive_pickling_without_secrets() -> None:
    error = ProviderError("boom sk-test-pickle0123456789", provider="groq", status_code=502)
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is ProviderError
    assert "sk-test-pickle0123456789" not in str(clone)
    assert (clone.provider, clone.status_code) == ("groq", 502)


def test_budget_and_context_errors_carry_their_figures() -> None:
    budget = BudgetExceededError(
        "max_requests reached: 3 of 3", limit="max_requests", reached=3, maximum=3
    )
    assert isinstance(budget, ModelError) and not budget.retryable
    assert (budget.limit, budget.reached, budget.maximum) == ("max_requests", 3, 3)
    assert "Raise the budget" in str(budget)
    context = ContextLengthExceededError(
        "too long", provider="openai", status_code=400, limit=8192, requested=9000
    )
    assert isinstance(context, ProviderError)
    assert (context.limit, context.requested, context.status_code) == (8192, 9000, 400)
