"""A small `.env` reader: `KEY=value` lines, `export` prefixes, quotes and comments.

Hand-written rather than a dependency because the format we accept is tiny and the values
never leave memory: `.env` entries are consulted by `ConfigManager.get_env` after the real
environment, and never copied into `os.environ`.
"""

from __future__ import annotations

import re
from pathlib import Path

from rlm_code.core.exceptions import ConfigError

_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


def _unquote(raw: str, path: Path, lineno: int) -> str:
    if raw[:1] in ("'", '"'):
        quote = raw[0]
        end = raw.find(quote, 1)
        while quote == '"' and end > 0 and raw[end - 1] == "\\":
            end = raw.find(quote, end + 1)
        if end < 0:
            raise ConfigError(f"{path}:{lineno}: unterminated {quote} quote in .env value")
        body = raw[1:end]
        if quote == '"':
            body = re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), "\\" + m.group(1)), body)
        return body
    # Unquoted: an inline comment starts at " #".
    hash_at = raw.find(" #")
    return (raw[:hash_at] if hash_at >= 0 else raw).strip()


def parse_dotenv(path: Path) -> dict[str, str]:
    """Parse a `.env` file; a malformed line raises ConfigError naming the file and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read .env file ({exc.__class__.__name__})") from None
    values: dict[str, str] = {}
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _LINE.match(line)
        if match is None:
            raise ConfigError(
                f"{path}:{lineno}: expected KEY=value in .env file; fix or remove that line"
            )
        values[match.group(1)] = _unquote(match.group(2), path, lineno)
    return values
