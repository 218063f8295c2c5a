"""What a typed line may keep before it is stored in the history file or echoed on screen.

Why token by token: a key does not only come where `/connect` expects it. A user forgets the
model (`/connect xai xai-...`, so the key sits in the model's place), pastes a key into a
message, or types a base URL with a password in it (`http://user:pass@host/v1`, `?key=...`).
So every whitespace-separated word of every line is checked, wherever it stands:

- a word `rlm_code.core.redact.redact` would change (a key registered in this process, or a
  key shape it knows) is a key;
- a word holding a long random-looking run (`looks_like_key`: 20+ letters and digits mixed, or
  40+ of either) is a key, whatever its prefix: no provider list has to know it;
- in a URL, the `user:password@` part and the values of credential query parameters
  (`key=`, `token=`, ... as in `rlm_code.core.urls.CREDENTIAL_PARAMS`) are keys.

For storage a key is dropped from a `/connect` line (so recalling it opens the picker or uses
the configured key) and replaced by `[REDACTED]` elsewhere; on screen it shows as
`KEY_SHOWN_AS`. The whole result still passes through `redact`, for shapes that span words.
"""

from __future__ import annotations

import re

from rlm_code.core.redact import MASK, redact
from rlm_code.core.urls import CREDENTIAL_PARAMS

KEY_SHOWN_AS = "********"
NO_KEY = frozenset({"-", "none", "local", "no-key", "nokey"})
"""Words that stand for "no key" on a `/connect` line."""

_WORD = re.compile(r"\S+")
_RUN = re.compile(r"[A-Za-z0-9]+")
_MIXED_RUN = 20  # letters and digits mixed, unbroken: no model name looks like this
_ANY_RUN = 40


def is_url(token: str) -> bool:
    return token.lower().startswith(("http://", "https://"))


def looks_like_key(word: str) -> bool:
    """True for a word that is, or holds, an API key or another credential."""
    if not word:
        return False
    if redact(word) != word:
        return True
    for run in _RUN.findall(word):
        if len(run) >= _ANY_RUN:
            return True
        if len(run) >= _MIXED_RUN and not run.isdigit() and not run.isalpha():
            return True
    return False


def scrub_url(url: str, shown_as: str = MASK) -> str:
    """`url` with its userinfo and credential query values replaced by `shown_as`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    userinfo, at, host = authority.rpartition("@")
    if at and userinfo:
        authority = f"{shown_as}@{host}"
    path, qmark, query = tail.partition("?")
    if qmark:
        query, hash_, fragment = query.partition("#")
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            if eq and value and (name.lower() in CREDENTIAL_PARAMS or looks_like_key(value)):
                pair = f"{name}={shown_as}"
            pairs.append(pair)
        tail = f"{path}?{'&'.join(pairs)}{hash_}{fragment}"
    return f"{scheme}://{authority}{tail}"


def _scrub_word(word: str, shown_as: str) -> str:
    if is_url(word):
        return scrub_url(word, shown_as)
    return shown_as if looks_like_key(word) else word


def _connect_words(words: list[str]) -> list[tuple[str, bool]]:
    """`/connect` words, each with whether it is kept in the history file.

    Kept: the command, the provider and model places (unless a key sits there), `-`-like
    placeholders and URLs (scrubbed). Every other word is the key, or an extra word a
    malformed line may carry: dropped.
    """
    positional = 1 if len(words) > 1 and "/" in words[1] else 2
    marked = [(words[0], True)]
    for index, word in enumerate(words[1:], start=1):
        if index <= positional:
            marked.append((word, not looks_like_key(word)))
        else:
            marked.append((word, is_url(word) or word.lower() in NO_KEY))
    return marked


def scrub_connect_line(line: str) -> str:
    """The `/connect` line as stored: key words dropped, URLs scrubbed (other lines as is)."""
    words = line.split()
    if not words or words[0] != "/connect" or len(words) < 2:
        return line
    return " ".join(_scrub_word(w, MASK) for w, kept in _connect_words(words) if kept)


def scrub_history_line(line: str, *, mask: bool = False) -> str:
    """The line as it may be stored (`mask=False`) or shown on screen (`mask=True`).

    Stored: a `/connect` line loses its key words; elsewhere a key word becomes `[REDACTED]`.
    Shown: every key word (a dropped `/connect` word included) becomes `KEY_SHOWN_AS`.
    """
    words = line.split()
    if words and words[0] == "/connect":
        if mask:
            marked = _connect_words(words) if len(words) > 1 else [(words[0], True)]
            shown = [_scrub_word(w, KEY_SHOWN_AS) if kept else KEY_SHOWN_AS for w, kept in marked]
            return _on_screen(" ".join(shown))
        return redact(scrub_connect_line(line))
    if mask:
        return _on_screen(_WORD.sub(lambda m: _scrub_word(m.group(), KEY_SHOWN_AS), line))
    return redact(_WORD.sub(lambda m: _scrub_word(m.group(), MASK), line))


def _on_screen(text: str) -> str:
    """`redact`'s last pass, with its mask shown as the screen's `KEY_SHOWN_AS`."""
    return redact(text).replace(MASK, KEY_SHOWN_AS)


__all__ = [
    "KEY_SHOWN_AS",
    "NO_KEY",
    "is_url",
    "looks_like_key",
    "scrub_connect_line",
    "scrub_history_line",
    "scrub_url",
]
