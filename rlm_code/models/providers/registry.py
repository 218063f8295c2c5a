"""Provider metadata and name resolution.

Every supported provider is one row of `PROVIDERS`. Everything else — discovery probes, the
CLI tables, the README table, key lookup — is derived from those rows, never from a second
hand-kept list. Adding a provider means adding a row (and, if it has one, its curated list in
`model_catalog`).

A provider's quirks are data on its row, read by the generic code in `rlm_code.models.resolve`
and the adapters: the prefixes its keys start with and the other providers' keys that look
alike, the host[:port] forms its URL variable accepts (Ollama's `OLLAMA_HOST`), the variable
that sets its read timeout, a legacy top-level config key for its URL, capability flags, the
request field a chat-completions host takes for reasoning (`reasoning_param`: most hosts take
OpenAI's `reasoning_effort`, OpenRouter a `reasoning` object, DeepSeek and Moonshot
`thinking`, DashScope and SiliconFlow `enable_thinking`; TGI and MLX have none, so a reasoning
setting is refused before any I/O), and
— where behaviour is needed rather than data — a `hooks` module named by import path
(`rlm_code.models.providers.opencode`). No other module branches on a provider id.

Values the spec does not give were chosen from what the provider itself uses, and are marked
`# not in spec` below: the default URLs of OpenAI, Anthropic and Gemini, the base-URL env vars
of the cloud providers (the SDK's own variable where one exists, else `<NAME>_BASE_URL`), and
the example models of SiliconFlow, Fireworks and the local servers.

This module imports nothing beyond the standard library: it must stay cheap to import. It
does not import `model_catalog` either (that module looks names up here), so the cloud rows
spell out their three example models; a test checks each is in the curated list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

ADAPTER_TYPES = ("ollama", "openai", "anthropic", "gemini", "openai_compatible")
CONNECTION_TYPES = ("local", "byok")
CATEGORIES = ("Local", "US Labs", "China Labs", "Model Hosts", "Other Labs")


@dataclass(frozen=True)
class ProviderSpec:
    """Static description of one provider: how to reach it and how to name it."""

    provider_id: str
    display_name: str
    adapter_type: str
    aliases: list[str] = field(default_factory=list)
    api_key_env_vars: list[str] = field(default_factory=list)
    base_url_env_var: str | None = None
    default_base_url: str | None = None
    docs_url: str | None = None
    requires_api_key: bool = True
    connection_type: str = "byok"
    category: str = "Other Labs"
    example_models: list[str] = field(default_factory=list)
    # -- quirks, as data (not in spec) -----------------------------------------------------
    # A key must start with one of these (checked before any network I/O); empty: any key.
    key_prefixes: tuple[str, ...] = ()
    # (prefix, whose key it is): another provider's key that would pass `key_prefixes`.
    key_lookalikes: tuple[tuple[str, str], ...] = ()
    # Set: the URL env var and config also take `host`, `host:port`, `:port` forms (as
    # Ollama's OLLAMA_HOST does), with this port when none is given.
    host_form_port: int | None = None
    # A top-level config key meaning the same as `providers.<id>.base_url` (kept for users).
    config_url_key: str | None = None
    # An env var holding this provider's own read timeout in seconds (beats the global one).
    read_timeout_env_var: str | None = None
    # The server reports usage in streams when asked (`stream_options.include_usage`).
    supports_stream_usage: bool = True
    # Import path of a module with behaviour hooks (`choose_adapter`, `live_models`,
    # `filter_models`); see `rlm_code.models.resolve`.
    hooks: str | None = None
    # Chat-completions hosts: the request field that asks for reasoning (read by the openai
    # and openai_compatible adapters, see `adapters._openai_wire`): "reasoning_effort" (an
    # effort word), "reasoning" (OpenRouter's object), "thinking" (DeepSeek, Moonshot),
    # "enable_thinking" (DashScope, SiliconFlow), None: no such setting (refused).
    reasoning_param: str | None = "reasoning_effort"

    @property
    def names(self) -> tuple[str, ...]:
        """The id followed by every alias: each resolves to this provider."""
        return (self.provider_id, *self.aliases)

    @property
    def is_local(self) -> bool:
        return self.connection_type == "local"


def _local(
    provider_id: str,
    display_name: str,
    adapter_type: str,
    aliases: list[str],
    default_base_url: str,
    base_url_env_var: str,
    docs_url: str | None,
    example_models: list[str],
    **quirks: Any,
) -> ProviderSpec:
    """A server on this machine: no key, its own category."""
    return _cloud(
        provider_id,
        display_name,
        adapter_type,
        aliases,
        [],
        default_base_url,
        base_url_env_var,
        docs_url,
        "Local",
        example_models,
        requires_api_key=False,
        connection_type="local",
        **quirks,
    )


def _cloud(
    provider_id: str,
    display_name: str,
    adapter_type: str,
    aliases: list[str],
    api_key_env_vars: list[str],
    default_base_url: str,
    base_url_env_var: str,
    docs_url: str | None,
    category: str,
    example_models: list[str],
    requires_api_key: bool = True,
    connection_type: str = "byok",
    **quirks: Any,
) -> ProviderSpec:
    return ProviderSpec(
        provider_id=provider_id,
        display_name=display_name,
        adapter_type=adapter_type,
        aliases=aliases,
        api_key_env_vars=api_key_env_vars,
        base_url_env_var=base_url_env_var,
        default_base_url=default_base_url,
        docs_url=docs_url,
        requires_api_key=requires_api_key,
        connection_type=connection_type,
        category=category,
        example_models=list(example_models),
        **quirks,
    )


_OC = "openai_compatible"

# fmt: off
PROVIDERS: tuple[ProviderSpec, ...] = (
    # ---- Local: no key -------------------------------------------------------------------------
    _local("ollama", "Ollama", "ollama", ["local-ollama"], "http://localhost:11434",
           "OLLAMA_HOST", "https://ollama.com",
           ["qwen2.5-coder:7b", "llama3.2:3b", "gpt-oss:20b"],
           host_form_port=11434, config_url_key="ollama_endpoint",
           read_timeout_env_var="OLLAMA_HTTP_TIMEOUT"),
    _local("lmstudio", "LM Studio", _OC, ["lm-studio"], "http://localhost:1234/v1",
           "LMSTUDIO_BASE_URL", "https://lmstudio.ai",
           ["qwen2.5-coder-7b-instruct", "llama-3.2-3b-instruct"]),  # not in spec
    _local("vllm", "vLLM", _OC, ["vllm-server"], "http://localhost:8000/v1",
           "VLLM_BASE_URL", "https://docs.vllm.ai",
           ["Qwen/Qwen2.5-Coder-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]),  # not in spec
    _local("sglang", "SGLang", _OC, ["sg-lang"], "http://localhost:30000/v1",
           "SGLANG_BASE_URL", "https://docs.sglang.ai",
           ["Qwen/Qwen2.5-Coder-7B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"]),  # not in spec
    _local("tgi", "Hugging Face TGI", _OC, ["text-generation-inference"],
           "http://localhost:8080/v1", "TGI_BASE_URL",
           "https://huggingface.co/docs/text-generation-inference",
           ["tgi"],  # not in spec: TGI serves one model and accepts the name "tgi"
           reasoning_param=None),
    _local("mlx", "MLX", _OC, ["mlx-lm"], "http://localhost:8080/v1",
           "MLX_BASE_URL", "https://github.com/ml-explore/mlx-lm",
           ["mlx-community/Qwen2.5-Coder-7B-Instruct-4bit",
            "mlx-community/Llama-3.2-3B-Instruct-4bit"],  # not in spec
           reasoning_param=None),
    _local("llama-cpp", "llama.cpp Server", _OC, ["llamacpp", "llama_cpp"],
           "http://localhost:8080/v1", "LLAMACPP_BASE_URL", "https://github.com/ggml-org/llama.cpp",
           ["default"]),  # not in spec: llama-server answers with its loaded model for any name
    _local("openai-compatible", "OpenAI-Compatible (Generic)", _OC,
           ["openai_compatible", "compatible"], "http://localhost:8000/v1",
           "OPENAI_COMPATIBLE_BASE_URL", None, []),
    # ---- BYOK: US Labs -------------------------------------------------------------------------
    _cloud("openai", "OpenAI", "openai", ["gpt"], ["OPENAI_API_KEY"],
           "https://api.openai.com/v1", "OPENAI_API_BASE",  # default URL not in spec
           "https://platform.openai.com/", "US Labs", ["gpt-5", "gpt-4o", "gpt-4o-mini"],
           key_prefixes=("sk-",), key_lookalikes=(("sk-ant-", "Anthropic"),)),
    _cloud("anthropic", "Anthropic", "anthropic", ["claude"], ["ANTHROPIC_API_KEY"],
           "https://api.anthropic.com", "ANTHROPIC_BASE_URL",  # not in spec: the SDK's own
           "https://console.anthropic.com", "US Labs",
           ["claude-opus-4-6", "claude-opus-4-5-20251101", "claude-sonnet-4-5-20250929"],
           key_prefixes=("sk-ant-",)),
    _cloud("gemini", "Google Gemini", "gemini", ["google"], ["GEMINI_API_KEY", "GOOGLE_API_KEY"],
           "https://generativelanguage.googleapis.com",
           "GOOGLE_GEMINI_BASE_URL",  # not in spec: the google-genai SDK's own
           "https://aistudio.google.com", "US Labs",
           ["gemini-3-pro-preview", "gemini-3-flash-preview", "gemini-2.5-pro"],
           key_prefixes=("AIza", "AQ.")),  # AQ.: Google's newer key format
    _cloud("xai", "xAI", _OC, [], ["XAI_API_KEY"], "https://api.x.ai/v1",
           "XAI_BASE_URL", "https://console.x.ai", "US Labs", ["grok-3", "grok-3-mini", "grok-2"]),
    _cloud("perplexity", "Perplexity", _OC, [], ["PERPLEXITY_API_KEY", "PPLX_API_KEY"],
           "https://api.perplexity.ai", "PERPLEXITY_BASE_URL", "https://docs.perplexity.ai",
           "US Labs", ["sonar-pro", "sonar", "sonar-reasoning"]),
    # ---- BYOK: China Labs ----------------------------------------------------------------------
    _cloud("deepseek", "DeepSeek", _OC, [], ["DEEPSEEK_API_KEY"], "https://api.deepseek.com/v1",
           "DEEPSEEK_BASE_URL", "https://platform.deepseek.com", "China Labs",
           ["deepseek-ai/DeepSeek-V3.2", "deepseek-ai/DeepSeek-R1", "deepseek-chat"],
           reasoning_param="thinking"),
    _cloud("moonshot", "Moonshot (Kimi)", _OC, ["kimi"], ["MOONSHOT_API_KEY", "KIMI_API_KEY"],
           "https://api.moonshot.ai/v1", "MOONSHOT_BASE_URL", "https://platform.moonshot.cn",
           "China Labs", ["moonshot-v1-128k", "moonshot-v1-32k", "moonshot-v1-8k"],
           reasoning_param="thinking"),
    _cloud("alibaba", "Alibaba (DashScope / Qwen)", _OC, ["qwen", "dashscope"],
           ["DASHSCOPE_API_KEY", "QWEN_API_KEY"],
           "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", "DASHSCOPE_BASE_URL",
           "https://dashscope.aliyun.com", "China Labs", ["qwen-max", "qwen-plus", "qwen-turbo"],
           reasoning_param="enable_thinking"),
    # ---- BYOK: Model Hosts ---------------------------------------------------------------------
    _cloud("openrouter", "OpenRouter", _OC, [], ["OPENROUTER_API_KEY"],
           "https://openrouter.ai/api/v1", "OPENROUTER_BASE_URL", "https://openrouter.ai",
           "Model Hosts",
           ["anthropic/claude-sonnet-4", "openai/gpt-4o", "google/gemini-2.0-flash"],
           reasoning_param="reasoning"),
    _cloud("opencode", "OpenCode Zen", _OC, ["opencode-zen"], ["OPENCODE_API_KEY"],
           "https://api.opencode.ai/v1", "OPENCODE_BASE_URL", "https://opencode.ai",
           "Model Hosts", ["glm-4.7-free", "grok-code", "kimi-k2.5-free"],
           requires_api_key=False,  # keyless mode: free models need no key
           hooks="rlm_code.models.providers.opencode"),
    _cloud("groq", "Groq", _OC, [], ["GROQ_API_KEY"], "https://api.groq.com/openai/v1",
           "GROQ_BASE_URL", "https://console.groq.com", "Model Hosts",
           ["llama-3.3-70b-versatile", "llama-3.1-8b-instant", "mixtral-8x7b-32768"]),
    _cloud("together", "Together AI", _OC, ["togetherai"],
           ["TOGETHER_API_KEY", "TOGETHERAI_API_KEY"], "https://api.together.xyz/v1",
           "TOGETHER_BASE_URL", "https://api.together.xyz", "Model Hosts",
           ["meta-llama/Llama-3.3-70B-Instruct-Turbo", "Qwen/Qwen2.5-Coder-32B-Instruct",
            "deepseek-ai/DeepSeek-R1"]),
    _cloud("siliconflow", "SiliconFlow", _OC, ["silicon-flow"],
           ["SILICONFLOW_API_KEY", "SILICON_API_KEY"], "https://api.siliconflow.cn/v1",
           "SILICONFLOW_BASE_URL", "https://siliconflow.cn", "Model Hosts",
           ["deepseek-ai/DeepSeek-V3", "Qwen/Qwen2.5-Coder-32B-Instruct",
            "Qwen/Qwen2.5-72B-Instruct"],  # not in spec
           reasoning_param="enable_thinking"),
    _cloud("fireworks", "Fireworks AI", _OC, [], ["FIREWORKS_API_KEY"],
           "https://api.fireworks.ai/inference/v1", "FIREWORKS_BASE_URL", "https://fireworks.ai",
           "Model Hosts",
           ["accounts/fireworks/models/llama-v3p3-70b-instruct",
            "accounts/fireworks/models/deepseek-v3",
            "accounts/fireworks/models/qwen2p5-coder-32b-instruct"]),  # not in spec
    _cloud("cerebras", "Cerebras", _OC, [], ["CEREBRAS_API_KEY"], "https://api.cerebras.ai/v1",
           "CEREBRAS_BASE_URL", "https://cloud.cerebras.ai", "Model Hosts",
           ["llama-3.3-70b", "qwen-3-coder-480b"]),
    # ---- BYOK: Other Labs ----------------------------------------------------------------------
    _cloud("mistral", "Mistral AI", _OC, [], ["MISTRAL_API_KEY"], "https://api.mistral.ai/v1",
           "MISTRAL_BASE_URL", "https://console.mistral.ai", "Other Labs",
           ["mistral-large-2411", "mistral-medium-2505", "mistral-nemo"]),
)
# fmt: on


def _clean(name: object, what: str) -> str | None:
    """Normalise a lookup name: strip and lower-case; None or blank means no match."""
    if name is None:
        return None
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {type(name).__name__}")
    cleaned = name.strip().lower()
    return cleaned or None


class ProviderRegistry:
    """Resolves provider ids, aliases and `provider/model` names to `ProviderSpec` rows."""

    _default: ClassVar[ProviderRegistry | None] = None

    def __init__(self, providers: tuple[ProviderSpec, ...] | list[ProviderSpec]) -> None:
        self._providers: tuple[ProviderSpec, ...] = tuple(providers)
        self._by_name: dict[str, ProviderSpec] = {}
        for spec in self._providers:
            for name in spec.names:
                key = name.strip().lower()
                other = self._by_name.get(key)
                if other is not None and other is not spec:
                    raise ValueError(
                        f"provider name {name!r} is used by both {other.provider_id!r} "
                        f"and {spec.provider_id!r}"
                    )
                self._by_name[key] = spec
        self._sorted = tuple(sorted(self._providers, key=lambda s: s.provider_id))

    @classmethod
    def default(cls) -> ProviderRegistry:
        """The registry of every built-in provider (built once, then shared)."""
        if cls._default is None:
            cls._default = cls(PROVIDERS)
        return cls._default

    def __len__(self) -> int:
        return len(self._providers)

    def __repr__(self) -> str:
        return f"ProviderRegistry({len(self._providers)} providers)"

    def list_providers(self, connection_type: str | None = None) -> list[ProviderSpec]:
        """Providers sorted by id, optionally only those of one connection type."""
        if connection_type is None:
            return list(self._sorted)
        wanted = _clean(connection_type, "connection_type")
        if wanted not in CONNECTION_TYPES:
            raise ValueError(
                f"unknown connection type {connection_type!r}; use one of: "
                + ", ".join(CONNECTION_TYPES)
            )
        return [spec for spec in self._sorted if spec.connection_type == wanted]

    def get(self, provider_name: str) -> ProviderSpec | None:
        """Resolve a provider id or alias, ignoring case and surrounding spaces."""
        key = _clean(provider_name, "provider_name")
        return self._by_name.get(key) if key else None

    def infer_provider_from_model(self, model_name: str) -> ProviderSpec | None:
        """Provider named by the prefix of `provider/model`, or None without a known prefix."""
        cleaned = _clean(model_name, "model_name")
        if not cleaned or "/" not in cleaned:
            return None
        prefix = cleaned.split("/", 1)[0].strip()
        return self._by_name.get(prefix) if prefix else None

    def normalize_model_name(self, provider_name: str, model_name: str) -> str:
        """Strip one redundant leading `provider/` (id or alias) from a model name.

        `openrouter/openai/gpt-4o-mini` under openrouter becomes `openai/gpt-4o-mini`; a name
        whose prefix names another provider, or no provider, is kept as it is.
        """
        if not isinstance(model_name, str):
            raise TypeError(f"model_name must be a string, got {type(model_name).__name__}")
        model = model_name.strip()
        spec = self.get(provider_name)
        if spec is None or "/" not in model:
            return model
        prefix, rest = model.split("/", 1)
        rest = rest.strip()
        if rest and prefix.strip().lower() in {n.lower() for n in spec.names}:
            return rest
        return model

    def names(self) -> list[str]:
        """Every id and alias, sorted: what completion and close-match hints offer."""
        return sorted(self._by_name)


__all__ = [
    "ADAPTER_TYPES",
    "CATEGORIES",
    "CONNECTION_TYPES",
    "PROVIDERS",
    "ProviderRegistry",
    "ProviderSpec",
]
