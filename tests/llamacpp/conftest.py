"""The real llama.cpp server, started once per session on a free loopback port.

It is a second, independent implementation of the wire formats our adapters speak (our own
local protocol server is the first), so these tests catch what a hand-written fake gets
wrong. `xllamacpp` ships llama.cpp's server prebuilt: `xllamacpp.Server(CommonParams)` loads
the model and starts the HTTP server in background threads of this process, and stops them
when the object is freed. The model is a tiny random-weight GGUF written here
(`tiny_gguf`), never downloaded.

Where `xllamacpp` or `gguf` cannot be imported (an unsupported platform, an install without
the dev extra), every test that uses the server is skipped with the reason.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

START_TIMEOUT = 60.0  # loading takes milliseconds; this only bounds a broken install
HEALTH_TIMEOUT = 2.0


@dataclass(frozen=True)
class LlamaServer:
    """The running server: its root URL (`http://127.0.0.1:PORT`) and how long it took."""

    url: str
    model_path: Path
    start_seconds: float

    @property
    def openai_base_url(self) -> str:
        return self.url + "/v1"


def _start(params: Any) -> Any:
    """`xllamacpp.Server(params)` in a thread, so a hang fails the fixture instead of the run."""
    import xllamacpp

    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["server"] = xllamacpp.Server(params)
        except BaseException as exc:  # reported to the fixture below
            result["error"] = exc

    thread = threading.Thread(target=run, name="llama-server-start", daemon=True)
    thread.start()
    thread.join(START_TIMEOUT)
    if thread.is_alive():
        pytest.fail(f"llama.cpp server did not start within {START_TIMEOUT:.0f} s")
    if "error" in result:
        raise result["error"]
    return result["server"]


def _wait_healthy(url: str, deadline: float) -> None:
    """Poll `/health` until it answers `{"status": "ok"}` or the deadline passes."""
    import httpx2

    last = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = httpx2.get(url + "/health", timeout=HEALTH_TIMEOUT)
            if reply.status_code == 200 and reply.json().get("status") == "ok":
                return
            last = f"HTTP {reply.status_code}: {reply.text[:200]}"
        except httpx2.HTTPError as exc:
            last = type(exc).__name__
        time.sleep(0.02)
    pytest.fail(f"llama.cpp server at {url} never became healthy ({last})")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """One real llama.cpp server for the session, on 127.0.0.1 and a port the OS picks."""
    xllamacpp = pytest.importorskip(
        "xllamacpp",
        reason="xllamacpp (llama.cpp's server, prebuilt) cannot be imported on this platform",
        exc_type=ImportError,  # a wheel that installed but cannot load skips too
    )
    pytest.importorskip("gguf", reason="gguf (to write the tiny test model) is not installed")
    from .tiny_gguf import N_CTX, write_tiny_llama

    started = time.monotonic()
    model = write_tiny_llama(tmp_path_factory.mktemp("llamacpp") / "tiny-llama.gguf")
    params = xllamacpp.CommonParams()
    params.model.path = str(model)
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; `listening_address` says which
    params.n_ctx = N_CTX
    params.n_parallel = 1
    params.warmup = False
    params.cpuparams.n_threads = 2
    params.cpuparams_batch.n_threads = 2
    params.sampling.seed = 42
    params.verbosity = -1  # errors and warnings only: per-request info lines are noise here
    server = _start(params)
    try:
        url = str(server.listening_address).rstrip("/")
        assert url.startswith("http://127.0.0.1:"), url
        _wait_healthy(url, time.monotonic() + START_TIMEOUT)
        yield LlamaServer(url, model, time.monotonic() - started)
    finally:
        del server  # the destructor stops the HTTP server and the main loop
        gc.collect()
