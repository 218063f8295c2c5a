"""Model profiles: the four sources (config, live, table, default), each field's source, the
probes of all five local server kinds against the local protocol server, and their laziness."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ConfigError
from rlm_code.models.connection import Connection
from rlm_code.models.profiles import ModelProfile, build_profile, table_profile
from rlm_code.models.providers.registry import ProviderRegistry
from rlm_code.models.resolve import resolve
from rlm_code.testing import LocalProtocolServer, run_local_server

MODELS = [
    "tiny-ctx2048",  # llama.cpp (the first added: the one /props describes)
    "coder-ctx32768:latest",  # Ollama
    "pix-vision-think:latest",  # Ollama, no ctx part: the default trained context
    "qwen-ctx32k",  # vLLM
    "lm-ctx8192-vision",  # LM Studio
]


@pytest.fixture(scope="module")
def server() -> Iterator[LocalProtocolServer]:
    with run_local_server(models=MODELS) as running:
        yield running


_OPEN: list[Connection] = []


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().retire()


def connect(
    name: str, base_url: str, config: ConfigManager | None = None, api_key: str | None = None
) -> Connection:
    """What `LLMConnector` does to open a connection, with the config handed over."""
    cm = config or ConfigManager()
    resolved = resolve(cm, ProviderRegistry.default(), name, None, api_key, base_url)
    adapter = resolved.adapter_class(resolved.endpoint)
    adapter.check()
    _OPEN.append(Connection(resolved, adapter, cm))
    return _OPEN[-1]


def paths(server: LocalProtocolServer) -> list[str]:
    return [r.path for r in server.requests]


# -- the five local kinds -----------------------------------------------------------------------


def test_ollama_profile_comes_from_api_show(server: LocalProtocolServer) -> None:
    conn = connect("ollama/coder-ctx32768", server.base_url)
    profile = conn.profile()
    assert profile.context_window == 32768
    assert profile.sources["context_window"] == "live"
    assert profile.supports_tools is True
    assert profile.supports_vision is False
    assert profile.supports_reasoning is False
    assert profile.stream_usage == "always"  # Ollama's done line always has the counts
    assert profile.sources["stream_usage"] == "default"
    other = connect("ollama/pix-vision-think", server.base_url).profile()
    assert other.context_window == 131072
    assert (other.supports_vision, other.supports_reasoning) == (True, True)


def test_llamacpp_profile_comes_from_props(server: LocalProtocolServer) -> None:
    profile = connect("llama-cpp/default", server.openai_base_url).profile()
    assert profile.context_window == 2048
    assert profile.sources["context_window"] == "live"
    assert profile.supports_vision is False
    assert profile.sources["supports_vision"] == "live"


def test_vllm_profile_comes_from_max_model_len(server: LocalProtocolServer) -> None:
    profile = connect("vllm/qwen-ctx32k", server.openai_base_url).profile()
    assert profile.context_window == 32 * 1024
    assert profile.sources["context_window"] == "live"
    assert profile.supports_tools is None  # vLLM's list says nothing else
    assert profile.sources["supports_tools"] == "default"


def test_lmstudio_profile_comes_from_api_v0_models(server: LocalProtocolServer) -> None:
    profile = connect("lmstudio/lm-ctx8192-vision", server.openai_base_url).profile()
    assert profile.context_window == 8192
    assert (profile.supports_vision, profile.supports_tools) == (True, True)
    assert {profile.sources[f] for f in ("supports_vision", "supports_tools")} == {"live"}


def test_sglang_profile_comes_from_get_model_info_and_max_model_len() -> None:
    with run_local_server(models=["sg-ctx16384-vl"]) as sglang:
        profile = connect("sglang/sg-ctx16384-vl", sglang.openai_base_url).profile()
        assert profile.context_window == 16384
        assert profile.supports_vision is True
        assert profile.sources["supports_vision"] == "live"
        assert "/get_model_info" in paths(sglang)


# -- lazy, once, and silent on failure ----------------------------------------------------------


def test_probe_is_lazy_and_runs_once_under_threads() -> None:
    with run_local_server(models=MODELS) as fresh:
        conn = connect("ollama/coder-ctx32768", fresh.base_url)
        assert "/api/show" not in paths(fresh)  # connecting does not probe
        seen: list[ModelProfile] = []
        threads = [threading.Thread(target=lambda: seen.append(conn.profile())) for _ in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(seen) == 16 and all(p is seen[0] for p in seen)
        assert paths(fresh).count("/api/show") == 1


def test_a_failed_probe_falls_back_silently() -> None:
    with run_local_server(models=MODELS) as fresh:
        conn = connect("vllm/qwen-ctx32k", fresh.openai_base_url)
        fresh.script_faults(["500"])
        profile = conn.profile()
        assert profile.context_window is None
        assert profile.sources["context_window"] == "default"


def test_a_stopped_server_falls_back_to_the_defaults() -> None:
    with run_local_server(models=MODELS) as fresh:
        conn = connect("llama-cpp/default", fresh.openai_base_url)
    profile = conn.profile()  # the server is gone: connection refused, no error
    assert profile.context_window is None
    assert profile.sources["context_window"] == "default"


# -- config overrides ---------------------------------------------------------------------------


def test_config_overrides_beat_the_live_probe(server: LocalProtocolServer, tmp_path: Path) -> None:
    (tmp_path / "rlm_config.yaml").write_text(
        "model_profiles:\n"
        '  "vllm/qwen-ctx32k": {context_window: 1000, supports_vision: true}\n'
        '  "ollama/coder-ctx32768": {stream_usage: none}\n'
    )
    cm = ConfigManager(project_root=tmp_path)
    profile = connect("vllm/qwen-ctx32k", server.openai_base_url, cm).profile()
    assert profile.context_window == 1000
    assert profile.sources["context_window"] == "config"
    assert profile.supports_vision is True
    # The untagged name a user writes matches the tag Ollama settles on.
    ollama = connect("ollama/coder-ctx32768", server.base_url, cm).profile()
    assert ollama.stream_usage == "none" and ollama.sources["stream_usage"] == "config"
    assert ollama.context_window == 32768  # the rest still comes live


def test_config_overrides_beat_the_table(tmp_path: Path) -> None:
    (tmp_path / "rlm_config.yaml").write_text(
        'model_profiles: {"openai/gpt-5": {accepts_temperature: true, max_output_tokens: 5}}\n'
    )
    cm = ConfigManager(project_root=tmp_path)
    spec = ProviderRegistry.default().get("openai")
    assert spec is not None
    profile = build_profile(spec, "gpt-5", cm.model_profile("openai/gpt-5"))
    assert (profile.accepts_temperature, profile.max_output_tokens) == (True, 5)
    assert profile.context_window == 400_000 and profile.sources["context_window"] == "table"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model_profiles: {"a/b": {context_window: 0}}', "whole number"),
        ('model_profiles: {"a/b": {stream_usage: sometimes}}', "stream_options, always or none"),
        ('model_profiles: {"a/b": {window: 5}}', "unknown setting"),
        ('model_profiles: {"a/b": {supports_tools: "yes"}}', "true or false"),
    ],
)
def test_bad_overrides_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "rlm_config.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=message):
        ConfigManager(project_root=tmp_path).model_profile("a/b")


# -- the cloud table ----------------------------------------------------------------------------


def _table(provider: str, model: str) -> ModelProfile:
    spec = ProviderRegistry.default().get(provider)
    assert spec is not None
    return build_profile(spec, model)


def test_cloud_table_by_longest_prefix() -> None:
    gpt5 = _table("openai", "gpt-5.2-codex")
    assert (gpt5.context_window, gpt5.max_output_tokens) == (400_000, 128_000)
    assert gpt5.accepts_temperature is False and gpt5.supports_reasoning is True
    assert gpt5.sources["accepts_temperature"] == "table"
    assert _table("openai", "gpt-5-chat-latest").accepts_temperature is True
    mini = _table("openai", "o1-mini")
    assert (mini.context_window, mini.supports_tools) == (128_000, False)
    dated = _table("openai", "gpt-4o-2024-11-20")
    assert (dated.context_window, dated.accepts_temperature) == (128_000, True)
    sonnet = _table("anthropic", "claude-sonnet-4-5-20250929")
    assert (sonnet.context_window, sonnet.max_output_tokens) == (200_000, 64_000)
    assert sonnet.stream_usage == "always"
    assert _table("gemini", "gemini-2.5-flash").context_window == 1_048_576
    assert _table("openrouter", "openai/gpt-4o").context_window == 128_000
    assert _table("openrouter", "google/gemini-2.0-flash").max_output_tokens == 8_192


def test_provider_rows_and_unknown_models() -> None:
    mistral = _table("mistral", "some-new-model")
    assert mistral.stream_usage == "always" and mistral.sources["stream_usage"] == "table"
    assert mistral.context_window is None
    unknown = _table("groq", "not-a-model")
    assert unknown.context_window is None and unknown.supports_tools is None
    assert unknown.stream_usage == "stream_options"
    assert set(unknown.sources.values()) == {"default"}
    assert table_profile("nobody", "x") == {}


def test_every_curated_cloud_model_of_the_big_three_has_a_context_window() -> None:
    from rlm_code.models.providers.model_catalog import SUPERQODE_MODEL_CATALOG

    for provider in ("openai", "anthropic", "gemini", "mistral", "moonshot", "groq"):
        for model in SUPERQODE_MODEL_CATALOG[provider]:
            assert _table(provider, model).context_window, (provider, model)


def test_profile_as_dict_and_capabilities() -> None:
    profile = _table("openai", "gpt-4o")
    data = profile.as_dict()
    assert data["context_window"] == 128_000
    assert data["sources"]["context_window"] == "table"
    assert profile.capabilities() == ["tools", "vision", "json_schema"]


# -- shown to the user: `rlm-code models PROVIDER --live` and the shell's /status ---------------


def test_models_live_shows_context_and_capabilities(
    server: LocalProtocolServer, tmp_path: Path
) -> None:
    import json

    from cli_process import run_cli

    env = {
        "OLLAMA_HOST": server.base_url,
        "OPENAI_API_KEY": "sk-test-live",
        "OPENAI_API_BASE": server.openai_base_url,
    }
    result = run_cli("models", "ollama", "--live", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert rows["coder-ctx32768:latest"].split()[1:] == ["32,768", "tools,", "json_schema"]
    assert rows["pix-vision-think:latest"].split()[1] == "131,072"
    assert "vision, reasoning" in rows["pix-vision-think:latest"]
    result = run_cli("models", "ollama", "--live", "--json", env=env, cwd=tmp_path)
    data = json.loads(result.stdout)
    coder = data["profiles"]["coder-ctx32768:latest"]
    assert (coder["context_window"], coder["sources"]["context_window"]) == (32768, "live")
    assert "coder-ctx32768:latest" in data["models"]
    # A cloud provider: the table (the server lists gpt-4o-mini among its models).
    result = run_cli("models", "openai", "--live", "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    mini = json.loads(result.stdout)["profiles"]["gpt-4o-mini"]
    assert (mini["context_window"], mini["sources"]["context_window"]) == (128_000, "table")


class _Shell:
    """Just enough of the shell for `/status`."""

    def __init__(self, connector: object) -> None:
        import io

        self._connector = connector
        self.out = io.StringIO()
        self.history: list[dict[str, str]] = []
        self.system: str | None = None

    def connector(self) -> object:
        return self._connector

    def say(self, text: str, dim: bool = False) -> None:
        self.out.write(text + "\n")


def test_status_shows_the_profile(server: LocalProtocolServer, tmp_path: Path) -> None:
    from rlm_code.cli.shell.commands import cmd_status
    from rlm_code.models.llm_connector import LLMConnector

    with LLMConnector(config_manager=ConfigManager(project_root=tmp_path)) as connector:
        connector.connect_to_model("ollama/pix-vision-think", base_url=server.base_url)
        shell = _Shell(connector)
        cmd_status(shell, "")  # type: ignore[arg-type]
    rows = {line.split()[0]: line for line in shell.out.getvalue().splitlines() if line.strip()}
    assert rows["context"].split()[1:] == ["131,072", "tokens", "(live)"]
    assert rows["supports"].split()[1:] == ["tools,", "vision,", "reasoning,", "json_schema"]
