"""`redact` patterns and the logging filter, with a real logging handler capturing records."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from rlm_code.core.redact import (
    MASK,
    RedactingFilter,
    install_log_redaction,
    redact,
    register_secret,
)

# (text, the part that must disappear, a part that must survive)
MASKED = [
    ("key sk-test-red0123456789abcdef here", "sk-test-red0123456789abcdef", "key "),
    ("sk-ant-test-red0123456789abcdef", "red0123456789abcdef", ""),
    ("sk-proj-red0123456789abcdef", "red0123456789abcdef", ""),
    ("sk-or-v1-red0123456789abcdef", "red0123456789abcdef", ""),
    ("AIzaTestRed0123456789abcdef", "AIzaTestRed0123456789abcdef", ""),
    ("Authorization: Bearer tokRED0123456789", "tokRED0123456789", "Authorization: Bearer "),
    ("authorization: bearer tokRED0123456789", "tokRED0123456789", "authorization"),
    ("x-api-key: hdrRED0123456789", "hdrRED0123456789", "x-api-key"),
    ("x-goog-api-key: AIzaTestRed0123456789", "Red0123456789", "x-goog-api-key"),
    ("api_key=envRED0123456789", "envRED0123456789", "api_key"),
    ("apiKey: camelRED0123456789", "camelRED0123456789", "apiKey"),
    ('{"api_key": "jsonRED0123456789"}', "jsonRED0123456789", '{"api_key"'),
    ("GET /v1beta/models?key=qRED0123456789&alt=sse", "qRED0123456789", "&alt=sse"),
    ("GET /v1?alt=sse&key=qRED0123456789", "qRED0123456789", "?alt=sse&"),
]


@pytest.mark.parametrize(("text", "secret", "kept"), MASKED, ids=[m[0][:30] for m in MASKED])
def test_key_shapes_are_masked(text: str, secret: str, kept: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out
    assert kept in out


@pytest.mark.parametrize(
    "text",
    [
        "",
        "model gpt-4o-mini answered in 3.2s",
        "claude-sonnet-4-5-20250929",
        "http://localhost:11434/api/tags",
        "keyword=abcdefgh monkey=bananas123",
        "https://x.example/?monkey=bananas",
        "sk-short",  # too short to be a key
        "Bearer abc",
    ],
)
def test_ordinary_text_is_untouched(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("text", ["task-runner-service", "risk-assessment", "disk-usage-report"])
def test_words_containing_a_key_prefix_are_untouched(text: str) -> None:
    assert redact(text) == text


def test_registered_secret_of_any_shape() -> None:
    secret = "zq7-redact-arbitrary-5e0d"
    assert redact(f"a {secret} b") == f"a {secret} b"
    register_secret(secret)
    assert redact(f"a {secret} b {secret}") == f"a {MASK} b {MASK}"


def test_longer_secret_wins_over_its_prefix() -> None:
    short, long = "zq7-redact-prefix", "zq7-redact-prefix-and-more"
    register_secret(short)
    register_secret(long)
    assert redact(long) == MASK


@pytest.mark.parametrize("value", [None, "", "abc", "12345"])
def test_short_or_empty_values_are_not_registered(value: str | None) -> None:
    register_secret(value)
    assert redact("abc 12345 abcdef") == "abc 12345 abcdef"


# -- logging -------------------------------------------------------------------------------


class Capture(logging.Handler):
    """Keeps every formatted line, as a real file or stream handler would write it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def captured() -> Iterator[Capture]:
    logger = logging.getLogger("rlm_code")
    handler = Capture()
    old_level, old_filters = logger.level, list(logger.filters)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        logger.filters[:] = old_filters


KEY = "sk-test-logging0123456789abcdef"


def test_debug_line_with_a_key_is_masked(captured: Capture) -> None:
    install_log_redaction()
    log = logging.getLogger("rlm_code")
    log.debug("request headers: %s", {"Authorization": f"Bearer {KEY}"})
    log.debug("calling with key=%s for %s", KEY, "openai")
    log.info(f"f-string {KEY}")
    assert len(captured.lines) == 3
    for line in captured.lines:
        assert KEY not in line
        assert MASK in line
    assert captured.lines[1].endswith(f"calling with key={MASK} for openai")


def test_install_is_idempotent() -> None:
    logger = logging.getLogger("rlm_code")
    before = list(logger.filters)
    try:
        install_log_redaction()
        install_log_redaction()
        assert sum(isinstance(f, RedactingFilter) for f in logger.filters) == 1
    finally:
        logger.filters[:] = before


def test_debug_line_from_a_child_logger_is_masked(captured: Capture) -> None:
    install_log_redaction()
    logging.getLogger("rlm_code.models.llm_connector").debug("using key %s", KEY)
    assert captured.lines and KEY not in captured.lines[0]


def test_filter_survives_a_broken_format_string() -> None:
    record = logging.LogRecord("rlm_code", logging.DEBUG, __file__, 1, "%s %s " + KEY, ("one",),
                               None)  # fmt: skip
    assert RedactingFilter().filter(record) is True
    assert KEY not in record.getMessage()


# -- other providers' key shapes and URL credentials (issue 11 compat, 10.6) ---------------

OTHER_SHAPES = [
    ("groq gsk_test0123456789abcdefABCDEF end", "gsk_test0123456789abcdefABCDEF"),
    ("xai-test0123456789abcdefABCDEF", "xai-test0123456789abcdefABCDEF"),
    ("key=pplx-test0123456789abcdefABCD;", "pplx-test0123456789abcdefABCD"),
    ("gemini AQ.Ab8RN6test0123456789abcdef", "AQ.Ab8RN6test0123456789abcdef"),
    ("cerebras csk-test0123456789abcdefghij", "csk-test0123456789abcdefghij"),
    ("sk-or-v1-0123456789abcdef0123456789", "0123456789abcdef0123456789"),
    ("http://alice:s3cret-pass@proxy.example:8080/v1", "s3cret-pass"),
    ("https://ghp_token0123456789@git.example/x", "ghp_token0123456789"),
    ("GET /v1?alt=sse&token=tok0123456789xyz", "tok0123456789xyz"),
    ("GET /v1?access_token=tok0123456789xyz&x=1", "tok0123456789xyz"),
    ("GET /v1?password=hunter2hunter2", "hunter2hunter2"),
]


@pytest.mark.parametrize(("text", "secret"), OTHER_SHAPES, ids=[s[0][:28] for s in OTHER_SHAPES])
def test_other_provider_key_shapes_and_url_credentials(text: str, secret: str) -> None:
    out = redact(text)
    assert secret not in out
    assert MASK in out


def test_url_userinfo_keeps_the_host_and_query_names() -> None:
    out = redact("http://alice:s3cret-pass@proxy.example:8080/v1?token=abc123def&alt=sse")
    assert out == f"http://{MASK}@proxy.example:8080/v1?token={MASK}&alt=sse"


@pytest.mark.parametrize(
    "text",
    [
        "xai-compatible-endpoint-settings",
        "the gsk_ prefix",
        "pplx-api documentation page",
        "AQ.this-is-just-words-here",
        "ssh://git@github.com/org/repo",
        "http://localhost:8080/v1?alt=sse&stream=true",
        "monkey=bananas token",
        "https://api.x.ai/v1",
    ],
)
def test_ordinary_words_near_new_shapes_are_untouched(text: str) -> None:
    assert redact(text) == text
