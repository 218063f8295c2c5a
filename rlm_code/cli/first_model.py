"""With no model configured, the first reply comes from a model already running on this machine.

`ask` and the shell call `pick_first_model` only when there is no `--model`, no
`RLM_CODE_MODEL` and no `default_model` in the config files. Someone who starts Ollama or LM
Studio and then types `rlm-code ask "..."` wants that model to answer, not an echo; someone
with nothing running still gets the built-in echo server, as before (the caller falls back to
it when this returns None).

How it looks, in two concurrent rounds sharing one time budget (`DISCOVERY_TIMEOUT_S`):

1. `local_discovery.discover_local_providers`: every local row of the registry, at the URL the
   connector would use (its env var such as ``OLLAMA_HOST``, else the config files, else the
   default), all probed at once. With nothing running every port refuses at once, so this
   costs milliseconds, not the timeout.
2. Only for the servers that answered and can say more: Ollama's ``/api/ps`` (what is in
   memory) and ``/api/tags`` (with modification times), LM Studio's ``/api/v0/models`` (its
   ``state`` field), within what is left of the budget (at least `_MIN_SECOND_ROUND_S`).

Which model of a server:

- Ollama: the loaded model (``/api/ps``; the one that stays longest, i.e. used last, first),
  else the most recently modified of ``/api/tags`` (it loads on the first call);
- LM Studio: the first model ``/api/v0/models`` lists with state ``loaded``, else the first
  model it lists (LM Studio loads it on the first call when just-in-time loading is on);
- llama.cpp (the model it serves), vLLM, SGLang, TGI, MLX and a generic OpenAI-compatible
  server: the first entry of ``/v1/models``.

Embedding models are never picked: they cannot chat (LM Studio's type ``embeddings``,
Ollama's BERT families, or ``embed`` in the name).

Which server, when several run:

1. a server with a model already in memory beats one that would have to load one first: the
   first reply comes quickly and nothing the user loaded is evicted;
2. then `SERVER_ORDER`: the desktop apps people start to chat (Ollama, LM Studio), then
   llama.cpp and MLX, then the serving stacks (vLLM, SGLang, TGI); a local row not named
   there comes next, and the generic OpenAI-compatible row (any server at all) last.

The note the caller prints (`first_model_note`) names the choice and how to make it permanent.
Model names come from the servers, so they are filtered for the terminal there.

Start-up: the shell makes this choice before its first prompt, and importing aiohttp and the
config module costs far more than the probes. So when nothing at all is configured (no config
file, no `.env`: each row's URL is its env var, else its default), `nothing_listens` first
tries a plain TCP connect to every such URL (standard library only, all at once, same
budget); only if one accepts, or a URL cannot be checked that way, does the full look run.
"""

from __future__ import annotations

import errno
import selectors
import shlex
import socket
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rlm_code.cli.sanitize import strip_controls_one_line

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rlm_code.core.config import ConfigManager
    from rlm_code.models.providers.local_probe import Answer
    from rlm_code.models.providers.registry import ProviderRegistry

__all__ = [
    "DISCOVERY_TIMEOUT_S",
    "SERVER_ORDER",
    "FirstModel",
    "first_model_note",
    "nothing_listens",
    "pick_first_model",
]

DISCOVERY_TIMEOUT_S = 0.3
"""Per-request timeout of the first round, and the budget both rounds share. A local server
answers a model list in a few milliseconds; one that takes longer is not one to start a
conversation with, and a silent port must not hold up the first prompt."""
_MIN_SECOND_ROUND_S = 0.05

SERVER_ORDER = ("ollama", "lmstudio", "llama-cpp", "mlx", "vllm", "sglang", "tgi")
"""Which server answers when several have a model in memory (or none has): the first here.
A policy, not a list of providers: any other local row is still found, and ranks after these
(the generic row last)."""
_GENERIC = "openai-compatible"

_EMBEDDING_FAMILIES = frozenset({"bert", "nomic-bert"})


@dataclass(frozen=True)
class FirstModel:
    """The model a running local server offers, and why it was chosen."""

    provider_id: str
    model: str
    base_url: str
    server: str  # the row's display name, e.g. "Ollama"
    loaded: bool  # in memory now (False: the server loads it on the first call)
    how: str  # e.g. "loaded in Ollama at http://localhost:11434"

    @property
    def name(self) -> str:
        """`provider/model`, as `--model`, `RLM_CODE_MODEL` and `default_model` take it."""
        return f"{self.provider_id}/{self.model}"


def pick_first_model(
    config: ConfigManager | None = None,
    registry: ProviderRegistry | None = None,
    timeout: float = DISCOVERY_TIMEOUT_S,
) -> FirstModel | None:
    """The model of a running local server (see the module docstring), or None.

    Never raises for network trouble (a server that misbehaves is simply not chosen); a bad
    `timeout` raises `InvalidInputError`, a malformed config file `ConfigError`.
    """
    from rlm_code.models.providers.local_discovery import (
        check_timeout,
        discover_local_providers,
    )
    from rlm_code.models.providers.local_probe import fetch_all, run_coroutine

    seconds = check_timeout(timeout)
    started = time.monotonic()
    if config is None:
        from rlm_code.core.config import ConfigManager

        config = ConfigManager()
    if registry is None:
        from rlm_code.models.providers.registry import ProviderRegistry

        registry = ProviderRegistry.default()
    found = [r for r in discover_local_providers(registry, config, seconds) if r.get("healthy")]
    if not found:
        return None
    urls = [url for result in found for url in _second_round(result)]
    answers: dict[str, Answer] = {}
    if urls:
        left = max(seconds - (time.monotonic() - started), _MIN_SECOND_ROUND_S)
        answers = run_coroutine(lambda: fetch_all(urls, left))
    picks = [pick for pick in (_pick(result, answers) for result in found) if pick is not None]
    if not picks:
        return None
    return min(picks, key=_rank)


def _rank(pick: FirstModel) -> tuple[bool, int]:
    """Sort key: in memory first, then `SERVER_ORDER` (other rows after, the generic last)."""
    if pick.provider_id in SERVER_ORDER:
        place = SERVER_ORDER.index(pick.provider_id)
    else:
        place = len(SERVER_ORDER) + (pick.provider_id == _GENERIC)
    return (not pick.loaded, place)


def first_model_note(pick: FirstModel) -> str:
    """The one-line stderr note: what answers, and how to keep (or change) that choice."""
    name = strip_controls_one_line(pick.name)
    how = strip_controls_one_line(pick.how)
    return (
        f"rlm-code: no model configured; using {name} ({how}). Keep it with "
        f"`rlm-code config set default-model {shlex.quote(name)}` or RLM_CODE_MODEL, or pass "
        "--model."
    )


# -- the pre-look -------------------------------------------------------------------------------

_LOOPBACK_NAMES = {"localhost": ("127.0.0.1", "::1")}


def nothing_listens(
    environ: Mapping[str, str],
    registry: ProviderRegistry | None = None,
    timeout: float = DISCOVERY_TIMEOUT_S,
) -> bool:
    """True only when every local row's URL surely refuses a TCP connection.

    Valid only when no config file or `.env` can name a URL (the caller checks that): each
    row's URL is then its env var in `environ`, else its default. A URL this cannot check
    without a resolver or a second copy of the URL rules (a host name other than localhost,
    Ollama's scheme-less host form) counts as "maybe listening", and so does a connect still
    pending at the deadline: the full look then decides.
    """
    if registry is None:
        from rlm_code.models.providers.registry import ProviderRegistry

        registry = ProviderRegistry.default()
    addresses: set[tuple[str, int]] = set()
    for spec in registry.list_providers("local"):
        value = environ.get(spec.base_url_env_var or "", "").strip() or spec.default_base_url
        if not value:
            continue
        try:
            parts = urlsplit(value)
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False  # unreadable: the full look reports it; nothing to connect to here
        host = parts.hostname or ""
        if "://" not in value or port is None or not host:
            return False
        for address in _LOOPBACK_NAMES.get(host.lower(), (host,)):
            if not _is_ip(address):
                return False
            addresses.add((address, port))
    return not _any_accepts(addresses, timeout)


def _is_ip(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _any_accepts(addresses: set[tuple[str, int]], timeout: float) -> bool:
    """Non-blocking connects to every address at once; True if one is accepted or pending."""
    selector = selectors.DefaultSelector()
    socks: list[socket.socket] = []
    try:
        for host, port in addresses:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError:
                continue  # no IPv6 on this machine: nothing listens there either
            socks.append(sock)
            sock.setblocking(False)
            code = sock.connect_ex((host, port))
            if code == 0:
                return True
            if code in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
                selector.register(sock, selectors.EVENT_WRITE, data=sock)
        deadline = time.monotonic() + timeout
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return True  # still pending: something may be there
            for key, _ in selector.select(left):
                done: socket.socket = key.data
                selector.unregister(done)
                if done.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                    return True
        return False
    finally:
        selector.close()
        for sock in socks:
            sock.close()


# -- the second round -------------------------------------------------------------------------


def _root(base_url: str) -> str:
    return base_url[: -len("/v1")] if base_url.endswith("/v1") else base_url


def _second_round(result: dict[str, Any]) -> list[str]:
    """The URLs that tell which of a server's models is in memory (none for most kinds)."""
    base = str(result.get("base_url", ""))
    provider = result.get("provider_id")
    if provider == "ollama":
        return [base + "/api/ps", base + "/api/tags"]
    if provider == "lmstudio":
        return [_root(base) + "/api/v0/models"]
    return []


def _items(answers: dict[str, Answer], url: str, key: str) -> list[dict[str, Any]]:
    """The objects in the list under `key` of a 200 JSON answer; [] for anything else."""
    answer = answers.get(url)
    if answer is None or answer.status != 200:
        return []
    doc = answer.json()
    items = doc.get(key) if isinstance(doc, dict) else None
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _is_embedding(name: str, family: object = None) -> bool:
    return "embed" in name.lower() or family in _EMBEDDING_FAMILIES


def _when(value: object) -> float:
    """An ISO 8601 time as a timestamp for sorting; unreadable times sort last."""
    if not isinstance(value, str):
        return float("-inf")
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # Go writes up to 9 fractional digits; Python reads at most 6
        head, _, tail = text.partition(".")
        digits = len(tail) - len(tail.lstrip("0123456789"))
        text = f"{head}.{tail[:digits][:6]}{tail[digits:]}"
    try:
        return datetime.fromisoformat(text).timestamp()
    except (ValueError, OverflowError, OSError):
        return float("-inf")


def _ollama_names(items: list[dict[str, Any]], time_key: str) -> list[str]:
    """Chat models of an Ollama list, the most recent `time_key` first (stable otherwise)."""
    named = []
    for item in items:
        name = item.get("name") or item.get("model")
        details = item.get("details")
        family = details.get("family") if isinstance(details, dict) else None
        if isinstance(name, str) and name and not _is_embedding(name, family):
            named.append((name, _when(item.get(time_key))))
    named.sort(key=lambda pair: pair[1], reverse=True)  # stable: ties keep the server's order
    return [name for name, _ in named]


def _chat_models(names: object) -> list[str]:
    if not isinstance(names, list):
        return []
    return [n for n in names if isinstance(n, str) and n and not _is_embedding(n)]


def _pick(result: dict[str, Any], answers: dict[str, Answer]) -> FirstModel | None:
    """The model this server offers, from both rounds' answers; None if it has no chat model."""
    provider = str(result.get("provider_id", ""))
    base = str(result.get("base_url", ""))
    server = str(result.get("display_name") or provider)
    listed = _chat_models(result.get("models"))

    def offer(model: str, loaded: bool, how: str) -> FirstModel:
        how = f"{how} {server} at {base}" + ("" if loaded else "; it loads on the first call")
        return FirstModel(provider, model, base, server, loaded, how)

    if provider == "ollama":
        running = _ollama_names(_items(answers, base + "/api/ps", "models"), "expires_at")
        if running:
            return offer(running[0], True, "loaded in")
        recent = _ollama_names(_items(answers, base + "/api/tags", "models"), "modified_at")
        recent = recent or listed
        if recent:
            return offer(recent[0], False, "the most recently modified model of")
        return None
    if provider == "lmstudio":
        entries = _items(answers, _root(base) + "/api/v0/models", "data")
        chat = [
            e
            for e in entries
            if isinstance(e.get("id"), str)
            and e.get("type") != "embeddings"
            and not _is_embedding(e["id"])
        ]
        loaded = [e["id"] for e in chat if e.get("state") == "loaded"]
        if loaded:
            return offer(loaded[0], True, "loaded in")
        available = [e["id"] for e in chat] or listed
        if available:
            return offer(available[0], False, "listed (not loaded yet) by")
        return None
    if listed:
        return offer(listed[0], True, "served by")
    return None
