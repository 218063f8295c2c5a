"""Provider listings and OpenCode keyless mode, through the connector's public methods."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.providers.model_catalog import get_superqode_models
from rlm_code.models.providers.opencode import is_free_opencode_model
from rlm_code.testing import echo_reply

FAKE_OPENCODE_MODELS = textwrap.dedent(
    """\
    #!{python}
    import os, sys
    with open(os.environ["FAKE_OPENCODE_LOG"], "a") as log:
        log.write(" ".join(sys.argv[1:]) + "\\n")
    if sys.argv[1:] == ["models"]:
        if os.environ.get("FAKE_OPENCODE_FAIL"):
            sys.exit(3)
        print("opencode/big-pickle")
        print("opencode/claude-sonnet-4-5")
        print("opencode/qwen3-coder-free")
        print("anthropic/claude-opus-4-1")
        print("")
    """
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def fake_opencode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "opencode"
    exe.write_text(FAKE_OPENCODE_MODELS.format(python=sys.executable))
    exe.chmod(0o755)
    log = tmp_path / "opencode.log"
    monkeypatch.setenv("FAKE_OPENCODE_LOG", str(log))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return log


def test_opencode_cli_models_first_free_only_without_key(project, fake_opencode, monkeypatch):
    monkeypatch.delenv("OPENCODE_API_KEY", raising=False)
    connector = LLMConnector(ConfigManager(project_root=project))
    models = connector.list_provider_example_models("opencode", limit=50)
    assert models[:2] == ["big-pickle", "qwen3-coder-free"]
    assert "claude-sonnet-4-5" not in models and "claude-opus-4-1" not in models
    assert all(is_free_opencode_model(m) for m in models)
    curated_free = [m for m in get_superqode_models("opencode") if is_free_opencode_model(m)]
    assert set(curated_free) <= set(models)


def test_opencode_with_key_lists_everything_and_caches_the_cli(project, fake_opencode, monkeypatch):
    monkeypatch.setenv("OPENCODE_API_KEY", "sk-test-opencode-key")
    connector = LLMConnector(ConfigManager(project_root=project))
    first = connector.list_provider_example_models("opencode", limit=50)
    assert first[:3] == ["big-pickle", "claude-sonnet-4-5", "qwen3-coder-free"]
    assert "grok-code" in first  # the curated list follows the CLI's
    second = connector.list_provider_example_models("opencode-zen", limit=2)
    assert second == first[:2]
    assert fake_opencode.read_text().splitlines() == ["models"]  # one run within 30 s


def test_failing_or_missing_opencode_cli_falls_back_to_the_catalog(
    project, fake_opencode, monkeypatch, tmp_path
):
    monkeypatch.setenv("OPENCODE_API_KEY", "sk-test-opencode-key")
    monkeypatch.setenv("FAKE_OPENCODE_FAIL", "1")
    connector = LLMConnector(ConfigManager(project_root=project))
    assert connector.list_provider_example_models("opencode", limit=50) == (
        get_superqode_models("opencode")
    )
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    fresh = LLMConnector(ConfigManager(project_root=project))
    assert (
        fresh.list_provider_example_models("opencode", limit=3)
        == (get_superqode_models("opencode")[:3])
    )


def test_opencode_keyless_http_sends_no_authorization(project, fresh_server, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no opencode CLI: HTTP route
    monkeypatch.setenv("OPENCODE_BASE_URL", fresh_server.openai_base_url)
    monkeypatch.delenv("OPENCODE_API_KEY", raising=False)
    with LLMConnector(ConfigManager(project_root=project)) as connector:
        connector.connect_to_model("opencode/big-pickle")
        assert connector.get_connection_status()["route"] == "http"
        assert connector.generate_response("free ride") == echo_reply("free ride")
        sent = fresh_server.requests[-1]
        assert "authorization" not in sent.headers
        monkeypatch.setenv("OPENCODE_API_KEY", "sk-test-opencode-paid")
        connector.connect_to_model("opencode/claude-sonnet-4-5")
        connector.generate_response("paid ride")
        assert fresh_server.requests[-1].headers["authorization"] == "Bearer sk-test-opencode-paid"


def test_supported_providers_report_configuration_never_keys(project, monkeypatch):
    monkeypatch.setenv("MISTRAL_API_KEY", "sk-test-mistral-secret")
    connector = LLMConnector(ConfigManager(project_root=project))
    connector.config_manager.key_store.set("deepseek", "sk-test-deepseek-secret")
    rows = {row["id"]: row for row in connector.get_supported_providers()}
    assert len(rows) == 24
    assert rows["ollama"]["configured"] is True and rows["ollama"]["has_api_key"] is False
    assert rows["mistral"]["configured"] is True and rows["mistral"]["has_api_key"] is True
    assert rows["deepseek"]["configured"] is True  # from the key store
    assert rows["groq"]["configured"] is False
    assert rows["opencode"]["configured"] is True  # keyless mode
    assert rows["gemini"]["api_key_env_vars"] == ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
    text = json.dumps(list(rows.values()))
    assert "secret" not in text


@pytest.mark.parametrize("limit", [1, 8, 100])
def test_example_models_curated_first_then_examples(project, limit):
    connector = LLMConnector(ConfigManager(project_root=project))
    models = connector.list_provider_example_models("gpt", limit=limit)
    expected = [*get_superqode_models("openai"), "gpt-5"]  # then the spec row's new examples
    assert models == expected[:limit]


def test_example_models_bad_arguments(project):
    from rlm_code.core.exceptions import InvalidInputError

    connector = LLMConnector(ConfigManager(project_root=project))
    # An unknown provider has no examples: `[]`, as `get_superqode_models` and the original did.
    assert connector.list_provider_example_models("nope") == []
    with pytest.raises(InvalidInputError):
        connector.list_provider_example_models("openai", limit=0)
