"""With nothing configured, `ask` and the shell answer from a running local server's model.

The real CLI runs in a subprocess against the local protocol server posing as Ollama (through
`OLLAMA_HOST`: it answers `/api/tags`, `/api/ps`, `/api/chat`) or as an OpenAI-compatible
server; the reply must come from it (its recorded chat request) and the stderr note must name
it. With nothing running, the built-in echo server answers as before. The choice itself
(Ollama's `/api/ps` and `/api/tags` times, LM Studio's `state`, the preference between
servers, embedding models skipped) is checked on small stub servers serving the documented
JSON, since the protocol server has no loaded-model state to report. The pick is bounded by
its own timeout setting, which is asserted (never wall-clock time).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cli_process import run_cli
from shell_helpers import FRESH_LABEL, Session, shell_env

from rlm_code.cli import first_model, session
from rlm_code.cli.first_model import (
    DISCOVERY_TIMEOUT_S,
    FirstModel,
    first_model_note,
    nothing_listens,
    pick_first_model,
)
from rlm_code.cli.shell.startup import first_link
from rlm_code.core.config import ConfigManager
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.providers import local_discovery, local_probe
from rlm_code.models.providers.registry import ProviderRegistry
from rlm_code.testing import LocalProtocolServer, echo_reply, run_local_server

pytestmark = pytest.mark.timeout(60)

PROMPT = "Why is the sky blue?"
LOCAL_URL_VARS = tuple(
    spec.base_url_env_var
    for spec in ProviderRegistry.default().list_providers("local")
    if spec.base_url_env_var
)


# -- helpers -------------------------------------------------------------------------------------


@pytest.fixture
def dead_url() -> Iterator[str]:
    """An http URL on a loopback port that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()


def only(dead: str, **running: str) -> dict[str, str]:
    """Every local row's URL env var at the dead port, except the servers in `running`: a
    machine where exactly those run, whatever else listens on this one's default ports."""
    env = {var: (dead if var == "OLLAMA_HOST" else dead + "/v1") for var in LOCAL_URL_VARS}
    env.update(running)
    return env


def chats(server: LocalProtocolServer, path: str) -> list[dict[str, Any]]:
    return [r.json for r in server.requests if r.path == path and isinstance(r.json, dict)]


class Stub:
    """A loopback HTTP server answering GETs with fixed JSON documents (404 for the rest)."""

    def __init__(self, documents: dict[str, Any]) -> None:
        docs = documents

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                doc = docs.get(self.path)
                body = json.dumps(doc if doc is not None else {"error": "not found"}).encode()
                self.send_response(200 if doc is not None else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stubs() -> Iterator[list[Stub]]:
    started: list[Stub] = []
    yield started
    for stub in started:
        stub.close()


def stub(stubs: list[Stub], documents: dict[str, Any]) -> Stub:
    server = Stub(documents)
    stubs.append(server)
    return server


def pick(tmp_path: Path, env: dict[str, str]) -> FirstModel | None:
    """`pick_first_model` with a config that sees only `env` (no files)."""
    return pick_first_model(ConfigManager(tmp_path, environ=env))


def ollama_tag(name: str, modified: str, family: str = "llama") -> dict[str, Any]:
    return {"name": name, "model": name, "modified_at": modified, "details": {"family": family}}


def ollama_docs(tags: list[dict[str, Any]], ps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "/api/tags": {"models": tags},
        "/api/version": {"version": "0.12.3"},
        "/api/ps": {"models": ps},
    }


def openai_models(*ids: str, owner: str = "vllm") -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": i, "object": "model", "owned_by": owner} for i in ids],
    }


# -- the real CLI ---------------------------------------------------------------------------------


def test_ask_answers_from_a_running_ollama_and_says_so(tmp_path: Path, dead_url: str) -> None:
    with run_local_server(protocols=["ollama"]) as ollama:
        result = run_cli(
            "ask", PROMPT, cwd=tmp_path, env=only(dead_url, OLLAMA_HOST=ollama.base_url)
        )
        bodies = chats(ollama, "/api/chat")
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply(PROMPT) + "\n"
    # Nothing in /api/ps and equal modification times: the first model /api/tags lists.
    assert ollama.models[0] == "test-model"
    assert [b["model"] for b in bodies] == ["test-model:latest"]
    note = result.stderr.strip()
    assert note.startswith("rlm-code: no model configured; using ollama/test-model:latest (")
    assert f"Ollama at {ollama.base_url}; it loads on the first call)" in note
    assert "`rlm-code config set default-model ollama/test-model:latest` or RLM_CODE_MODEL" in note
    assert "built-in" not in result.stderr
    assert "\n" not in note


@pytest.mark.parametrize(
    ("variable", "protocol", "provider", "served"),
    [
        ("VLLM_BASE_URL", "openai", "vllm", "served by vLLM"),
        ("LLAMACPP_BASE_URL", "llamacpp", "llama-cpp", "served by llama.cpp Server"),
    ],
)
def test_ask_answers_from_a_running_openai_compatible_server(
    tmp_path: Path, dead_url: str, variable: str, protocol: str, provider: str, served: str
) -> None:
    models = ["Qwen/Qwen2.5-Coder-7B-Instruct"]
    with run_local_server(protocols=[protocol], models=models) as server:
        env = only(dead_url, **{variable: server.openai_base_url})
        result = run_cli("ask", PROMPT, cwd=tmp_path, env=env)
        bodies = chats(server, "/v1/chat/completions")
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply(PROMPT) + "\n"
    assert server.models[0] == "test-model"  # the server's defaults come before ours
    assert [b["model"] for b in bodies] == ["test-model"]
    name = f"{provider}/test-model"
    assert f"using {name} ({served} at {server.openai_base_url})" in result.stderr
    assert f"config set default-model {name}`" in result.stderr


def test_ask_json_prints_no_note_and_still_uses_the_running_server(
    tmp_path: Path, dead_url: str
) -> None:
    with run_local_server(protocols=["ollama"]) as ollama:
        env = only(dead_url, OLLAMA_HOST=ollama.base_url)
        result = run_cli("ask", "--json", "hi there", cwd=tmp_path, env=env)
        bodies = chats(ollama, "/api/chat")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["text"] == echo_reply("hi there")
    assert [b["model"] for b in bodies] == ["test-model:latest"]
    assert result.stderr == ""


def test_ask_with_nothing_running_gets_the_builtin_echo(tmp_path: Path) -> None:
    """The isolated test environment: nothing listens on the local rows' default ports."""
    result = run_cli("ask", PROMPT, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply(PROMPT) + "\n"
    assert result.stderr.strip() == session.BUILTIN_NOTE


def test_ask_with_every_local_url_refusing_gets_the_builtin_echo(
    tmp_path: Path, dead_url: str
) -> None:
    result = run_cli("ask", PROMPT, cwd=tmp_path, env=only(dead_url))
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply(PROMPT) + "\n"
    assert "no local model server answered" in result.stderr


def test_a_configured_default_model_skips_discovery(tmp_path: Path, dead_url: str) -> None:
    with (
        run_local_server(protocols=["ollama"], models=["llama3.2:latest"]) as ollama,
        run_local_server(protocols=["openai"], models=["test-model"]) as vllm,
    ):
        env = only(dead_url, OLLAMA_HOST=ollama.base_url, VLLM_BASE_URL=vllm.openai_base_url)
        env["RLM_CODE_MODEL"] = "vllm/test-model"
        result = run_cli("ask", PROMPT, cwd=tmp_path, env=env)
        ollama_paths = [r.path for r in ollama.requests]
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert ollama_paths == []  # not even probed


def test_the_shell_starts_on_the_running_server(tmp_path: Path, dead_url: str) -> None:
    with run_local_server(protocols=["ollama"]) as ollama:
        env = shell_env(tmp_path, **only(dead_url, OLLAMA_HOST=ollama.base_url))
        shell = Session(tmp_path, env)
        try:
            banner = shell.prompt("ollama/test-model:latest")
            reply = shell.run("hello there", "ollama/test-model:latest")
            shell.child.sendline("/exit")
            assert shell.finish() == 0
        finally:
            shell.close()
        bodies = chats(ollama, "/api/chat")
    assert "no model configured; using ollama/test-model:latest" in banner
    assert "config set default-model ollama/test-model:latest" in banner
    assert "Echo: hello there" in reply
    assert [b["model"] for b in bodies] == ["test-model:latest"]


def test_the_shell_with_nothing_running_uses_the_builtin_server(
    tmp_path: Path, dead_url: str
) -> None:
    shell = Session(tmp_path, shell_env(tmp_path, **only(dead_url)))
    try:
        banner = shell.prompt(FRESH_LABEL)
        assert "no local model server answered" in banner
        assert "Echo: hi" in shell.run("hi", FRESH_LABEL)
    finally:
        shell.close()


# -- which model, which server -------------------------------------------------------------------


def test_ollama_loaded_model_wins_over_the_most_recent_tag(
    tmp_path: Path, dead_url: str, stubs: list[Stub]
) -> None:
    tags = [
        ollama_tag("old:latest", "2024-01-01T10:00:00.123456789+01:00"),
        ollama_tag("new:latest", "2025-06-01T10:00:00.5Z"),
        ollama_tag("all-minilm:latest", "2025-07-01T10:00:00Z", family="bert"),
    ]
    ps = [
        {"name": "mxbai-embed-large:latest", "expires_at": "2318-01-01T00:00:00Z"},
        {"name": "old:latest", "model": "old:latest", "expires_at": "2025-06-02T10:05:00-07:00"},
    ]
    ollama = stub(stubs, ollama_docs(tags, ps))
    chosen = pick(tmp_path, only(dead_url, OLLAMA_HOST=ollama.url))
    assert chosen == FirstModel(
        "ollama", "old:latest", ollama.url, "Ollama", True, f"loaded in Ollama at {ollama.url}"
    )


def test_ollama_with_nothing_loaded_offers_its_most_recently_modified_model(
    tmp_path: Path, dead_url: str, stubs: list[Stub]
) -> None:
    tags = [
        ollama_tag("old:latest", "2024-01-01T10:00:00.123456789+01:00"),
        ollama_tag("new:latest", "2025-06-01T10:00:00.5Z"),
        ollama_tag("nomic-embed-text:latest", "2025-07-01T10:00:00Z", family="nomic-bert"),
    ]
    ollama = stub(stubs, ollama_docs(tags, []))
    chosen = pick(tmp_path, only(dead_url, OLLAMA_HOST=ollama.url))
    assert chosen is not None
    assert (chosen.name, chosen.loaded) == ("ollama/new:latest", False)
    assert chosen.how.endswith("; it loads on the first call")


def test_lmstudio_offers_its_loaded_chat_model(
    tmp_path: Path, dead_url: str, stubs: list[Stub]
) -> None:
    entries = [
        {"id": "text-embedding-nomic-embed-text-v1.5", "type": "embeddings", "state": "loaded"},
        {"id": "qwen2-vl-7b-instruct", "type": "vlm", "state": "not-loaded"},
        {"id": "meta-llama-3.1-8b-instruct", "type": "llm", "state": "loaded"},
    ]
    ids = [e["id"] for e in entries]
    docs = {"/v1/models": openai_models(*ids, owner="organization_owner")}
    lmstudio = stub(stubs, {**docs, "/api/v0/models": {"object": "list", "data": entries}})
    chosen = pick(tmp_path, only(dead_url, LMSTUDIO_BASE_URL=lmstudio.url + "/v1"))
    assert chosen is not None
    assert (chosen.name, chosen.loaded) == ("lmstudio/meta-llama-3.1-8b-instruct", True)
    assert chosen.base_url == lmstudio.url + "/v1"

    for entry in entries:
        entry["state"] = "not-loaded"
    chosen = pick(tmp_path, only(dead_url, LMSTUDIO_BASE_URL=lmstudio.url + "/v1"))
    assert chosen is not None
    assert (chosen.name, chosen.loaded) == ("lmstudio/qwen2-vl-7b-instruct", False)


def test_a_loaded_model_beats_one_that_must_load_then_registry_order(
    tmp_path: Path, dead_url: str, stubs: list[Stub]
) -> None:
    idle_ollama = stub(
        stubs, ollama_docs([ollama_tag("llama3.2:latest", "2025-01-01T00:00:00Z")], [])
    )
    vllm = stub(stubs, {"/v1/models": openai_models("vllm-model")})
    sglang = stub(stubs, {"/v1/models": openai_models("sglang-model", owner="sglang")})
    env = only(
        dead_url,
        OLLAMA_HOST=idle_ollama.url,
        VLLM_BASE_URL=vllm.url + "/v1",
        SGLANG_BASE_URL=sglang.url + "/v1",
    )
    chosen = pick(tmp_path, env)
    assert chosen is not None and chosen.name == "vllm/vllm-model"  # loaded, and before SGLang

    busy = [{"name": "llama3.2:latest", "expires_at": "2025-01-01T00:05:00Z"}]
    busy_ollama = stub(
        stubs, ollama_docs([ollama_tag("llama3.2:latest", "2025-01-01T00:00:00Z")], busy)
    )
    chosen = pick(tmp_path, {**env, "OLLAMA_HOST": busy_ollama.url})
    assert chosen is not None and chosen.name == "ollama/llama3.2:latest"  # loaded, and first

    llamacpp = stub(stubs, {"/v1/models": openai_models("gguf-model", owner="llamacpp")})
    chosen = pick(tmp_path, {**env, "LLAMACPP_BASE_URL": llamacpp.url + "/v1"})
    assert chosen is not None and chosen.name == "llama-cpp/gguf-model"  # before vLLM


def test_a_server_with_only_embedding_models_is_not_chosen(
    tmp_path: Path, dead_url: str, stubs: list[Stub]
) -> None:
    vllm = stub(stubs, {"/v1/models": openai_models("BAAI/bge-embedding-large")})
    assert pick(tmp_path, only(dead_url, VLLM_BASE_URL=vllm.url + "/v1")) is None


def test_nothing_answering_is_none(tmp_path: Path, dead_url: str) -> None:
    assert pick(tmp_path, only(dead_url)) is None


# -- bounded ---------------------------------------------------------------------------------------


def test_the_pick_is_bounded_by_its_own_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stubs: list[Stub], dead_url: str
) -> None:
    """Both rounds run within `DISCOVERY_TIMEOUT_S`: the first with it as its per-request
    timeout (and the discovery's deadline), the second with what is left of it."""
    assert 0 < DISCOVERY_TIMEOUT_S <= 0.5
    seen: dict[str, list[float]] = {"discover": [], "fetch": []}
    real_discover = local_discovery.discover_local_providers
    real_fetch = local_probe.fetch_all

    def discover(registry: Any, config: Any, timeout: float) -> Any:
        seen["discover"].append(timeout)
        return real_discover(registry, config, timeout)

    async def fetch(urls: list[str], timeout: float) -> Any:
        seen["fetch"].append(timeout)
        return await real_fetch(urls, timeout)

    monkeypatch.setattr(local_discovery, "discover_local_providers", discover)
    monkeypatch.setattr(local_probe, "fetch_all", fetch)
    ollama = stub(stubs, ollama_docs([ollama_tag("m:latest", "2025-01-01T00:00:00Z")], []))
    assert pick(tmp_path, only(dead_url, OLLAMA_HOST=ollama.url)) is not None
    assert seen["discover"] == [DISCOVERY_TIMEOUT_S]
    assert len(seen["fetch"]) == 1
    assert 0 < seen["fetch"][0] <= DISCOVERY_TIMEOUT_S


def test_ask_and_the_shell_use_the_bounded_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`open_session` and the shell's `first_link` call the pick with its default timeout."""
    monkeypatch.chdir(tmp_path)
    seen: list[float] = []

    def discover(registry: Any, config: Any, timeout: float) -> list[dict[str, Any]]:
        seen.append(timeout)
        return []

    monkeypatch.setattr(local_discovery, "discover_local_providers", discover)
    notes: list[str] = []
    with session.open_session(None, quiet=True) as connector:
        assert connector.get_connection_status()["model"] == session.BUILTIN_MODEL
    link = first_link(ConfigManager(tmp_path, environ={}), notes.append)
    assert link.builtin and notes == [session.BUILTIN_NOTE]
    assert seen == [DISCOVERY_TIMEOUT_S, DISCOVERY_TIMEOUT_S]


def test_the_shell_pre_look_is_bounded_by_the_same_timeout(
    monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    seen: list[float] = []
    real = first_model._any_accepts

    def any_accepts(addresses: set[tuple[str, int]], timeout: float) -> bool:
        seen.append(timeout)
        return real(addresses, timeout)

    monkeypatch.setattr(first_model, "_any_accepts", any_accepts)
    assert nothing_listens(only(dead_url))
    assert seen == [DISCOVERY_TIMEOUT_S]


# -- the shell's pre-look --------------------------------------------------------------------------


def test_the_pre_look_sees_a_listening_server(dead_url: str, stubs: list[Stub]) -> None:
    assert nothing_listens(only(dead_url))
    server = stub(stubs, {})
    assert not nothing_listens(only(dead_url, VLLM_BASE_URL=server.url + "/v1"))
    localhost = server.url.replace("127.0.0.1", "localhost")
    assert not nothing_listens(only(dead_url, OLLAMA_HOST=localhost))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("OLLAMA_HOST", "0.0.0.0:11434"),  # Ollama's host form: left to the full look
        ("VLLM_BASE_URL", "http://gpu-box.invalid:8000/v1"),  # would need a resolver
        ("VLLM_BASE_URL", "http://127.0.0.1:notaport/v1"),
    ],
)
def test_the_pre_look_leaves_what_it_cannot_check_to_the_full_look(
    dead_url: str, variable: str, value: str
) -> None:
    assert not nothing_listens(only(dead_url, **{variable: value}))


def test_a_fresh_shell_with_nothing_running_loads_no_http_stack(dead_url: str) -> None:
    """Start-up: the pre-look settles it before aiohttp or the config module is imported."""
    source = (
        "import os, sys\n"
        "from rlm_code.cli.shell.startup import first_link\n"
        "notes = []\n"
        "link = first_link(None, notes.append)\n"
        "print(link.builtin, len(notes), 'aiohttp' in sys.modules,"
        " 'rlm_code.core.config' in sys.modules)\n"
    )
    env = {**os.environ, **only(dead_url)}
    result = subprocess.run(
        [sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "1", "False", "False"]


def test_a_port_that_accepts_and_stays_silent_is_not_chosen(tmp_path: Path, dead_url: str) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        assert pick(tmp_path, only(dead_url, OLLAMA_HOST=url)) is None
    finally:
        silent.close()


def test_bad_timeout_is_a_typed_error(tmp_path: Path) -> None:
    from rlm_code.core.exceptions import InvalidInputError

    with pytest.raises(InvalidInputError):
        pick_first_model(ConfigManager(tmp_path, environ={}), timeout=0)


# -- connecting and the note ----------------------------------------------------------------------


def test_a_pick_that_fails_to_connect_falls_back(
    monkeypatch: pytest.MonkeyPatch, dead_url: str
) -> None:
    gone = FirstModel("ollama", "llama3.2:latest", dead_url, "Ollama", True, "loaded in Ollama")
    monkeypatch.setattr(first_model, "pick_first_model", lambda *args, **kwargs: gone)
    with LLMConnector(config_manager=ConfigManager()) as connector:
        assert session.connect_first_model(connector) is None
        assert not connector.get_connection_status()["connected"]


def test_the_note_is_one_safe_line() -> None:
    hostile = FirstModel(
        "vllm", "evil\x1b[2J\nname x", "http://127.0.0.1:8000/v1", "vLLM", True, "served by vLLM"
    )
    note = first_model_note(hostile)
    assert "\x1b" not in note and "\n" not in note
    assert "using vllm/evil name x (served by vLLM)" in note
    assert "`rlm-code config set default-model 'vllm/evil name x'`" in note


def test_the_readme_shows_the_notes_as_printed() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    url = "http://localhost:11434"
    loaded = FirstModel(
        "ollama", "qwen2.5-coder:7b", url, "Ollama", True, f"loaded in Ollama at {url}"
    )
    assert first_model_note(loaded) in readme
    assert session.BUILTIN_NOTE in readme
