"""Named routes from the config files: the schema, the project-file trust rule, and the ways in
(`route(NAME)`, `connect_to_model(NAME)`, `generate_response_with_model(..., NAME)`,
`rlm-code ask --model NAME`, `/connect NAME`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_cli

from rlm_code.cli.shell.connect import ConnectRequest, run_picker
from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ConfigError
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.testing import LocalProtocolServer

FAST = "retries: {max_attempts: 1, backoff_base: 0.01, backoff_max: 0.5}\n"


def _route_file(url: str, name: str = "sub") -> str:
    return (
        FAST + "routes:\n"
        f"  {name}:\n"
        "    model: vllm/fault-500\n"
        f"    base_url: {url}\n"
        f"    fallbacks: [{{model: vllm/test-model, base_url: '{url}'}}]\n"
        "    max_concurrency: 4\n"
        "    requests_per_minute: 6000\n"
    )


def _connector(tmp_path: Path, text: str) -> LLMConnector:
    (tmp_path / "rlm_config.yaml").write_text(text)
    return LLMConnector(config_manager=ConfigManager(project_root=tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("routes: {sub: {model: 'bad model'}}", "spaces"),
        ("routes: {sub: {model: nope/x}}", "unknown provider"),
        ("routes: {sub: {model: vllm/x, fallbacks: vllm/y}}", "expected a list"),
        ("routes: {sub: {model: vllm/x, fallbacks: [{model: vllm/y, url: z}]}}", "fallback"),
        ("routes: {sub: {model: vllm/x, max_concurrency: 0}}", "at least 1"),
        ("routes: {sub: {model: vllm/x, requests_per_minute: -5}}", "positive"),
        ("routes: {sub: {model: vllm/x, colour: red}}", "unknown setting"),
        ("routes: {sub: {model: vllm/x, base_url: 'ftp://h'}}", "http"),
        ("route_cooldown: {failures: 0}", "at least 1"),
    ],
)
def test_bad_route_settings_are_refused_with_the_file_and_line(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "rlm_config.yaml").write_text(text + "\n")
    with pytest.raises(ConfigError, match=message) as caught:
        ConfigManager(project_root=tmp_path).route_settings("sub")
    assert "rlm_config.yaml" in str(caught.value)


def test_a_named_route_has_its_fallbacks_and_limits(
    tmp_path: Path, local_server: LocalProtocolServer
) -> None:
    connector = _connector(tmp_path, _route_file(local_server.openai_base_url))
    route = connector.route("sub")
    assert route.name == "sub" and [t.label for t in route.targets] == [
        "vllm/fault-500",
        "vllm/test-model",
    ]
    assert route.limits is not None and route.limits.gate is not None
    assert route.limits.gate.size == 4
    assert route.generate_response("hi") == "Echo: hi"
    assert connector.generate_response_with_model("again", "sub") == "Echo: again"
    connector.close()


def test_connect_to_model_with_a_route_name_uses_the_route(
    tmp_path: Path, local_server: LocalProtocolServer
) -> None:
    connector = _connector(tmp_path, _route_file(local_server.openai_base_url))
    assert connector.connect_to_model("sub") is True
    status = connector.get_connection_status()
    assert status["route_name"] == "sub" and status["fallbacks"] == ["vllm/test-model"]
    assert connector.generate_response("a") == "Echo: a"
    assert "".join(connector.stream_response("b")) == "Echo: b"
    response = connector.complete("c")
    assert (response.model, response.text) == ("test-model", "Echo: c")
    # Switching away leaves the route's pooled connection to the route.
    connector.connect_to_model("vllm/test-model", base_url=local_server.openai_base_url)
    assert connector.get_connection_status().get("route_name") is None
    assert connector.route("sub").generate_response("d") == "Echo: d"
    connector.close()


def test_a_project_route_may_not_move_a_cloud_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "routes: {cloud: {model: openai/gpt-4o-mini, base_url: 'https://evil.example/v1'}}\n"
    (tmp_path / "rlm_config.yaml").write_text(text)
    environ = {**os.environ, "OPENAI_API_KEY": "sk-test-project-route-0123456789"}
    connector = LLMConnector(config_manager=ConfigManager(tmp_path, environ=environ))
    route = connector.route("cloud")
    assert route.status()["base_url"] == "https://api.openai.com/v1"
    assert "may not redirect a cloud provider's key" in capsys.readouterr().err
    connector.close()
    # The same route in the user's own file is honoured.
    user_dir = tmp_path / "user"
    user_dir.mkdir()
    (user_dir / "config.yaml").write_text(text)
    (tmp_path / "rlm_config.yaml").unlink()
    environ["RLM_CODE_CONFIG_DIR"] = str(user_dir)
    connector = LLMConnector(config_manager=ConfigManager(tmp_path, environ=environ))
    assert connector.route("cloud").status()["base_url"] == "https://evil.example/v1"
    connector.close()


def test_ask_model_accepts_a_route_name(tmp_path: Path, local_server: LocalProtocolServer) -> None:
    (tmp_path / "rlm_config.yaml").write_text(_route_file(local_server.openai_base_url))
    result = run_cli("ask", "--model", "sub", "hello route", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Echo: hello route"


class _Host:
    def __init__(self, connector: LLMConnector) -> None:
        self._connector = connector
        self.requests: list[ConnectRequest] = []
        self.term: Any = None

    def connector(self) -> LLMConnector:
        return self._connector

    def info(self, text: str) -> None:
        pass

    def connect(self, request: ConnectRequest) -> None:
        self.requests.append(request)
        self._connector.connect_to_model(request.model or "")

    def read_name(self, prompt: str, choices: Any) -> str | None:
        return None

    def cached_models(self, provider_id: str) -> list[str]:
        return []


def test_slash_connect_accepts_a_route_name(
    tmp_path: Path, local_server: LocalProtocolServer
) -> None:
    connector = _connector(tmp_path, _route_file(local_server.openai_base_url))
    host = _Host(connector)
    run_picker(host, "sub")  # `/connect sub` parses as a provider name without a model
    assert host.requests == [ConnectRequest("sub")]
    assert connector.get_connection_status()["route_name"] == "sub"
    assert connector.generate_response("x") == "Echo: x"
    connector.close()


def test_readme_routes_snippet_runs_as_written(tmp_path: Path) -> None:
    """The README's "Routes" sample prints what its comments say."""
    import re
    import subprocess
    import sys

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Routes: many models at once") :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None
    snippet = found.group(1)
    env = {**os.environ, "RLM_CODE_CONFIG_DIR": str(tmp_path / "config")}
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    expected = [
        line.split("# ")[-1].strip()
        for line in snippet.splitlines()
        if "print(" in line and "# " in line
    ]
    assert result.stdout.splitlines() == expected
