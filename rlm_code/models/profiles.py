"""Model profiles: how large a model's context is, what it can do, and which parameters it takes.

An agent has to know how much it may send and what it may ask for; a wrong guess fails late
(a truncated prompt, a 400 after the tokens were paid for). `Connection.profile()` builds one
`ModelProfile` per connection, once, from these sources in order, field by field:

1. ``config``: the user's overrides in a config file, ``model_profiles: {"provider/model":
   {context_window: 32768, supports_vision: false, ...}}`` (checked by `core/config_files.py`);
2. ``live``: a probe of a local server (Ollama ``/api/show``, llama.cpp ``/props``, vLLM's
   ``max_model_len``, LM Studio ``/api/v0/models``, SGLang ``/get_model_info``; see
   `adapters/_profile_probe.py`). Lazy (at the first `profile()` or the first call that needs
   it), bounded by the connect timeout, never during discovery; a probe that fails is skipped
   silently and the next source answers;
3. ``table``: the cloud table `providers/model_profiles.py` (by the longest model-name prefix)
   and the provider-wide rows there;
4. ``default``: unknown (None) for figures and capabilities, temperature accepted, and the
   adapter's way of reporting streamed usage.

`sources` says where each field came from.

The parameter policy (one place, applied by every adapter before any I/O):

- the output cap is mapped, never dropped: ``max_completion_tokens`` on OpenAI itself (its
  reasoning models refuse ``max_tokens``), ``max_tokens`` on every other chat-completions host
  (Mistral refuses ``max_completion_tokens``), ``num_predict`` on Ollama, ``max_tokens`` on
  Anthropic, ``max_output_tokens`` on Gemini;
- ``temperature`` on a model whose profile says ``accepts_temperature=False`` (OpenAI's o1, o3,
  o4 and gpt-5 families) has no equivalent: `UnsupportedParameterError` before the request;
- ``stream_options`` (asking for usage in a stream) is sent only where ``stream_usage`` is
  ``"stream_options"``; ``"always"`` hosts (Mistral, Ollama, Anthropic, Gemini) report usage
  unasked, so every streamed call still records usage.

Token estimates (`estimate_tokens`): no tokenizer is loaded, so the prompt is measured in
characters. Real tokenizers average about four characters a token on English and code; the
estimate gives a *high* figure (a token every 3 characters, plus 8 a message), used to size
Ollama's ``num_ctx`` so the prompt is never cut, and a *low* one (a token every 6 characters),
used to refuse a prompt before sending it only when it cannot fit even then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from rlm_code.core.exceptions import ContextLengthExceededError, UnsupportedParameterError
from rlm_code.models.providers.model_profiles import CLOUD_PROFILES, PROVIDER_PROFILES
from rlm_code.models.types import ChatRequest, ImagePart, TextPart

if TYPE_CHECKING:
    from rlm_code.models.providers.registry import ProviderSpec

__all__ = [
    "FIELDS",
    "STREAM_USAGE",
    "ModelProfile",
    "build_profile",
    "check_fits",
    "check_parameters",
    "estimate_tokens",
    "table_profile",
]

STREAM_USAGE = ("stream_options", "always", "none")
SOURCES = ("config", "live", "table", "default")
# Adapters whose APIs report streamed usage without being asked.
_USAGE_UNASKED = frozenset({"ollama", "anthropic", "gemini"})
# What an image costs in the estimate (a tile of most vision encoders; high on purpose).
IMAGE_TOKENS = 1_600


@dataclass(frozen=True)
class ModelProfile:
    """What one model can do, with each field's source (config, live, table or default).

    `context_window` and `max_output_tokens` are token counts, None when unknown; the
    `supports_*` flags are None when unknown."""

    context_window: int | None = None
    max_output_tokens: int | None = None
    supports_tools: bool | None = None
    supports_vision: bool | None = None
    supports_reasoning: bool | None = None
    supports_json_schema: bool | None = None
    accepts_temperature: bool = True
    stream_usage: str = "stream_options"
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The fields and their sources, for JSON output and status displays."""
        data: dict[str, Any] = {name: getattr(self, name) for name in FIELDS}
        data["sources"] = dict(self.sources)
        return data

    def capabilities(self) -> list[str]:
        """The names of the capabilities known to be there ("tools", "vision", ...)."""
        names = ("tools", "vision", "reasoning", "json_schema")
        return [n for n in names if getattr(self, f"supports_{n}") is True]


FIELDS: tuple[str, ...] = (
    "context_window",
    "max_output_tokens",
    "supports_tools",
    "supports_vision",
    "supports_reasoning",
    "supports_json_schema",
    "accepts_temperature",
    "stream_usage",
)
_INTS = ("context_window", "max_output_tokens")


def _clean(values: Mapping[str, Any]) -> dict[str, Any]:
    """Keep the well-formed known fields of one source (a probe may send anything)."""
    clean: dict[str, Any] = {}
    for name, value in values.items():
        if name not in FIELDS or value is None:
            continue
        if name in _INTS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                continue
        elif name == "stream_usage":
            if value not in STREAM_USAGE:
                continue
        elif not isinstance(value, bool):
            continue
        clean[name] = value
    return clean


def table_profile(provider_id: str, model: str) -> dict[str, Any]:
    """The table's fields for a model: the provider-wide row, then the longest prefix row.
    A host naming models `vendor/model` (OpenRouter) is looked up under that vendor too."""
    found = dict(PROVIDER_PROFILES.get(provider_id, {}))
    rows = CLOUD_PROFILES.get(provider_id)
    name = model.lower()
    if rows is None and "/" in name:
        vendor, _, name = name.partition("/")
        rows = CLOUD_PROFILES.get("gemini" if vendor == "google" else vendor)
    if rows:
        best = max((p for p in rows if name.startswith(p)), key=len, default=None)
        if best is not None:
            found.update(rows[best])
    return found


def _defaults(spec: ProviderSpec) -> dict[str, Any]:
    if spec.adapter_type in _USAGE_UNASKED:
        usage = "always"
    else:
        usage = "stream_options" if spec.supports_stream_usage else "none"
    return {"accepts_temperature": True, "stream_usage": usage}


def build_profile(
    spec: ProviderSpec,
    model: str,
    overrides: Mapping[str, Any] | None = None,
    live: Mapping[str, Any] | None = None,
) -> ModelProfile:
    """One profile from the four sources, the first that has a field winning it."""
    layers = (
        ("config", _clean(overrides or {})),
        ("live", _clean(live or {})),
        ("table", _clean(table_profile(spec.provider_id, model))),
        ("default", _defaults(spec)),
    )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name in FIELDS:
        sources[name] = "default"
        for source, layer in layers:
            if name in layer:
                values[name] = layer[name]
                sources[name] = source
                break
    return ModelProfile(**values, sources=MappingProxyType(sources))


# -- estimates and the parameter policy -------------------------------------------------------


def estimate_tokens(request: ChatRequest) -> tuple[int, int]:
    """(low, high) estimates of the prompt's tokens; see the module docstring."""
    chars = len(request.system or "")
    images = 0
    for message in request.messages:
        chars += len(message.content or "")
        for part in message.parts or ():
            if isinstance(part, ImagePart):
                images += 1
            elif isinstance(part, TextPart) and message.content is None:
                chars += len(part.text)
        for call in message.tool_calls or ():
            chars += len(call.name) + len(call.arguments_json or "")
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description or "") + len(str(tool.parameters))
    turns = len(request.messages) + (1 if request.system else 0)
    low = chars // 6 + images * 256
    high = -(-chars // 3) + 8 * turns + images * IMAGE_TOKENS
    return low, high


def check_fits(request: ChatRequest, profile: ModelProfile, provider: str) -> tuple[int, int]:
    """The prompt's (low, high) estimates; raises `ContextLengthExceededError` before any I/O
    when even the low estimate is beyond the model's context window."""
    low, high = estimate_tokens(request)
    window = profile.context_window
    if window is not None and low > window:
        raise ContextLengthExceededError(
            f"the prompt needs at least ~{low} tokens but {request.model} has a context window "
            f"of {window} tokens (from {profile.sources.get('context_window', 'default')})",
            provider=provider,
            limit=window,
            requested=low,
        )
    return low, high


def check_parameters(request: ChatRequest, profile: ModelProfile, provider: str) -> None:
    """Refuse, before any I/O, a parameter the model has no equivalent for (the policy in
    the module docstring): today `temperature` on a model that does not accept it."""
    if request.params.temperature is not None and not profile.accepts_temperature:
        raise UnsupportedParameterError(
            f"{request.model} does not accept temperature (reasoning models sample at a fixed "
            "temperature)",
            provider=provider,
            hint="Leave temperature unset for this model, or pick a non-reasoning model.",
        )
