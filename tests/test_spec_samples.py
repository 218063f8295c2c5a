"""The spec's Python samples run as written.

The spec (`shared/spec/llm-providers.md`, beside the clone) is flattened text without code
fences, so each sample that needs no live provider is copied here verbatim and executed. Each
copy is also looked up in the spec text, so editing a sample in the spec breaks this test
until the copy is updated too.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import pytest

SPEC_PATH = Path(__file__).resolve().parents[1].parent / "shared/spec/llm-providers.md"

PROVIDER_SPEC_SAMPLE = """\
from rlm_code.models.providers.registry import ProviderSpec

spec = ProviderSpec(
    provider_id="openai",
    display_name="OpenAI",
    adapter_type="openai",
    aliases=["gpt"],
    api_key_env_vars=["OPENAI_API_KEY"],
    base_url_env_var="OPENAI_API_BASE",
    docs_url="https://platform.openai.com/",
    requires_api_key=True,
    connection_type="byok",
    category="US Labs",
    example_models=["gpt-5", "gpt-4o", "gpt-4o-mini"],
)
"""

REGISTRY_SAMPLE = """\
from rlm_code.models.providers.registry import ProviderRegistry

registry = ProviderRegistry.default()
"""

CATALOG_SAMPLE = """\
from rlm_code.models.providers.model_catalog import get_superqode_models

models = get_superqode_models("anthropic")
# ["claude-opus-4-6", "claude-opus-4-5-20251101", ...]
"""

CONNECTOR_SAMPLE = """\
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.core.config import ConfigManager

connector = LLMConnector(config_manager=ConfigManager())
"""

SAMPLES = {
    "provider_spec": PROVIDER_SPEC_SAMPLE,
    "registry": REGISTRY_SAMPLE,
    "catalog": CATALOG_SAMPLE,
    "connector": CONNECTOR_SAMPLE,
}


def run_sample(source: str) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "spec_sample"}
    exec(compile(source, "<spec sample>", "exec"), namespace)
    return namespace


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and config dir of our own, with no provider keys set."""
    from rlm_code.models.providers.registry import PROVIDERS

    for spec in PROVIDERS:
        for var in (*spec.api_key_env_vars, spec.base_url_env_var):
            if var:
                monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RLM_CODE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_sample_is_still_in_the_spec(name: str) -> None:
    if not SPEC_PATH.is_file():
        pytest.skip(f"spec not found at {SPEC_PATH} (CI copies shared/ beside the clone)")
    assert SAMPLES[name] in SPEC_PATH.read_text(encoding="utf-8"), (
        f"the spec's {name} sample changed; copy it here again"
    )


def test_provider_spec_sample(isolated: Path) -> None:
    from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec

    spec = run_sample(PROVIDER_SPEC_SAMPLE)["spec"]
    assert isinstance(spec, ProviderSpec)
    assert spec.provider_id == "openai"
    assert spec.requires_api_key is True
    assert spec.default_base_url is None  # the example leaves it out
    assert spec.names == ("openai", "gpt")
    registered = ProviderRegistry.default().get("gpt")
    assert registered is not None
    # The example is the registry's own openai entry, field for field.
    for name in ("provider_id", "display_name", "adapter_type", "aliases", "api_key_env_vars",
                 "base_url_env_var", "docs_url", "requires_api_key", "connection_type",
                 "category", "example_models"):  # fmt: skip
        assert getattr(spec, name) == getattr(registered, name), name


def test_registry_sample(isolated: Path) -> None:
    from rlm_code.models.providers.registry import ProviderRegistry

    registry = run_sample(REGISTRY_SAMPLE)["registry"]
    assert isinstance(registry, ProviderRegistry)
    assert len(registry.list_providers()) >= 20  # "all 20+ providers"
    claude = registry.get("claude")
    assert claude is not None and claude.provider_id == "anthropic"


def test_catalog_sample_matches_its_comment(isolated: Path) -> None:
    models = run_sample(CATALOG_SAMPLE)["models"]
    # The sample's comment shows the list's first entries; read them from the sample itself.
    comment = CATALOG_SAMPLE.strip().splitlines()[-1].lstrip("# ").replace(", ...", "")
    shown = ast.literal_eval(comment)
    assert shown == ["claude-opus-4-6", "claude-opus-4-5-20251101"]
    assert models[: len(shown)] == shown
    assert len(models) > len(shown)


def test_connector_sample(isolated: Path) -> None:
    try:
        importlib.import_module("rlm_code.models.llm_connector")
    except ModuleNotFoundError as exc:
        if exc.name != "rlm_code.models.llm_connector":
            raise
        pytest.skip("connector lands in issue 4")
    connector = run_sample(CONNECTOR_SAMPLE)["connector"]
    assert type(connector).__name__ == "LLMConnector"
