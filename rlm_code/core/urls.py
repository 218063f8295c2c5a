"""Base URLs: parse, check and normalise them before any network I/O, and treat their
credentials as secrets.

A base URL comes from an argument, an environment variable, a `.env` file or a config file,
and a bad one must fail as a typed one-line error naming where it came from — not as an
`httpx2.InvalidURL`, a `ValueError` from the URL parser, or a `UnicodeEncodeError` deep in a
transport. A URL may also carry credentials (`http://user:pass@host`, `?key=...`): those are
registered as secrets here, before the URL is put in any message, so the status dict, errors,
logs and the shell's history never show them.

Everything here is generic (no provider is named): provider quirks such as Ollama's
`host:port` forms are switched on by a field of the provider's registry row.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, urlsplit

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.core.redact import redact, register_secret

# Query parameters whose values are credentials (compared lower-cased).
CREDENTIAL_PARAMS = frozenset(
    {"key", "api_key", "apikey", "api-key", "token", "access_token", "auth", "password", "sig"}
)


def _bad_chars(url: str) -> bool:
    return any(ord(ch) <= 32 or ord(ch) == 127 or ord(ch) > 126 for ch in url)


def register_url_credentials(url: str) -> None:
    """Register the user, password and credential query values of a URL as secrets.

    Never raises: called on raw input before it is checked, so that even the error about a
    malformed URL cannot show its password.
    """
    _, sep, rest = url.partition("://")
    authority = rest.split("/", 1)[0].split("?", 1)[0] if sep else ""
    userinfo, at, _ = authority.rpartition("@")
    if at and userinfo:
        register_secret(userinfo)
        user, _, password = userinfo.partition(":")
        register_secret(password)
        register_secret(user)
    query = url.partition("?")[2].partition("#")[0]
    for name, value in parse_qsl(query, keep_blank_values=False):
        if name.lower() in CREDENTIAL_PARAMS:
            register_secret(value)


def has_userinfo(url: str) -> bool:
    """True when the URL carries `user[:password]@` before its host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.username is not None or parts.password is not None


def is_loopback(url: str) -> bool:
    """True when the URL's host is this machine (`localhost`, 127.0.0.0/8, ::1)."""
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str, source: str) -> str:
    """A checked http(s) base URL without a trailing slash, or `InvalidInputError`.

    Refused: other schemes, no host, an out-of-range or non-numeric port, a malformed IPv6
    literal, spaces, control characters and non-ASCII text (use the `xn--` form of a host), and
    a query string or fragment (request paths are appended to the base URL).
    `source` (an argument, `$VAR` or a file path) is named in the message.
    """
    register_url_credentials(url)
    shown = redact(url)
    if _bad_chars(url):
        raise InvalidInputError(
            f"base URL from {source} contains spaces, control or non-ASCII characters "
            f"({shown!r}); percent-encode them or use the host's xn-- form",
            hint="",
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # raises for a port out of range or not a number
        host = parts.hostname
    except ValueError as exc:
        raise InvalidInputError(
            f"base URL from {source} is malformed ({exc}): {shown!r}", hint=""
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not host:
        raise InvalidInputError(
            f"base URL from {source} must be http:// or https:// with a host (got {shown!r})",
            hint="",
        )
    if port == 0:
        raise InvalidInputError(f"base URL from {source} has port 0: {shown!r}", hint="")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        # Request paths are appended to the base URL, which a query or fragment would swallow;
        # and a key belongs in the key settings, not in a URL that is shown and logged.
        raise InvalidInputError(
            f"base URL from {source} has a query string or fragment ({shown!r}); give the "
            "server's base path only, and the key as api_key= or the provider's env var",
            hint="",
        )
    return url.rstrip("/")


def normalize_host_url(value: str, default_port: int, source: str) -> str:
    """Accept `host`, `host:port`, `:port` and full URLs, as Ollama's client reads OLLAMA_HOST.

    No port means `default_port`, except after an explicit `http://` (80) or `https://` (443);
    `0.0.0.0` (a bind address) and an empty host mean this machine (127.0.0.1).
    """
    raw = value.strip()
    register_url_credentials(raw)
    if _bad_chars(raw):
        raise InvalidInputError(
            f"{source}: {redact(raw)!r} contains spaces, control or non-ASCII characters",
            hint="",
        )
    scheme, sep, hostport = raw.partition("://")
    port = default_port
    if not sep:
        scheme, hostport = "http", raw
    elif scheme == "http":
        port = 80
    elif scheme == "https":
        port = 443
    try:
        split = urlsplit(f"{scheme}://{hostport}")
        port = split.port or port
    except ValueError:
        raise InvalidInputError(
            f"{source}: cannot parse {redact(value)!r} as host[:port] or a URL",
            hint="",
        ) from None
    host = split.hostname or "127.0.0.1"
    if host == "0.0.0.0":
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    userinfo = split.netloc.rpartition("@")[0]
    auth = f"{userinfo}@" if userinfo else ""
    return f"{scheme}://{auth}{host}:{port}{split.path.rstrip('/')}"
