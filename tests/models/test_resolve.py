"""The one resolver: provider, model, key, base URL and adapter, with no network I/O.

Every `ConfigManager` gets an explicit environment and temp directories, so the real home,
environment and working directory are never read.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import (
    InvalidAPIKeyFormatError,
    InvalidInputError,
    MissingAPIKeyError,
    ModelError,
    ProviderNotFoundError,
)
from rlm_code.core.keystore import KeyStore
from rlm_code.core.redact import MASK, redact
from rlm_code.models.adapters.base import Adapter, load_adapter
from rlm_code.models.providers import opencode
from rlm_code.models.providers.model_catalog import get_superqode_models
from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec
from rlm_code.models.resolve import Resolved, curated_models, key_present, read_timeout, resolve

REGISTRY = ProviderRegistry.default()
OPENAI_KEY = "sk-test-resolve0123456789abcdef"


def spec(provider_id: str) -> ProviderSpec:
    found = REGISTRY.get(provider_id)
    assert found is not None
    return found


@pytest.fixture
def config(tmp_path: Path) -> ConfigManager:
    project = tmp_path / "project"
    project.mkdir()
    return ConfigManager(project, environ={"RLM_CODE_CONFIG_DIR": str(tmp_path / "user")})


def with_env(config: ConfigManager, **env: str) -> ConfigManager:
    return ConfigManager(config.project_root, environ={**config.environ, **env})


# -- the happy paths -----------------------------------------------------------------------


def test_resolved_shape_for_a_cloud_provider(config: ConfigManager) -> None:
    resolved = resolve(config, REGISTRY, "openai/gpt-4o", api_key=OPENAI_KEY)
    assert isinstance(resolved, Resolved)
    endpoint = resolved.endpoint
    assert (endpoint.provider_id, endpoint.model) == ("openai", "gpt-4o")
    assert endpoint.base_url == "https://api.openai.com/v1"
    assert endpoint.api_key == OPENAI_KEY
    assert (resolved.key_source, resolved.base_url_source) == ("argument", "default")
    assert resolved.adapter_class is load_adapter("openai")
    assert resolved.route == resolved.adapter_class.route == "sdk"
    assert OPENAI_KEY not in repr(resolved)


def test_model_type_alias_and_prefix_normalisation(config: ConfigManager) -> None:
    resolved = resolve(config, REGISTRY, "OpenRouter/openai/gpt-4o-mini", api_key=OPENAI_KEY)
    assert (resolved.endpoint.provider_id, resolved.endpoint.model) == (
        "openrouter",
        "openai/gpt-4o-mini",
    )
    by_type = resolve(config, REGISTRY, "llama3.2", model_type="local-ollama")
    assert (by_type.endpoint.provider_id, by_type.endpoint.model) == ("ollama", "llama3.2")


def test_listing_without_a_model_resolves(config: ConfigManager) -> None:
    resolved = resolve(config, REGISTRY, "vllm/list")
    assert resolved.endpoint.model == "list"
    assert resolved.endpoint.base_url == "http://localhost:8000/v1"


def test_key_order_argument_env_then_store(config: ConfigManager) -> None:
    env_key, stored_key = "sk-test-from-env-0123456789", "sk-test-from-store-0123456789"
    KeyStore(config.user_config_dir / "keys.json").set("openai", stored_key)
    assert resolve(config, REGISTRY, "openai/gpt-4o").key_source == "key store"
    cfg = with_env(config, OPENAI_API_KEY=env_key)
    resolved = resolve(cfg, REGISTRY, "openai/gpt-4o")
    assert (resolved.endpoint.api_key, resolved.key_source) == (env_key, "env:OPENAI_API_KEY")
    assert resolve(cfg, REGISTRY, "openai/gpt-4o", api_key=OPENAI_KEY).key_source == "argument"


def test_base_url_sources(config: ConfigManager) -> None:
    user_file = config.user_config_file
    user_file.parent.mkdir(parents=True)
    user_file.write_text("providers:\n  xai:\n    base_url: https://gw.example/v1\n")
    key = {"XAI_API_KEY": "xai-test-0123456789abcdefghij"}
    cfg = with_env(config, **key)
    assert resolve(cfg, REGISTRY, "xai/grok-3").base_url_source == str(user_file)
    env = with_env(config, **key, XAI_BASE_URL="https://env.example/v1/")
    resolved = resolve(env, REGISTRY, "xai/grok-3")
    assert (resolved.endpoint.base_url, resolved.base_url_source) == (
        "https://env.example/v1",
        "$XAI_BASE_URL",
    )
    arg = resolve(env, REGISTRY, "xai/grok-3", base_url="https://arg.example/v1")
    assert arg.base_url_source == "argument"


def test_host_forms_and_read_timeout_come_from_the_row(config: ConfigManager) -> None:
    cfg = with_env(config, OLLAMA_HOST="0.0.0.0:9000", OLLAMA_HTTP_TIMEOUT="300")
    resolved = resolve(cfg, REGISTRY, "ollama/llama3.2")
    assert resolved.endpoint.base_url == "http://127.0.0.1:9000"
    assert resolved.endpoint.timeouts.read == 300.0
    assert read_timeout(cfg, spec("vllm")) == 120.0, "another row ignores Ollama's variable"
    assert read_timeout(with_env(config, RLM_CODE_READ_TIMEOUT="9"), spec("ollama")) == 9.0


# -- key formats (issue 11 compat, 10.7) ---------------------------------------------------


@pytest.mark.parametrize("key", ["AIzaTestResolve0123456789", "AQ.TestResolve0123456789abc"])
def test_gemini_accepts_aiza_and_aq_keys(config: ConfigManager, key: str) -> None:
    resolved = resolve(config, REGISTRY, "gemini/gemini-2.5-pro", api_key=key)
    assert resolved.endpoint.api_key == key


@pytest.mark.parametrize(
    ("model", "key", "words"),
    [
        ("gemini/gemini-2.5-pro", "sk-test-not-gemini-0123456789", "'AIza' or 'AQ.'"),
        ("openai/gpt-4o", "sk-ant-test-resolve0123456789", "Anthropic"),
        ("anthropic/claude-opus-4-6", "sk-test-resolve0123456789", "'sk-ant-'"),
    ],
)
def test_key_prefixes_and_lookalikes(
    config: ConfigManager, model: str, key: str, words: str
) -> None:
    with pytest.raises(InvalidAPIKeyFormatError) as info:
        resolve(config, REGISTRY, model, api_key=key)
    assert words in str(info.value)
    assert key not in str(info.value)


@pytest.mark.parametrize("key", ["sk-test-résumé-0123456789", "sk-test-0123456789\u2013abc"])
def test_non_ascii_key_is_a_typed_one_line_error(config: ConfigManager, key: str) -> None:
    with pytest.raises(InvalidAPIKeyFormatError, match="non-ASCII") as info:
        resolve(config, REGISTRY, "openai/gpt-4o", api_key=key)
    assert "\n" not in str(info.value)


def test_missing_key_and_unknown_provider(config: ConfigManager) -> None:
    with pytest.raises(MissingAPIKeyError, match="ANTHROPIC_API_KEY"):
        resolve(config, REGISTRY, "anthropic/claude-opus-4-6")
    with pytest.raises(ProviderNotFoundError, match="nope"):
        resolve(config, REGISTRY, "nope/model")
    with pytest.raises(ProviderNotFoundError, match="cannot tell"):
        resolve(config, REGISTRY, "gpt-4o")
    with pytest.raises(InvalidInputError):
        resolve(config, REGISTRY, "vllm/a b")
    with pytest.raises(InvalidInputError):
        resolve(config, REGISTRY, 42)


# -- malformed URLs and URL credentials (10.6, 10.7) ---------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://[bad",
        "http://host:99999",
        "http://host:port/v1",
        "http://gpu box:8000/v1",
        "http://host/v1\x01x",
        "http://hôst.example/v1",
        "ftp://host/v1",
        "http://",
        "localhost:8000",
    ],
)
def test_malformed_base_url_is_invalid_input(config: ConfigManager, url: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        resolve(config, REGISTRY, "vllm/model", base_url=url)
    assert "\n" not in str(info.value).strip()


@pytest.mark.parametrize("where", ["argument", "env"])
def test_url_userinfo_plus_a_key_is_a_typed_error(config: ConfigManager, where: str) -> None:
    url = "http://alice:pw-resolve-4711@127.0.0.1:9/v1"
    cfg = with_env(config, OPENAI_API_BASE=url) if where == "env" else config
    with pytest.raises(InvalidInputError, match="user:password@") as info:
        resolve(
            cfg,
            REGISTRY,
            "openai/gpt-4o",
            api_key=OPENAI_KEY,
            base_url=url if where == "argument" else None,
        )
    assert "pw-resolve-4711" not in str(info.value)


def test_url_credentials_are_registered_secrets(config: ConfigManager) -> None:
    url = "http://bob:pw-resolve-0815@127.0.0.1:8000/v1"
    resolved = resolve(config, REGISTRY, "vllm/model", base_url=url)
    assert resolved.endpoint.base_url == url.rstrip("/")
    shown = redact(f"connected to {resolved.endpoint.base_url}; password pw-resolve-0815")
    assert "pw-resolve-0815" not in shown
    assert MASK in shown


def test_a_query_credential_is_refused_and_never_shown(config: ConfigManager) -> None:
    # Request paths are appended to a base URL, so a query string cannot stay in one; the
    # refusal must not show the token it carried, anywhere it is later printed either.
    url = "http://127.0.0.1:8000/v1?token=tok-resolve-0815x"
    with pytest.raises(InvalidInputError, match="query string") as info:
        resolve(config, REGISTRY, "vllm/model", base_url=url)
    assert "tok-resolve-0815x" not in str(info.value)
    assert "tok-resolve-0815x" not in redact(f"later: {url}")


def test_bad_url_error_hides_its_password(config: ConfigManager) -> None:
    with pytest.raises(InvalidInputError) as info:
        resolve(config, REGISTRY, "vllm/model", base_url="http://u:pw-hidden-2207@[bad/v1")
    assert "pw-hidden-2207" not in str(info.value)


# -- curated models and key presence (11.3) ------------------------------------------------


def test_curated_models_catalog_then_examples(config: ConfigManager) -> None:
    models = curated_models(config, spec("openai"))
    catalog = get_superqode_models("openai")
    assert models[: len(catalog)] == catalog
    assert models[len(catalog) :] == [m for m in spec("openai").example_models if m not in catalog]
    assert len(models) == len(set(models))
    assert curated_models(config, spec("ollama")) == spec("ollama").example_models


def test_key_present_env_store_and_broken_store(config: ConfigManager) -> None:
    groq = spec("groq")
    assert key_present(config, groq) is False
    assert key_present(with_env(config, GROQ_API_KEY="gsk_test0123456789abcdef"), groq)
    store = config.user_config_dir / "keys.json"
    KeyStore(store).set("groq", "gsk_test0123456789abcdef")
    assert key_present(config, groq)
    store.write_text("{not json")
    assert key_present(config, groq) is False


@pytest.fixture
def fake_opencode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "opencode"
    exe.write_text(
        f"#!{sys.executable}\nimport sys\n"
        "if sys.argv[1:] == ['models']:\n"
        "    print('opencode/big-pickle'); print('opencode/claude-sonnet-4-5')\n"
        "    print('opencode/qwen3-coder-free'); print('anthropic/claude-opus-4-1')\n"
    )
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return exe


def test_opencode_curated_models_live_first_and_free_only_without_key(
    config: ConfigManager, fake_opencode: Path
) -> None:
    oc = spec("opencode")
    keyless = curated_models(config, oc)
    assert keyless[:2] == ["big-pickle", "qwen3-coder-free"]
    assert all(opencode.is_free_opencode_model(m) for m in keyless)
    keyed = curated_models(with_env(config, OPENCODE_API_KEY="sk-test-opencode-0123456789"), oc)
    assert keyed[:3] == ["big-pickle", "claude-sonnet-4-5", "qwen3-coder-free"]
    assert "anthropic/claude-opus-4-1" not in keyed and "claude-opus-4-1" not in keyed


def test_opencode_routes(config: ConfigManager, fake_opencode: Path) -> None:
    cli = resolve(config, REGISTRY, "opencode/big-pickle")
    assert cli.route == "cli" and cli.adapter_class.__name__ == "OpenCodeCLIAdapter"
    keyed = with_env(config, OPENCODE_API_KEY="sk-test-opencode-0123456789")
    assert resolve(keyed, REGISTRY, "opencode/big-pickle").route == "http"
    given = resolve(config, REGISTRY, "opencode/big-pickle", base_url="http://127.0.0.1:9/v1")
    assert given.route == "http"


def test_opencode_without_cli_goes_over_http(
    config: ConfigManager, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    resolved = resolve(config, REGISTRY, "opencode/big-pickle")
    assert resolved.route == "http" and resolved.endpoint.api_key is None


def test_free_rule_is_importable_from_the_provider_module() -> None:
    from rlm_code.models.providers.opencode import is_free_opencode_model

    assert is_free_opencode_model("glm-4.7-free") and is_free_opencode_model("opencode/big-pickle")
    assert not is_free_opencode_model("claude-sonnet-4-5")


def test_every_resolver_error_is_a_model_error(config: ConfigManager) -> None:
    calls: tuple[Callable[[], object], ...] = (
        lambda: resolve(config, REGISTRY, "openai/gpt-4o", api_key="sk-t\u00e9st-0123456789"),
        lambda: resolve(config, REGISTRY, "vllm/m", base_url="http://[::1"),
        lambda: resolve(config, REGISTRY, "vllm/m", base_url="http://h:65536"),
        lambda: resolve(with_env(config, OLLAMA_HOST="http://[x"), REGISTRY, "ollama/m"),
    )
    for call in calls:
        with pytest.raises(ModelError):
            call()


def test_adapter_classes_are_adapters(config: ConfigManager) -> None:
    for provider_id in ("ollama", "vllm"):
        assert issubclass(resolve(config, REGISTRY, f"{provider_id}/m").adapter_class, Adapter)
