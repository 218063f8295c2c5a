"""Provider registry: every method on every row and every alias, checked against the spec.

`SPEC_ROWS` is typed out by hand from `shared/spec/llm-providers.md` (not derived from the
code), so a typo in `registry.PROVIDERS` shows up here as a mismatch. `UNSPECIFIED` marks the
values the spec does not give; those are only checked for shape.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from rlm_code.models.providers.registry import (
    ADAPTER_TYPES,
    CATEGORIES,
    CONNECTION_TYPES,
    PROVIDERS,
    ProviderRegistry,
    ProviderSpec,
)

UNSPECIFIED: Any = object()

# id: (display name, aliases, adapter, default URL, base-URL env var, key env vars,
#      connection type, category, docs host)
SPEC_ROWS: dict[str, tuple[Any, ...]] = {
    # -- Local ------------------------------------------------------------------------------
    "ollama": ("Ollama", ["local-ollama"], "ollama", "http://localhost:11434",
               "OLLAMA_HOST", [], "local", "Local", "ollama.com"),
    "lmstudio": ("LM Studio", ["lm-studio"], "openai_compatible", "http://localhost:1234/v1",
                 "LMSTUDIO_BASE_URL", [], "local", "Local", "lmstudio.ai"),
    "vllm": ("vLLM", ["vllm-server"], "openai_compatible", "http://localhost:8000/v1",
             "VLLM_BASE_URL", [], "local", "Local", "docs.vllm.ai"),
    "sglang": ("SGLang", ["sg-lang"], "openai_compatible", "http://localhost:30000/v1",
               "SGLANG_BASE_URL", [], "local", "Local", "docs.sglang.ai"),
    "tgi": ("Hugging Face TGI", ["text-generation-inference"], "openai_compatible",
            "http://localhost:8080/v1", "TGI_BASE_URL", [], "local", "Local", UNSPECIFIED),
    "mlx": ("MLX", ["mlx-lm"], "openai_compatible", "http://localhost:8080/v1",
            "MLX_BASE_URL", [], "local", "Local", UNSPECIFIED),
    "llama-cpp": ("llama.cpp Server", ["llamacpp", "llama_cpp"], "openai_compatible",
                  "http://localhost:8080/v1", "LLAMACPP_BASE_URL", [], "local", "Local",
                  UNSPECIFIED),
    "openai-compatible": ("OpenAI-Compatible (Generic)", ["openai_compatible", "compatible"],
                          "openai_compatible", "http://localhost:8000/v1",
                          "OPENAI_COMPATIBLE_BASE_URL", [], "local", "Local", UNSPECIFIED),
    # -- BYOK: US Labs ----------------------------------------------------------------------
    "openai": ("OpenAI", ["gpt"], "openai", UNSPECIFIED, "OPENAI_API_BASE",
               ["OPENAI_API_KEY"], "byok", "US Labs", "platform.openai.com"),
    "anthropic": ("Anthropic", ["claude"], "anthropic", UNSPECIFIED, UNSPECIFIED,
                  ["ANTHROPIC_API_KEY"], "byok", "US Labs", "console.anthropic.com"),
    "gemini": ("Google Gemini", ["google"], "gemini", UNSPECIFIED, UNSPECIFIED,
               ["GEMINI_API_KEY", "GOOGLE_API_KEY"], "byok", "US Labs", "aistudio.google.com"),
    "xai": ("xAI", [], "openai_compatible", "https://api.x.ai/v1", UNSPECIFIED,
            ["XAI_API_KEY"], "byok", "US Labs", "console.x.ai"),
    "perplexity": ("Perplexity", [], "openai_compatible", "https://api.perplexity.ai",
                   UNSPECIFIED, ["PERPLEXITY_API_KEY", "PPLX_API_KEY"], "byok", "US Labs",
                   "docs.perplexity.ai"),
    # -- BYOK: China Labs -------------------------------------------------------------------
    "deepseek": ("DeepSeek", [], "openai_compatible", "https://api.deepseek.com/v1",
                 UNSPECIFIED, ["DEEPSEEK_API_KEY"], "byok", "China Labs",
                 "platform.deepseek.com"),
    "moonshot": ("Moonshot (Kimi)", ["kimi"], "openai_compatible", "https://api.moonshot.ai/v1",
                 UNSPECIFIED, ["MOONSHOT_API_KEY", "KIMI_API_KEY"], "byok", "China Labs",
                 "platform.moonshot.cn"),
    "alibaba": ("Alibaba (DashScope / Qwen)", ["qwen", "dashscope"], "openai_compatible",
                "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", UNSPECIFIED,
                ["DASHSCOPE_API_KEY", "QWEN_API_KEY"], "byok", "China Labs",
                "dashscope.aliyun.com"),
    # -- BYOK: Model Hosts ------------------------------------------------------------------
    "openrouter": ("OpenRouter", [], "openai_compatible", "https://openrouter.ai/api/v1",
                   UNSPECIFIED, ["OPENROUTER_API_KEY"], "byok", "Model Hosts", "openrouter.ai"),
    "opencode": ("OpenCode Zen", ["opencode-zen"], "openai_compatible",
                 "https://api.opencode.ai/v1", UNSPECIFIED, ["OPENCODE_API_KEY"], "byok",
                 "Model Hosts", "opencode.ai"),
    "groq": ("Groq", [], "openai_compatible", "https://api.groq.com/openai/v1", UNSPECIFIED,
             ["GROQ_API_KEY"], "byok", "Model Hosts", "console.groq.com"),
    "together": ("Together AI", ["togetherai"], "openai_compatible",
                 "https://api.together.xyz/v1", UNSPECIFIED,
                 ["TOGETHER_API_KEY", "TOGETHERAI_API_KEY"], "byok", "Model Hosts",
                 "api.together.xyz"),
    "siliconflow": ("SiliconFlow", ["silicon-flow"], "openai_compatible",
                    "https://api.siliconflow.cn/v1", UNSPECIFIED,
                    ["SILICONFLOW_API_KEY", "SILICON_API_KEY"], "byok", "Model Hosts",
                    "siliconflow.cn"),
    "fireworks": ("Fireworks AI", [], "openai_compatible",
                  "https://api.fireworks.ai/inference/v1", UNSPECIFIED, ["FIREWORKS_API_KEY"],
                  "byok", "Model Hosts", "fireworks.ai"),
    "cerebras": ("Cerebras", [], "openai_compatible", "https://api.cerebras.ai/v1", UNSPECIFIED,
                 ["CEREBRAS_API_KEY"], "byok", "Model Hosts", "cloud.cerebras.ai"),
    # -- BYOK: Other Labs -------------------------------------------------------------------
    "mistral": ("Mistral AI", [], "openai_compatible", "https://api.mistral.ai/v1", UNSPECIFIED,
                ["MISTRAL_API_KEY"], "byok", "Other Labs", "console.mistral.ai"),
}  # fmt: skip

LOCAL_IDS = {"ollama", "lmstudio", "vllm", "sglang", "tgi", "mlx", "llama-cpp",
             "openai-compatible"}  # fmt: skip
# The spec's "Keyless Mode": OpenCode needs no key for its free models.
KEYLESS_BYOK_IDS = {"opencode"}

REGISTRY = ProviderRegistry.default()
ROWS = list(PROVIDERS)
ROW_IDS = [spec.provider_id for spec in ROWS]
# (name, canonical id) for every id and every alias of every row.
NAMES = [(name, spec.provider_id) for spec in ROWS for name in (spec.provider_id, *spec.aliases)]
NAME_IDS = [name for name, _ in NAMES]
ALIASES = [(alias, spec.provider_id) for spec in ROWS for alias in spec.aliases]


def by_id(provider_id: str) -> ProviderSpec:
    return next(spec for spec in ROWS if spec.provider_id == provider_id)


# -- the table against the spec ------------------------------------------------------------


def test_registry_has_exactly_the_spec_providers() -> None:
    assert sorted(ROW_IDS) == sorted(SPEC_ROWS)
    assert len(ROWS) == 24
    assert len(REGISTRY) == 24


@pytest.mark.parametrize("provider_id", sorted(SPEC_ROWS))
def test_row_matches_spec(provider_id: str) -> None:
    (name, aliases, adapter, url, url_env, key_envs, conn, category, docs_host) = SPEC_ROWS[
        provider_id
    ]
    spec = by_id(provider_id)
    assert spec.display_name == name
    assert spec.aliases == aliases
    assert spec.adapter_type == adapter
    assert spec.api_key_env_vars == key_envs  # order matters: first set variable wins
    assert spec.connection_type == conn
    assert spec.category == category
    if url is not UNSPECIFIED:
        assert spec.default_base_url == url
    if url_env is not UNSPECIFIED:
        assert spec.base_url_env_var == url_env
    if docs_host is not UNSPECIFIED:
        assert spec.docs_url is not None
        assert urlsplit(spec.docs_url).hostname == docs_host
    assert spec.requires_api_key is (conn == "byok" and provider_id not in KEYLESS_BYOK_IDS)


@pytest.mark.parametrize("provider_id", sorted(SPEC_ROWS))
def test_values_the_spec_leaves_open_are_well_formed(provider_id: str) -> None:
    spec = by_id(provider_id)
    assert spec.default_base_url is not None
    parts = urlsplit(spec.default_base_url)
    assert parts.scheme in ("http", "https") and parts.hostname
    assert not spec.default_base_url.endswith("/")
    if spec.connection_type == "byok":
        assert parts.scheme == "https", "cloud endpoints must use TLS"
    assert spec.base_url_env_var is not None
    assert re.fullmatch(r"[A-Z][A-Z0-9_]*", spec.base_url_env_var)
    for var in spec.api_key_env_vars:
        assert re.fullmatch(r"[A-Z][A-Z0-9_]*_KEY", var)
    if spec.docs_url is not None:
        assert urlsplit(spec.docs_url).scheme == "https"


def test_spec_example_models() -> None:
    assert by_id("openai").example_models == ["gpt-5", "gpt-4o", "gpt-4o-mini"]
    # the spec's `/connect ollama ...` examples
    assert by_id("ollama").example_models == ["qwen2.5-coder:7b", "llama3.2:3b", "gpt-oss:20b"]


# -- meta-tests over the whole table -------------------------------------------------------


def test_ids_and_aliases_are_unique_across_providers() -> None:
    lowered = [name.lower() for name in NAME_IDS]
    duplicates = sorted({n for n in lowered if lowered.count(n) > 1})
    assert duplicates == []


def test_names_are_clean() -> None:
    for name in NAME_IDS:
        assert name == name.strip().lower(), name
        assert "/" not in name and " " not in name, name


def test_registry_names_lists_every_id_and_alias_sorted() -> None:
    assert REGISTRY.names() == sorted(name.lower() for name in NAME_IDS)


@pytest.mark.parametrize("spec", ROWS, ids=ROW_IDS)
def test_row_invariants(spec: ProviderSpec) -> None:
    assert spec.adapter_type in ADAPTER_TYPES
    assert spec.connection_type in CONNECTION_TYPES
    assert spec.category in CATEGORIES
    if spec.connection_type == "local":
        assert spec.default_base_url
        assert spec.requires_api_key is False
        assert spec.api_key_env_vars == []
        assert spec.category == "Local"
    else:
        assert spec.category != "Local"
        if spec.requires_api_key:
            assert len(spec.api_key_env_vars) >= 1
    assert spec.is_local is (spec.connection_type == "local")
    assert spec.names == (spec.provider_id, *spec.aliases)


def test_sdk_adapters_belong_to_one_provider_each() -> None:
    # The spec's adapter table: the SDK adapters serve one provider, the rest are compatible.
    users: dict[str, list[str]] = {adapter: [] for adapter in ADAPTER_TYPES}
    for spec in ROWS:
        users[spec.adapter_type].append(spec.provider_id)
    assert users["ollama"] == ["ollama"]
    assert users["openai"] == ["openai"]
    assert users["anthropic"] == ["anthropic"]
    assert users["gemini"] == ["gemini"]
    assert len(users["openai_compatible"]) == 20


def test_constants_match_spec() -> None:
    assert set(ADAPTER_TYPES) == {"ollama", "openai", "anthropic", "gemini", "openai_compatible"}
    assert set(CONNECTION_TYPES) == {"byok", "local"}
    assert set(CATEGORIES) == {"Local", "US Labs", "China Labs", "Model Hosts", "Other Labs"}


# -- ProviderSpec dataclass ----------------------------------------------------------------

SPEC_FIELDS = [
    ("provider_id", "str"),
    ("display_name", "str"),
    ("adapter_type", "str"),
    ("aliases", "list[str]"),
    ("api_key_env_vars", "list[str]"),
    ("base_url_env_var", "str | None"),
    ("default_base_url", "str | None"),
    ("docs_url", "str | None"),
    ("requires_api_key", "bool"),
    ("connection_type", "str"),
    ("category", "str"),
    ("example_models", "list[str]"),
]


def _annotation(tp: object) -> str:
    """The annotation as source text, whether or not the module postpones annotations."""
    if isinstance(tp, str):
        return tp
    return tp.__name__ if isinstance(tp, type) else str(tp)


def test_provider_spec_fields_are_the_spec_fields_in_order() -> None:
    assert dataclasses.is_dataclass(ProviderSpec)
    fields = dataclasses.fields(ProviderSpec)
    spec_part = fields[: len(SPEC_FIELDS)]
    assert [(f.name, _annotation(f.type)) for f in spec_part] == SPEC_FIELDS
    # Quirk fields (not in spec) come after them and all have defaults, so the spec's own
    # constructor call still works unchanged.
    for extra in fields[len(SPEC_FIELDS) :]:
        has_default = extra.default is not dataclasses.MISSING
        assert has_default or extra.default_factory is not dataclasses.MISSING, extra.name


def test_provider_spec_is_frozen() -> None:
    assert ProviderSpec.__dataclass_params__.frozen  # type: ignore[attr-defined]
    spec = by_id("openai")
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.provider_id = "evil"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.default_base_url = "http://evil.example"  # type: ignore[misc]
    assert spec.provider_id == "openai"


# -- get -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "provider_id"), NAMES, ids=NAME_IDS)
def test_get_by_id_and_alias(name: str, provider_id: str) -> None:
    spec = REGISTRY.get(name)
    assert spec is not None
    assert spec.provider_id == provider_id
    assert spec is by_id(provider_id)


@pytest.mark.parametrize(("name", "provider_id"), NAMES, ids=NAME_IDS)
def test_get_ignores_case_and_surrounding_space(name: str, provider_id: str) -> None:
    mixed = "".join(c.upper() if i % 2 else c for i, c in enumerate(name))
    for variant in (name.upper(), mixed, name.title(), f"  {name}  ", f"\t{name.upper()}\n"):
        spec = REGISTRY.get(variant)
        assert spec is not None, variant
        assert spec.provider_id == provider_id, variant


@pytest.mark.parametrize("name", ["", "   ", None, "unknown", "/", "anthropic/", "open ai",
                                  "claude-3", "gpt-4o", "ollama/llama3.2", "anthro"])  # fmt: skip
def test_get_unknown_returns_none(name: str | None) -> None:
    assert REGISTRY.get(name) is None  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [123, 1.5, b"openai", ["openai"], object()])
def test_get_non_string_raises_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        REGISTRY.get(bad)  # type: ignore[arg-type]


# -- infer_provider_from_model -------------------------------------------------------------


@pytest.mark.parametrize(("name", "provider_id"), NAMES, ids=NAME_IDS)
def test_infer_from_prefixed_model(name: str, provider_id: str) -> None:
    for model in (f"{name}/some-model", f"{name.upper()}/Some-Model:7b", f"{name}/org/model"):
        spec = REGISTRY.infer_provider_from_model(model)
        assert spec is not None, model
        assert spec.provider_id == provider_id, model


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",  # no prefix at all
        "claude-sonnet-4-5-20250929",
        "qwen2.5-coder:7b",
        "meta-llama/llama-3.3-70b-instruct",  # a prefix, but not a provider
        "deepseek-ai/DeepSeek-R1",
        "mistralai/Mixtral-8x22B-Instruct-v0.1",
        "accounts/fireworks/models/deepseek-v3",
        "/",
        "/x",
        "//",
        "",
        "   ",
        None,
    ],
)
def test_infer_without_known_prefix_returns_none(model: str | None) -> None:
    assert REGISTRY.infer_provider_from_model(model) is None  # type: ignore[arg-type]


def test_infer_checks_aliases_case_insensitively() -> None:
    # Spec, "Provider Resolution" step 3: aliases are matched case-insensitively, so a
    # Hugging-Face-style `Qwen/...` name resolves to the provider whose alias is `qwen`.
    spec = REGISTRY.infer_provider_from_model("Qwen/Qwen2.5-Coder-32B-Instruct")
    assert spec is not None and spec.provider_id == "alibaba"
    spec = REGISTRY.infer_provider_from_model(" anthropic/claude-sonnet-4 ")
    assert spec is not None and spec.provider_id == "anthropic"


def test_infer_non_string_raises_type_error() -> None:
    with pytest.raises(TypeError):
        REGISTRY.infer_provider_from_model(42)  # type: ignore[arg-type]


# -- normalize_model_name ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "provider_id"), NAMES, ids=NAME_IDS)
def test_normalize_strips_own_id_or_alias(name: str, provider_id: str) -> None:
    spec = by_id(provider_id)
    for provider_name in spec.names:
        assert REGISTRY.normalize_model_name(provider_name, f"{name}/m-1") == "m-1"
        assert REGISTRY.normalize_model_name(provider_name, f"{name.upper()}/Model-X") == "Model-X"
    # only one prefix goes; the rest, further slashes included, is kept verbatim
    assert REGISTRY.normalize_model_name(provider_id, f"{name}/{name}/x") == f"{name}/x"
    assert REGISTRY.normalize_model_name(provider_id, f"{name}/Org/Model") == "Org/Model"


@pytest.mark.parametrize(
    ("provider", "model", "expected"),
    [
        ("openrouter", "openrouter/openai/gpt-4o-mini", "openai/gpt-4o-mini"),
        ("openrouter", "openai/gpt-4o-mini", "openai/gpt-4o-mini"),  # another provider: kept
        ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo",
         "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
        ("together", "Qwen/Qwen2.5-Coder-32B-Instruct", "Qwen/Qwen2.5-Coder-32B-Instruct"),
        ("anthropic", "anthropic/", "anthropic/"),  # nothing after the prefix: as is
        ("anthropic", "anthropic/  ", "anthropic/"),
        ("anthropic", "  anthropic/claude-x  ", "claude-x"),  # spaces trimmed
        (" Claude ", "CLAUDE/claude-x", "claude-x"),
        ("openai", "gpt/gpt-4o", "gpt-4o"),
        ("openai", "gpt-4o", "gpt-4o"),
        ("ollama", "llama3.2:3b", "llama3.2:3b"),
        ("ollama", "  llama3.2:3b ", "llama3.2:3b"),
        ("ollama", "local-ollama/gpt-oss:20b", "gpt-oss:20b"),
        ("nope", "nope/x", "nope/x"),  # unknown provider: nothing to strip
        ("openai", "/gpt-4o", "/gpt-4o"),
        ("openai", "", ""),
    ],
)  # fmt: skip
def test_normalize_cases(provider: str, model: str, expected: str) -> None:
    assert REGISTRY.normalize_model_name(provider, model) == expected


def test_normalize_non_string_model_raises_type_error() -> None:
    with pytest.raises(TypeError):
        REGISTRY.normalize_model_name("openai", None)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        REGISTRY.normalize_model_name(7, "gpt-4o")  # type: ignore[arg-type]


# -- list_providers / default / construction -----------------------------------------------


def test_list_providers_sorted_stable_and_a_fresh_list() -> None:
    first = REGISTRY.list_providers()
    assert [s.provider_id for s in first] == sorted(SPEC_ROWS)
    assert len(first) == 24
    first.clear()  # mutating the result must not change the registry
    assert REGISTRY.list_providers() == REGISTRY.list_providers()
    assert len(REGISTRY.list_providers()) == 24
    assert REGISTRY.list_providers(None) == REGISTRY.list_providers()


def test_list_providers_by_connection_type() -> None:
    local = REGISTRY.list_providers("local")
    byok = REGISTRY.list_providers("byok")
    assert [s.provider_id for s in local] == sorted(LOCAL_IDS)
    assert [s.provider_id for s in byok] == sorted(set(SPEC_ROWS) - LOCAL_IDS)
    assert len(local) == 8 and len(byok) == 16
    assert REGISTRY.list_providers("LOCAL") == local
    assert REGISTRY.list_providers(" Byok ") == byok


@pytest.mark.parametrize("bad", ["cloud", "", "locals", "all"])
def test_list_providers_unknown_type_raises(bad: str) -> None:
    with pytest.raises(ValueError, match="local"):
        REGISTRY.list_providers(bad)


def test_default_is_shared_and_complete() -> None:
    assert ProviderRegistry.default() is ProviderRegistry.default()
    assert "24" in repr(REGISTRY)


def test_constructor_rejects_a_name_used_twice() -> None:
    a = ProviderSpec(provider_id="a", display_name="A", adapter_type="openai_compatible",
                     aliases=["shared"])  # fmt: skip
    b = ProviderSpec(provider_id="b", display_name="B", adapter_type="openai_compatible",
                     aliases=["SHARED"])  # fmt: skip
    with pytest.raises(ValueError, match=r"(?i)shared"):
        ProviderRegistry([a, b])
    custom = ProviderRegistry([a])
    assert custom.get("Shared") is a
    assert custom.get("openai") is None
    assert len(custom) == 1


# -- no import circle with the catalog (issue 11.7) ----------------------------------------


def test_registry_imports_no_other_rlm_code_module() -> None:
    """The catalog (and everything else) may import the registry, never the reverse."""
    import ast
    from pathlib import Path

    import rlm_code.models.providers.registry as registry_module

    tree = ast.parse(Path(registry_module.__file__).read_text(encoding="utf-8"))
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    ]
    assert [name for name in imported if name and name.startswith("rlm_code")] == []


def test_cloud_example_models_are_in_the_curated_catalog() -> None:
    """The rows spell out their examples (so the registry needs no catalog import); they must
    stay the catalog's first entries where a provider has a catalog list."""
    from rlm_code.models.providers.model_catalog import SUPERQODE_MODEL_CATALOG

    for spec in ROWS:
        curated = SUPERQODE_MODEL_CATALOG.get(spec.provider_id)
        if curated is None or spec.provider_id == "openai":  # openai: the spec's own examples
            continue
        assert spec.example_models == curated[:3], spec.provider_id
