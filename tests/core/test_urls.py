"""Base-URL checks, host[:port] forms and URL credentials (issue 10.6, 10.7)."""

from __future__ import annotations

import pytest

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.core.redact import MASK, redact
from rlm_code.core.urls import (
    check_base_url,
    has_userinfo,
    is_loopback,
    normalize_host_url,
    register_url_credentials,
)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://localhost:8000/v1/", "http://localhost:8000/v1"),
        ("https://api.example.com", "https://api.example.com"),
        ("http://[::1]:8080/v1", "http://[::1]:8080/v1"),
        ("HTTPS://API.EXAMPLE.COM/v1", "HTTPS://API.EXAMPLE.COM/v1"),
    ],
)
def test_good_urls(url: str, expected: str) -> None:
    assert check_base_url(url, "test") == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://[bad",
        "http://host:99999",
        "http://host:-1",
        "http://host:0/v1",
        "http://host:abc",
        "http://a b/",
        "http://tab\there/",
        "http://bücher.example/",
        "file:///etc/passwd",
        "http:///v1",
        "host:8000",
        "",
    ],
)
def test_bad_urls_are_invalid_input_with_the_source(url: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_base_url(url, "$SOME_BASE_URL")
    message = str(info.value)
    assert "$SOME_BASE_URL" in message
    assert "\n" not in message


def test_credentials_are_registered_before_any_message() -> None:
    url = "http://carol:pw-urls-31337@[broken/v1?api_key=ak-urls-31337"
    with pytest.raises(InvalidInputError) as info:
        check_base_url(url, "test")
    assert "pw-urls-31337" not in str(info.value)
    assert redact("pw-urls-31337 ak-urls-31337") == f"{MASK} {MASK}"


def test_register_url_credentials_never_raises() -> None:
    for junk in ("", "://", "http://@", "http://[::1", "?key=", "http://u@h"):
        register_url_credentials(junk)


def test_userinfo_and_loopback() -> None:
    assert has_userinfo("http://u:p@h/v1") and has_userinfo("http://tok@h/")
    assert not has_userinfo("http://h/v1") and not has_userinfo("http://[bad")
    assert is_loopback("http://127.0.0.1:1") and is_loopback("http://127.9.9.9/")
    assert is_loopback("http://localhost:1") and is_loopback("http://[::1]:1")
    assert not is_loopback("http://10.0.0.1/") and not is_loopback("http://localhost.evil.com/")


def test_host_forms_keep_userinfo_and_refuse_junk() -> None:
    assert normalize_host_url("http://u:p@box", 11434, "X") == "http://u:p@box:80"
    for bad in ("http://[x", "box:99999", "a b"):
        with pytest.raises(InvalidInputError, match="X"):
            normalize_host_url(bad, 11434, "X")
