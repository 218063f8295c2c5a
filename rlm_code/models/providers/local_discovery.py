"""Find local model servers: probe every local row of the provider registry, all at once.

What is probed comes from the registry rows, never from a second list: each local row gives a
base URL (its env var via `ConfigManager.get_env`, else `rlm_config.yaml` via
`ConfigManager.provider_base_url`, else the row's default — the order the connector uses), and
its adapter type says how to talk to it. The only table here, `PROBE_HINTS`, says how to *tell
apart* servers that share a URL; a new local row needs no entry to be probed.

How probing works, and why:

- Rows that resolve to the same URL are probed once. llama.cpp, MLX and TGI all default to
  ``:8080/v1`` and vLLM and the generic row to ``:8000/v1``, so a per-row probe would hit the
  same port three times and then report three servers where there is one. Every distinct
  request URL is fetched at most once per call, and the server's answer decides who it is:
  TGI answers ``GET /info`` with a ``model_id``, llama.cpp answers ``GET /props``, vLLM and
  SGLang name themselves in the ``owned_by`` field of ``/v1/models``. A server that only speaks
  ``/v1/models`` is reported once, under the first plausible candidate (a 404 on ``/info`` or
  ``/props`` rules TGI or llama.cpp out; the generic row always comes last), with the other
  candidates named in ``detail`` and listed in ``candidates``.
- Every request runs concurrently (asyncio + aiohttp, one session) with the same per-request
  timeout, and the whole call also has a hard deadline, so it returns in about one timeout
  whatever the ports do: refuse, accept and stay silent, trickle, answer garbage or HTTP 500.
- Network trouble never raises: it becomes ``healthy: False`` and a ``detail`` that says what
  happened ("connection refused", "timed out after 1.5 s", "HTTP 500", ...). Only a bad
  ``timeout`` argument raises (`InvalidInputError`); a malformed config file still raises
  `ConfigError`, because silently probing the wrong URL would hide the mistake.

The fetching itself (many GETs within one deadline) is in `local_probe`; aiohttp is imported
inside the functions that use it, so importing this module loads no HTTP stack.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.core.urls import normalize_host_url
from rlm_code.models.providers.local_probe import Answer, fetch_all, run_coroutine

if TYPE_CHECKING:
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec

__all__ = [
    "DEFAULT_TIMEOUT",
    "MAX_TIMEOUT",
    "PROBE_HINTS",
    "ProbeHint",
    "check_timeout",
    "discover_local_providers",
]

DEFAULT_TIMEOUT = 1.5
MAX_TIMEOUT = 600.0  # discovery is a quick look; a larger value is a typo, not a wish

# Extra time the whole call may take beyond the per-request timeout before stragglers are
# cancelled (event-loop start, connection teardown).


# -- how to recognise servers ---------------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """What a signature endpoint told us about the server."""

    models: list[str]
    detail: str


def _tgi_identity(doc: Any) -> _Identity | None:
    """TGI's ``GET /info``: a JSON object with a non-empty ``model_id``."""
    if not isinstance(doc, dict):
        return None
    model = doc.get("model_id")
    if not isinstance(model, str) or not model:
        return None
    version = doc.get("version")
    name = f"TGI {version}" if isinstance(version, str) and version else "TGI"
    return _Identity(models=[model], detail=f"{name} (answered /info)")


_LLAMACPP_KEYS = ("default_generation_settings", "model_path", "build_info", "total_slots")


def _llamacpp_identity(doc: Any) -> _Identity | None:
    """llama.cpp's ``GET /props``: generation settings, model path, build info."""
    if not isinstance(doc, dict) or not any(key in doc for key in _LLAMACPP_KEYS):
        return None
    model: str | None = None
    alias = doc.get("model_alias")
    settings = doc.get("default_generation_settings")
    path = doc.get("model_path")
    if isinstance(alias, str) and alias:
        model = alias
    elif isinstance(settings, dict) and isinstance(settings.get("model"), str):
        model = settings["model"] or None
    elif isinstance(path, str) and path:
        model = path.replace("\\", "/").rsplit("/", 1)[-1]
    build = doc.get("build_info")
    name = f"llama.cpp server {build}" if isinstance(build, str) and build else "llama.cpp server"
    return _Identity(models=[model] if model else [], detail=f"{name} (answered /props)")


@dataclass(frozen=True)
class _Signature:
    """An endpoint only one kind of server answers, relative to the server root."""

    path: str
    recognise: Callable[[Any], _Identity | None]


@dataclass(frozen=True)
class ProbeHint:
    """How to tell one provider's server apart from others on the same URL.

    `signature` is a root-relative endpoint that only this server answers (a 404 there rules
    the provider out); `owned_by` lists values of the ``owned_by`` field of ``/v1/models``
    that only this server uses; `generic` marks a catch-all row, named only when nothing more
    specific fits.
    """

    signature: _Signature | None = None
    owned_by: tuple[str, ...] = ()
    generic: bool = False


PROBE_HINTS: dict[str, ProbeHint] = {
    "tgi": ProbeHint(signature=_Signature("/info", _tgi_identity)),
    "llama-cpp": ProbeHint(
        signature=_Signature("/props", _llamacpp_identity), owned_by=("llamacpp",)
    ),
    "vllm": ProbeHint(owned_by=("vllm",)),
    "sglang": ProbeHint(owned_by=("sglang",)),
    "openai-compatible": ProbeHint(generic=True),
}
_NO_HINT = ProbeHint()


def _hint(spec: ProviderSpec) -> ProbeHint:
    return PROBE_HINTS.get(spec.provider_id, _NO_HINT)


# -- arguments ------------------------------------------------------------------------------


def check_timeout(timeout: object) -> float:
    """A discovery timeout in seconds: a finite number above 0 and at most `MAX_TIMEOUT`."""
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise InvalidInputError(
            f"timeout must be a number of seconds, got {type(timeout).__name__}"
        )
    value = float(timeout)
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if value > MAX_TIMEOUT:
        raise InvalidInputError(
            f"timeout must be at most {MAX_TIMEOUT:g} seconds for discovery, got {timeout!r}"
        )
    return value


# -- which URLs to probe --------------------------------------------------------------------


@dataclass
class _Target:
    """One distinct URL to probe and the providers whose base URL it is."""

    kind: str  # "ollama" (native API at the root) or "openai" (base URL ends in /v1)
    base_url: str
    candidates: list[ProviderSpec] = field(default_factory=list)
    invalid: str | None = None  # why the URL cannot be probed at all


def _resolve_url(spec: ProviderSpec, config: ConfigManager) -> tuple[str | None, str]:
    """The row's base URL and where it came from: env var, then config file, then default."""
    if spec.base_url_env_var:
        value = config.get_env(spec.base_url_env_var)
        if value:
            if spec.host_form_port is not None:
                # Unparsable: left as typed, and reported as an invalid URL rather than raised.
                with contextlib.suppress(InvalidInputError):
                    value = normalize_host_url(value, spec.host_form_port, spec.base_url_env_var)
            return value, f"${spec.base_url_env_var}"
    found = config.provider_base_url_source(spec.provider_id)
    if found is not None:
        return found[0], str(found[1])
    return spec.default_base_url, "the registry default"


def _targets(registry: ProviderRegistry, config: ConfigManager) -> list[_Target]:
    """Group the local rows by (kind, URL), in registry order with generic rows last."""
    from urllib.parse import urlsplit

    specs = registry.list_providers("local")
    specs = sorted(specs, key=lambda s: _hint(s).generic)  # stable: keeps registry order
    targets: dict[tuple[str, str], _Target] = {}
    for spec in specs:
        url, source = _resolve_url(spec, config)
        kind = "ollama" if spec.adapter_type == "ollama" else "openai"
        if not url:
            continue  # a local row without any URL has nothing to probe
        url = url.strip().rstrip("/")
        invalid = None
        try:
            parts = urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            usable = False
        if not usable:
            invalid = f"invalid base URL from {source}: expected http(s)://host[:port][/path]"
        target = targets.setdefault((kind, url), _Target(kind, url, invalid=invalid))
        target.candidates.append(spec)
    return list(targets.values())


def _root(target: _Target) -> str:
    """The server root: native endpoints (/info, /props, /api/...) live there, not under /v1."""
    url = target.base_url
    return url[: -len("/v1")] if url.endswith("/v1") else url


def _request_urls(target: _Target) -> list[str]:
    if target.kind == "ollama":
        return [target.base_url + "/api/tags", target.base_url + "/api/version"]
    urls = [target.base_url + "/models"]
    for spec in target.candidates:
        signature = _hint(spec).signature
        if signature is not None:
            urls.append(_root(target) + signature.path)
    return urls


def _why_not(answer: Answer, what: str) -> str:
    """Why `answer` is not the document we wanted, in a few words."""
    if answer.error:
        return answer.error
    if answer.status in (401, 403):
        return f"HTTP {answer.status}: the server is up but wants an API key"
    if answer.status != 200:
        return f"HTTP {answer.status}"
    return f"not {what}"


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(name for name in names if name))


def _listing(answer: Answer, key: str) -> list[Any] | None:
    """The list under `key` of a 200 answer's JSON object, or None if it is not one."""
    if answer.status != 200:
        return None
    doc = answer.json()
    items = doc.get(key) if isinstance(doc, dict) else None
    return items if isinstance(items, list) else None


def _openai_models(answer: Answer) -> tuple[list[str], set[str]] | None:
    """Model ids and ``owned_by`` values of a ``/v1/models`` answer, or None if it is not one."""
    items = _listing(answer, "data")
    if items is None:
        return None
    ids: list[str] = []
    owners: set[str] = set()
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            return None
        ids.append(item["id"])
        owner = item.get("owned_by")
        if isinstance(owner, str):
            owners.add(owner.lower())
    return _unique(ids), owners


def _ollama_models(answer: Answer) -> list[str] | None:
    items = _listing(answer, "models")
    if items is None:
        return None
    names: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            return None
        name = item.get("name") or item.get("model")
        if isinstance(name, str):
            names.append(name)
    return _unique(names)


def _result(
    target: _Target,
    spec: ProviderSpec,
    *,
    healthy: bool,
    models: list[str] | None = None,
    latency_ms: float | None = None,
    detail: str,
) -> dict[str, Any]:
    others = [s.provider_id for s in target.candidates if s is not spec]
    return {
        "provider_id": spec.provider_id,
        "display_name": spec.display_name,
        "base_url": target.base_url,
        "healthy": healthy,
        "models": list(models or []),
        "latency_ms": latency_ms,
        "detail": detail,
        "candidates": [spec.provider_id, *others],
    }


def _judge_ollama(target: _Target, answers: dict[str, Answer]) -> dict[str, Any]:
    spec = target.candidates[0]
    tags = answers[target.base_url + "/api/tags"]
    models = _ollama_models(tags)
    if models is None:
        return _result(target, spec, healthy=False, detail=_why_not(tags, "an Ollama answer"))
    version_doc = answers[target.base_url + "/api/version"].json()
    version = version_doc.get("version") if isinstance(version_doc, dict) else None
    detail = f"Ollama {version}" if isinstance(version, str) and version else "Ollama"
    return _result(
        target,
        spec,
        healthy=True,
        models=models,
        latency_ms=tags.latency_ms,
        detail=f"{detail} (answered /api/tags)",
    )


def _judge_openai(target: _Target, answers: dict[str, Answer]) -> dict[str, Any]:
    listing_answer = answers[target.base_url + "/models"]
    listing = _openai_models(listing_answer)
    plausible = list(target.candidates)
    for spec in target.candidates:
        signature = _hint(spec).signature
        if signature is None:
            continue
        answer = answers[_root(target) + signature.path]
        identity = signature.recognise(answer.json()) if answer.status == 200 else None
        if identity is not None:
            models = listing[0] if listing and listing[0] else identity.models
            if spec.provider_id == "tgi":  # TGI serves exactly the one model /info names
                models = identity.models
            return _result(
                target,
                spec,
                healthy=True,
                models=models,
                latency_ms=answer.latency_ms,
                detail=identity.detail,
            )
        if answer.status in (404, 200):  # answered, and not like this server would
            plausible.remove(spec)

    if listing is None:
        spec = plausible[0] if plausible else target.candidates[0]
        why = _why_not(listing_answer, "an OpenAI-compatible answer")
        return _result(target, spec, healthy=False, detail=why)

    models, owners = listing
    named = [s for s in plausible if owners & set(_hint(s).owned_by)]
    choice = (named or plausible or target.candidates)[0]
    detail = "OpenAI-compatible server (answered /v1/models)"
    if named:
        owner = sorted(owners & set(_hint(choice).owned_by))[0]
        detail = f"{choice.display_name} (owned_by {owner!r} in /v1/models)"
    elif len(plausible) > 1:
        others = ", ".join(s.provider_id for s in plausible if s is not choice)
        detail += f"; could also be: {others}"
    elif not plausible:
        paths = [h.signature.path for h in map(_hint, target.candidates) if h.signature]
        detail += (
            f"; it does not answer {' or '.join(paths)}, so it may not be {choice.display_name}"
        )
    return _result(
        target,
        choice,
        healthy=True,
        models=models,
        latency_ms=listing_answer.latency_ms,
        detail=detail,
    )


# -- the public function ----------------------------------------------------------------------


def discover_local_providers(
    registry: ProviderRegistry,
    config_manager: ConfigManager,
    timeout: float = DEFAULT_TIMEOUT,
) -> list[dict[str, Any]]:
    """Probe every local provider of `registry` concurrently; one dict per distinct URL.

    Each dict has ``provider_id``, ``display_name``, ``base_url``, ``healthy`` (bool),
    ``models`` (list of str), ``latency_ms`` (float, or None without a usable answer),
    ``detail`` (what answered, or why not) and ``candidates`` (every provider whose base URL
    this is, the reported one first). Healthy servers come first; otherwise the order is the
    registry's, so repeated calls list the same URLs in the same order.

    Returns in about `timeout` seconds however many URLs there are and however they behave.
    Raises `InvalidInputError` for a timeout that is not a positive number of seconds.
    """
    seconds = check_timeout(timeout)
    targets = _targets(registry, config_manager)
    probed = [t for t in targets if t.invalid is None]
    urls = [url for target in probed for url in _request_urls(target)]
    answers = run_coroutine(lambda: fetch_all(urls, seconds)) if urls else {}

    results: list[dict[str, Any]] = []
    for target in targets:
        if target.invalid is not None:
            results.append(
                _result(target, target.candidates[0], healthy=False, detail=target.invalid)
            )
        elif target.kind == "ollama":
            results.append(_judge_ollama(target, answers))
        else:
            results.append(_judge_openai(target, answers))
    results.sort(key=lambda r: not r["healthy"])  # stable: registry order within each group
    return results
