"""Keep API keys out of everything the project prints, logs or raises.

Two layers, because one is not enough:

1. Every key the connector touches is registered here (`register_secret`), and `redact`
   replaces each registered value wherever it appears, whatever its shape.
2. Shape patterns catch keys we never saw (a key inside a provider's error body, a URL with
   `?key=`, an `Authorization` header echoed back by a proxy).

`ModelError.__str__` and the `rlm_code` logger filter both run text through `redact`, so a key
cannot leave through an exception message, a log line (DEBUG included) or a status dict.

"""

from __future__ import annotations

import logging
import re
import threading

MASK = "[REDACTED]"

_lock = threading.Lock()
_secrets: set[str] = set()
_secret_re: re.Pattern[str] | None = None

# Shapes of credentials: provider key prefixes, bearer tokens, key headers, credential query
# values and URL userinfo. Keys with a short prefix (`xai-`, `gsk_`, `AQ.`, ...) must be long
# and hold a digit, so that hyphenated words such as `xai-compatible-endpoint` stay readable.
_NEEDS_DIGIT = r"(?=[A-Za-z_\-\.]*[0-9])"
_SHAPES = (
    r"(?P<key>(?<![A-Za-z0-9])(?:sk-ant-|sk-proj-|sk-or-|sk-)[A-Za-z0-9_\-]{6,}"
    r"|(?<![A-Za-z0-9])AIza[0-9A-Za-z_\-]{6,}"
    r"|(?<![A-Za-z0-9_])(?:gsk_|xai-|pplx-|csk-|fw_|nvapi-|hf_|r8_|sk_)"
    + _NEEDS_DIGIT
    + r"[A-Za-z0-9_\-]{16,}"
    r"|(?<![A-Za-z0-9])AQ\." + _NEEDS_DIGIT + r"[A-Za-z0-9_\-\.]{16,})"
    r"|(?P<bearer>(?i:bearer)\s+[A-Za-z0-9_\-\.=:/+]{6,})"
    r"|(?P<header>(?i:(?:x-api-key|x-goog-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"[A-Za-z0-9_\-\.]{6,})"
    r"|(?<=[?&])(?P<param>(?i:key|token|access_token|auth|password|sig))=[^&\s\"'#]+"
    r"|(?P<userinfo>(?<=://)[^/\s@:?#\[\]]+:[^/\s@?#]*(?=@)|(?<=://)[^/\s@:?#]{6,}(?=@))"
)

_SHAPE_RE = re.compile(_SHAPES)

_MIN_SECRET_LEN = 6  # shorter values would mask ordinary words


def register_secret(value: str | None) -> None:
    """Remember a key so that `redact` masks it wherever it shows up later."""
    global _secret_re
    if not value or not isinstance(value, str) or len(value) < _MIN_SECRET_LEN:
        return
    with _lock:
        if value in _secrets:
            return
        _secrets.add(value)
        ordered = sorted(_secrets, key=len, reverse=True)
        _secret_re = re.compile("|".join(re.escape(s) for s in ordered))


def _mask_match(match: re.Match[str]) -> str:
    if match.group("bearer") is not None:
        return "Bearer " + MASK
    param = match.group("param")
    if param is not None:
        return param + "=" + MASK
    header = match.group("header")
    if header is not None:
        for sep in (":", "="):
            head, found, _ = header.partition(sep)
            if found:
                return head + sep + " " + MASK
    return MASK


def redact(text: str) -> str:
    """Return `text` with every registered secret and every key-shaped value masked."""
    if not text:
        return text
    pattern = _secret_re
    if pattern is not None:
        text = pattern.sub(MASK, text)
    return _SHAPE_RE.sub(_mask_match, text)


class RedactingFilter(logging.Filter):
    """Logging filter that renders the record once and masks secrets in the result."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not break logging
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True


_factory_installed = False


def install_log_redaction(logger_name: str = "rlm_code") -> None:
    """Mask secrets in log records, once per process.

    A filter on the `rlm_code` logger alone would miss its children's records (logger
    filters are not inherited) and the HTTP and SDK libraries' own DEBUG lines, so the record
    factory is wrapped too: every record is rendered and masked when it is created. Records
    exist only for enabled levels, so this costs nothing while logging is off.
    """
    global _factory_installed
    filter_class = RedactingFilter
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, filter_class) for f in logger.filters):
        logger.addFilter(filter_class())
    with _lock:
        if _factory_installed:
            return
        _factory_installed = True
        previous = logging.getLogRecordFactory()
        masker = filter_class()

        def factory(*args: object, **kwargs: object) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            masker.filter(record)
            return record

        logging.setLogRecordFactory(factory)
