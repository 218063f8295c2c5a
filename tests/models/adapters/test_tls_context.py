"""A plain-http local server gets no CA bundle (it never uses TLS); https and https proxies do."""

from __future__ import annotations

import pytest

from rlm_code.models.adapters._transport import default_ssl_context, tls_context_for


def _has_cas(context: object) -> bool:
    return bool(context.cert_store_stats()["x509_ca"])  # type: ignore[attr-defined]


def test_an_https_url_gets_the_default_context_with_its_cas() -> None:
    context = tls_context_for("https://api.example.test/v1")
    assert context is default_ssl_context()
    assert _has_cas(context)


def test_a_plain_http_url_gets_an_empty_context_that_verifies_nothing() -> None:
    context = tls_context_for("http://127.0.0.1:11434")
    assert context is not default_ssl_context()
    assert not _has_cas(context)
    assert context.check_hostname  # were TLS ever tried with it, it would fail, not trust all


def test_a_plain_http_url_behind_an_https_proxy_gets_the_default_context(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", "https://proxy.example.test:8443")
    assert tls_context_for("http://10.1.2.3:8000/v1") is default_ssl_context()
