"""Local server discovery against real loopback servers: no patched network functions.

Healthy servers are the local protocol server (Ollama, TGI, llama.cpp and OpenAI protocols);
the odd ports (silent, garbage, slow) are the tiny servers of this directory's conftest. Every
test probes through `isolated_registry`, whose rows default to closed loopback ports, and
points a provider at a server the way users do: its env var or `rlm_config.yaml`.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.llm_connector import LLMConnector
from rlm_code.models.providers.local_discovery import PROBE_HINTS, discover_local_providers
from rlm_code.models.providers.registry import ProviderRegistry
from rlm_code.testing import LocalProtocolServer, run_local_server

from .conftest import LOCAL_SPECS, closed_port, isolated_registry, openai_models

TIMEOUT = 0.4
RESULT_KEYS = {
    "provider_id", "display_name", "base_url", "healthy", "models", "latency_ms", "detail",
    "candidates",
}  # fmt: skip
ENV_VAR = {spec.provider_id: spec.base_url_env_var for spec in LOCAL_SPECS}


def point(monkeypatch: pytest.MonkeyPatch, provider_id: str, url: str) -> None:
    var = ENV_VAR[provider_id]
    assert var is not None
    monkeypatch.setenv(var, url)


def discover(
    tmp_path: Path, registry: ProviderRegistry | None = None, timeout: float = TIMEOUT
) -> list[dict[str, Any]]:
    results = discover_local_providers(
        registry or isolated_registry(), ConfigManager(project_root=tmp_path), timeout
    )
    for item in results:
        assert set(item) == RESULT_KEYS
        assert isinstance(item["healthy"], bool)
        assert isinstance(item["detail"], str) and item["detail"]
        assert item["latency_ms"] is None or isinstance(item["latency_ms"], float)
        assert all(isinstance(m, str) for m in item["models"])
        assert item["candidates"][0] == item["provider_id"]
    json.dumps(results)  # plain data: the CLI prints it as it is
    return results


def by_id(results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [item["provider_id"] for item in results]
    assert len(ids) == len(set(ids)), ids
    return {item["provider_id"]: item for item in results}


def gets(server: LocalProtocolServer) -> list[str]:
    return sorted(r.path for r in server.requests if r.method == "GET")


def test_probe_hints_name_only_local_rows() -> None:
    # The hints say how to tell servers apart; what to probe comes from the rows themselves.
    assert set(PROBE_HINTS) <= set(ENV_VAR)
    assert [pid for pid, hint in PROBE_HINTS.items() if hint.generic] == ["openai-compatible"]


# -- healthy servers ---------------------------------------------------------------------------


def test_ollama_via_ollama_host_lists_models_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_local_server(protocols=("ollama",)) as server:
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{server.port}")  # Ollama's own form
        results = discover(tmp_path)
        asked = gets(server)
    first = results[0]
    assert first["provider_id"] == "ollama" and first["healthy"] is True
    assert first["base_url"] == server.base_url
    expected = [m if ":" in m else m + ":latest" for m in server.models]
    assert first["models"] == expected
    assert first["detail"].startswith("Ollama 0.")  # the /api/version answer
    assert first["latency_ms"] is not None and first["latency_ms"] > 0
    assert asked == ["/api/tags", "/api/version"]
    assert [r["healthy"] for r in results] == [True] + [False] * (len(results) - 1)


def test_vllm_via_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_local_server(protocols=("openai",)) as server:
        point(monkeypatch, "vllm", server.openai_base_url)
        item = by_id(discover(tmp_path))["vllm"]
        assert gets(server) == ["/v1/models"]
    assert item["healthy"] is True
    assert item["models"] == list(server.models)
    assert item["base_url"] == server.openai_base_url
    assert item["display_name"] == "vLLM"


def test_lmstudio_via_project_config_file(tmp_path: Path) -> None:
    with run_local_server(protocols=("openai",)) as server:
        (tmp_path / "rlm_config.yaml").write_text(
            f"providers:\n  lmstudio:\n    base_url: {server.openai_base_url}\n"
        )
        item = by_id(discover(tmp_path))["lmstudio"]
    assert item["healthy"] is True
    assert item["models"] == list(server.models)


def test_env_var_beats_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dead = f"http://127.0.0.1:{closed_port()}/v1"
    (tmp_path / "rlm_config.yaml").write_text(f"providers:\n  sglang:\n    base_url: {dead}\n")
    with run_local_server(protocols=("openai",)) as server:
        point(monkeypatch, "sglang", server.openai_base_url)
        item = by_id(discover(tmp_path))["sglang"]
    assert item["healthy"] is True and item["base_url"] == server.openai_base_url


# -- ports that fail in every way ----------------------------------------------------------------


def test_refused_ports(tmp_path: Path) -> None:
    results = discover(tmp_path)
    # One entry per distinct URL: every local row has its own closed port here.
    assert sorted(r["provider_id"] for r in results) == sorted(ENV_VAR)
    for item in results:
        assert item["healthy"] is False
        assert item["detail"] == "connection refused"
        assert item["models"] == [] and item["latency_ms"] is None


def test_silent_port_times_out(
    tmp_path: Path, servers: Callable[..., Any], timer: Callable[[], Callable[[], float]]
) -> None:
    silent = servers("silent")
    stop = timer()
    item = by_id(discover(tmp_path, isolated_registry(vllm=silent.port)))["vllm"]
    elapsed = stop()
    assert item["healthy"] is False
    assert item["detail"] == f"timed out after {TIMEOUT:g} s"
    assert elapsed < TIMEOUT * 3


def test_slow_answer_counts_as_timed_out(
    tmp_path: Path, servers: Callable[..., Any], timer: Callable[[], Callable[[], float]]
) -> None:
    body = json.dumps(openai_models("late-model")).encode()
    slow = servers("slow", TIMEOUT * 3, body)
    stop = timer()
    item = by_id(discover(tmp_path, isolated_registry(sglang=slow.port)))["sglang"]
    elapsed = stop()
    assert slow.connections == 1
    assert item["healthy"] is False
    assert item["detail"] == f"timed out after {TIMEOUT:g} s"
    assert elapsed < TIMEOUT * 3, "the call must not wait for the late answer"


def test_http_500(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_local_server(protocols=("openai",)) as server:
        server.script_faults(["500"])
        point(monkeypatch, "lmstudio", server.openai_base_url)
        item = by_id(discover(tmp_path))["lmstudio"]
        assert server.pending_faults() == []
    assert item["healthy"] is False and item["detail"] == "HTTP 500"
    assert item["models"] == []


def test_http_401_says_the_server_wants_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_local_server(protocols=("openai",), require_key=True) as server:
        point(monkeypatch, "vllm", server.openai_base_url)
        item = by_id(discover(tmp_path))["vllm"]
    assert item["healthy"] is False
    assert item["detail"] == "HTTP 401: the server is up but wants an API key"


def test_garbage_bytes(tmp_path: Path, servers: Callable[..., Any]) -> None:
    junk = servers("garbage")
    item = by_id(discover(tmp_path, isolated_registry(lmstudio=junk.port)))["lmstudio"]
    assert item["healthy"] is False
    assert item["detail"] in (
        "not an HTTP answer",
        "the server closed the connection without answering",
    )


def test_malformed_json(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_local_server(protocols=("openai",)) as server:
        server.script_faults(["malformed"])  # status 200, half of the JSON
        point(monkeypatch, "vllm", server.openai_base_url)
        item = by_id(discover(tmp_path))["vllm"]
    assert item["healthy"] is False
    assert item["detail"] == "not an OpenAI-compatible answer"


def test_json_of_the_wrong_shape(tmp_path: Path, servers: Callable[..., Any]) -> None:
    other = servers("json", {"/v1/models": (200, {"models": ["not", "openai"]})})
    item = by_id(discover(tmp_path, isolated_registry(vllm=other.port)))["vllm"]
    assert item["healthy"] is False
    assert item["detail"] == "not an OpenAI-compatible answer"


def test_ollama_url_answered_by_another_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_local_server(protocols=("openai",)) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.base_url)
        item = by_id(discover(tmp_path))["ollama"]
    assert item["healthy"] is False and item["detail"] == "HTTP 404"


def test_invalid_url_is_reported_not_raised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", "localhost-8000-no-scheme")
    monkeypatch.setenv("SGLANG_BASE_URL", "http://127.0.0.1:notaport/v1")
    results = by_id(discover(tmp_path))
    for provider_id, var in (("vllm", "VLLM_BASE_URL"), ("sglang", "SGLANG_BASE_URL")):
        item = results[provider_id]
        assert item["healthy"] is False
        assert item["detail"].startswith(f"invalid base URL from ${var}")


# -- shared URLs: probed once, told apart by the answer -------------------------------------------


SHARED_8080 = ("tgi", "llama-cpp", "mlx")


@pytest.mark.parametrize(
    ("protocol", "expected_id", "routed"),
    [
        ("tgi", "tgi", ["/info", "/v1/models"]),
        ("llamacpp", "llama-cpp", ["/props", "/v1/models"]),
        ("openai", "mlx", ["/v1/models"]),
    ],
)
def test_shared_port_told_apart_and_probed_once(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    protocol: str,
    expected_id: str,
    routed: list[str],
) -> None:
    with run_local_server(protocols=(protocol,)) as server:
        for provider_id in SHARED_8080:
            point(monkeypatch, provider_id, server.openai_base_url)
        results = discover(tmp_path)
        asked = gets(server)
    shared = [r for r in results if r["base_url"] == server.openai_base_url]
    assert len(shared) == 1, "one server on one URL is reported once"
    item = shared[0]
    assert item["provider_id"] == expected_id and item["healthy"] is True
    assert sorted(item["candidates"]) == sorted(SHARED_8080)
    # Each request once, however many rows share the server (the protocol server records
    # the routes it has; the other signature path got its 404 unrecorded).
    assert asked == routed
    if expected_id == "tgi":
        assert item["models"] == [server.models[0]]  # the one model /info names
        assert item["detail"].startswith("TGI ")
    elif expected_id == "llama-cpp":
        assert item["models"] == list(server.models)
        assert item["detail"].startswith("llama.cpp server")
    else:  # /info and /props answer 404: neither TGI nor llama.cpp
        assert item["models"] == list(server.models)
        assert item["detail"] == "OpenAI-compatible server (answered /v1/models)"


def test_shared_port_every_request_counted_once(
    tmp_path: Path, servers: Callable[..., Any]
) -> None:
    plain = servers("json", {"/v1/models": (200, openai_models("m1", "m2"))})
    registry = isolated_registry(tgi=plain.port, llama_cpp=plain.port, mlx=plain.port)
    healthy = [r for r in discover(tmp_path, registry) if r["healthy"]]
    assert sorted(plain.paths) == ["/info", "/props", "/v1/models"]
    assert len(healthy) == 1 and healthy[0]["provider_id"] == "mlx"
    assert healthy[0]["models"] == ["m1", "m2"]


def test_duplicate_urls_probed_once_other_candidates_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_local_server(protocols=("openai",)) as server:
        for provider_id in ("vllm", "openai-compatible", "lmstudio"):
            point(monkeypatch, provider_id, server.openai_base_url)
        results = discover(tmp_path)
        asked = gets(server)
    assert asked == ["/v1/models"], "three rows, one URL, one request"
    shared = [r for r in results if r["base_url"] == server.openai_base_url]
    assert len(shared) == 1
    item = shared[0]
    # Registry order (lmstudio < vllm), the generic row always last.
    assert item["candidates"] == ["lmstudio", "vllm", "openai-compatible"]
    assert item["provider_id"] == "lmstudio"
    assert item["detail"].endswith("could also be: vllm, openai-compatible")


def test_owned_by_names_the_server(tmp_path: Path, servers: Callable[..., Any]) -> None:
    sglang = servers("json", {"/v1/models": (200, openai_models("qwen", owned_by="sglang"))})
    registry = isolated_registry(
        vllm=sglang.port, sglang=sglang.port, openai_compatible=sglang.port
    )
    shared = [r for r in discover(tmp_path, registry) if r["healthy"]]
    assert len(shared) == 1
    assert shared[0]["provider_id"] == "sglang" and shared[0]["models"] == ["qwen"]
    assert sglang.paths == ["/v1/models"]


def test_tgi_row_pointed_at_a_plain_openai_server_is_still_usable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_local_server(protocols=("openai",)) as server:
        point(monkeypatch, "tgi", server.openai_base_url)
        item = by_id(discover(tmp_path))["tgi"]
    assert item["healthy"] is True and item["models"] == list(server.models)
    assert "/info" in item["detail"]


# -- timing, order, robustness -------------------------------------------------------------------


def test_all_probes_silent_return_in_about_one_timeout(
    tmp_path: Path, servers: Callable[..., Any], timer: Callable[[], Callable[[], float]]
) -> None:
    timeout = 0.5
    ports = {s.provider_id.replace("-", "_"): servers("silent").port for s in LOCAL_SPECS}
    registry = isolated_registry(**ports)
    stop = timer()
    results = discover(tmp_path, registry, timeout=timeout)
    elapsed = stop()
    print(f"\nall {len(results)} URLs silent, timeout {timeout} s: discovery took {elapsed:.3f} s")
    assert len(results) == len(LOCAL_SPECS)
    assert all(r["detail"] == f"timed out after {timeout:g} s" for r in results)
    assert elapsed < timeout * 3


def test_healthy_first_then_stable_registry_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, servers: Callable[..., Any]
) -> None:
    silent = servers("silent")
    registry = isolated_registry(lmstudio=silent.port)
    with run_local_server(protocols=("openai",)) as server:
        point(monkeypatch, "vllm", server.openai_base_url)
        first = discover(tmp_path, registry)
        second = discover(tmp_path, registry)
    order = [r["provider_id"] for r in first]
    assert order == [r["provider_id"] for r in second]
    assert order[0] == "vllm"
    assert order[1:] == sorted(order[1:], key=lambda i: (i == "openai-compatible", i))


def test_no_unclosed_resources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_local_server(protocols=("openai",)) as server:
        point(monkeypatch, "vllm", server.openai_base_url)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            discover(tmp_path)
            gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []


def test_works_inside_a_running_event_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with run_local_server(protocols=("openai",)) as server:
        point(monkeypatch, "vllm", server.openai_base_url)

        async def from_async_code() -> list[dict[str, Any]]:
            return discover(tmp_path)

        results = asyncio.run(from_async_code())
    assert by_id(results)["vllm"]["healthy"] is True


@pytest.mark.parametrize("bad", [0, -1, 0.0, math.nan, math.inf, 601, "1", None, True])
def test_invalid_timeout(tmp_path: Path, bad: Any) -> None:
    with pytest.raises(InvalidInputError, match="timeout"):
        discover_local_providers(isolated_registry(), ConfigManager(project_root=tmp_path), bad)


# -- through the connector -----------------------------------------------------------------------


def test_connector_discover_local_providers_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with run_local_server(protocols=("ollama",)) as server:
        monkeypatch.setenv("OLLAMA_HOST", server.base_url)
        connector = LLMConnector(
            config_manager=ConfigManager(project_root=tmp_path), registry=isolated_registry()
        )
        results = connector.discover_local_providers(timeout=TIMEOUT)
    assert results[0]["provider_id"] == "ollama" and results[0]["healthy"] is True
    assert "llama3.2:latest" in results[0]["models"]
    assert len(results) == len(LOCAL_SPECS)
    with pytest.raises(InvalidInputError):
        connector.discover_local_providers(timeout=-1)
