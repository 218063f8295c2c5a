"""Every timed contender of every case, one per fresh process.

    python bench/contenders.py CASE CONTENDER --port PORT --n N [--warmup W]

Prints exactly one JSON object on stdout: `{"ops": N, "seconds": S, "us_per_op": U, ...}` for a
run, or `{"skip": "why"}` when the contender cannot run here (a module not written yet, a
package that failed to install, a feature the old release lacks). Each contender imports what
it needs, builds its client once, checks one answer for correctness, warms up, and then times
`N` operations with `time.perf_counter`. An operation is one call (`seq`, `sdk_*`), one whole
200-chunk stream (`stream`, `*_stream`), one batch of 64 concurrent calls (`async`) or one
stream carrying a single 40 MB / 15 MB SSE line (`line40`, `line15`, in `long_line.py`), or one
reply carrying a tool call, whole or streamed (`tools_seq`, `tools_stream`, in `tool_call.py`).
`seq_ledger` is `seq` again, run by the runner with the usage ledger on for `ours` (a fresh file
in `$RLM_CODE_LEDGER`) and off for `ours_off`; when the ledger is on, the row count of its file
is checked after the timed loop (`ledger_cases.check_rows`). `route` (issue 14, in
`route_case.py`) is one sub-model call through `generate_response_with_model`'s pooled route
against `generate_response` on the current connection; an operation with a `check_after`
attribute has it called after the timed loop, its dict merged into the result.

Module level is standard library only: the same file runs in the rlm-code 0.1.13 virtual
environment (contender `rlm013`), where this project's packages must not be importable.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures
import ledger_cases
import long_line
import route_case
import tool_call

PROMPT = fixtures.PROMPT
REPLY = fixtures.REPLY
STREAM_TEXT = fixtures.stream_text()
MESSAGES = [{"role": "user", "content": PROMPT}]
OPENAI_KEY = "sk-test-bench-0000000000000000"
ANTHROPIC_KEY = "sk-ant-test-bench-0000000000000000"
GEMINI_KEY = "AIzaTestBench00000000000000000000000000"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
CONCURRENCY = 64

Op = Callable[[], Any]


class Skip(Exception):
    """This contender cannot run here; the message says why."""


def _need(module: str, why: str | None = None) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise Skip(why or f"module {module} is not installed / not written yet")


def _check(got: object, want: object, who: str) -> None:
    if got != want:
        raise RuntimeError(f"{who} returned {str(got)[:120]!r}, expected {str(want)[:60]!r}...")


def _base(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def _ours_connector() -> Any:
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

    return LLMConnector(ConfigManager())


# -- case 1 (seq) and case 2 (stream): the openai-compatible path ----------------------------


def _bare_sync(module_name: str, port: int, stream: bool) -> Op:
    module = __import__(module_name)
    client = module.Client(headers=JSON_HEADERS, timeout=60)
    if not stream:
        url = _base(port) + "/v1/chat/completions"

        def call() -> str:
            body = json.dumps({"model": "bench", "messages": MESSAGES}).encode()
            data = json.loads(client.post(url, content=body).content)
            return str(data["choices"][0]["message"]["content"])

        return call
    url = _base(port) + "/stream/v1/chat/completions"

    def stream_call() -> str:
        payload = {
            "model": "bench",
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with client.stream("POST", url, content=json.dumps(payload).encode()) as response:
            return long_line.openai_sse_text(response.iter_lines())

    return stream_call


def seq_httpx(port: int) -> Op:
    return _bare_sync("httpx", port, stream=False)


def seq_httpx2(port: int) -> Op:
    return _bare_sync("httpx2", port, stream=False)


def stream_httpx(port: int) -> Op:
    return _bare_sync("httpx", port, stream=True)


def stream_httpx2(port: int) -> Op:
    return _bare_sync("httpx2", port, stream=True)


def seq_ours(port: int) -> Op:
    connector = _ours_connector()
    connector.connect_to_model("vllm/bench", base_url=_base(port) + "/v1")
    return lambda: connector.generate_response(PROMPT)


def stream_ours(port: int) -> Op:
    connector = _ours_connector()
    connector.connect_to_model("vllm/bench", base_url=_base(port) + "/stream/v1")
    return lambda: "".join(connector.stream_response(PROMPT))


def _openai_client(base_url: str) -> Any:
    from openai import OpenAI

    return OpenAI(api_key=OPENAI_KEY, base_url=base_url)


def seq_openai(port: int) -> Op:
    client = _openai_client(_base(port) + "/v1")

    def call() -> str | None:
        reply = client.chat.completions.create(model="bench", messages=MESSAGES)
        return reply.choices[0].message.content

    return call


def _openai_stream_text(chunks: Any) -> str:
    parts = []
    for chunk in chunks:
        if chunk.choices:
            text = chunk.choices[0].delta.content
            if text:
                parts.append(text)
    return "".join(parts)


def stream_openai(port: int) -> Op:
    client = _openai_client(_base(port) + "/stream/v1")

    def call() -> str:
        chunks = client.chat.completions.create(
            model="bench", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        return _openai_stream_text(chunks)

    return call


def _litellm(port: int, path: str) -> tuple[Any, dict[str, Any]]:
    """litellm, quiet, and the arguments of every litellm call here: the OpenAI protocol
    against the bench server under `path`."""
    _need("litellm", "litellm is not installed in the bench venv (its install failed)")
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    args = {
        "model": "bench",
        "custom_llm_provider": "openai",
        "api_base": _base(port) + path,
        "api_key": OPENAI_KEY,
        "messages": MESSAGES,
    }
    return litellm, args


def seq_litellm(port: int) -> Op:
    litellm, args = _litellm(port, "/v1")

    def call() -> str:
        reply = litellm.completion(**args)
        return str(reply.choices[0].message.content)

    return call


def stream_litellm(port: int) -> Op:
    litellm, args = _litellm(port, "/stream/v1")

    def call() -> str:
        chunks = litellm.completion(
            **args,
            stream=True,
            stream_options={"include_usage": True},
        )
        return _openai_stream_text(chunks)

    return call


def _rlm013_connector(base_url: str) -> Any:
    import rlm_code

    version = getattr(rlm_code, "__version__", "?")
    if not str(version).startswith("0.1.13"):
        raise Skip(f"expected rlm-code 0.1.13 here, found {version} at {rlm_code.__file__}")
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

    connector = LLMConnector(ConfigManager())
    connector.connect_to_model("bench", model_type="vllm", base_url=base_url)
    return connector


def seq_rlm013(port: int) -> Op:
    connector = _rlm013_connector(_base(port) + "/v1")
    return lambda: connector.generate_response(PROMPT)


def stream_rlm013(port: int) -> Op:
    raise Skip("rlm-code 0.1.13 has no streaming API (no stream_response)")


# -- case 3 (async): 64 concurrent calls per operation ----------------------------------------


def _gather64(call: Callable[[], Any]) -> Callable[[], Any]:
    async def batch() -> list[Any]:
        return list(await asyncio.gather(*(call() for _ in range(CONCURRENCY))))

    return batch


def async_aiohttp(port: int) -> Any:
    import aiohttp

    url = _base(port) + "/v1/chat/completions"
    holder: dict[str, Any] = {}

    async def setup() -> None:
        connector = aiohttp.TCPConnector(limit=100)
        holder["s"] = aiohttp.ClientSession(headers=JSON_HEADERS, connector=connector)

    async def call() -> str:
        body = json.dumps({"model": "bench", "messages": MESSAGES}).encode()
        async with holder["s"].post(url, data=body) as response:
            data = json.loads(await response.read())
        return str(data["choices"][0]["message"]["content"])

    async def teardown() -> None:
        await holder["s"].close()

    return setup, _gather64(call), teardown


def async_httpx(port: int) -> Any:
    import httpx

    url = _base(port) + "/v1/chat/completions"
    holder: dict[str, Any] = {}

    async def setup() -> None:
        holder["c"] = httpx.AsyncClient(headers=JSON_HEADERS, timeout=60)

    async def call() -> str:
        body = json.dumps({"model": "bench", "messages": MESSAGES}).encode()
        response = await holder["c"].post(url, content=body)
        data = json.loads(response.content)
        return str(data["choices"][0]["message"]["content"])

    async def teardown() -> None:
        await holder["c"].aclose()

    return setup, _gather64(call), teardown


def async_ours(port: int) -> Any:
    connector = _ours_connector()
    connector.connect_to_model("vllm/bench", base_url=_base(port) + "/v1")

    async def setup() -> None:
        return None

    async def call() -> str:
        return await connector.agenerate_response(PROMPT)

    async def teardown() -> None:
        await connector.aclose()

    return setup, _gather64(call), teardown


def async_openai(port: int) -> Any:
    from openai import AsyncOpenAI

    holder: dict[str, Any] = {}

    async def setup() -> None:
        holder["c"] = AsyncOpenAI(api_key=OPENAI_KEY, base_url=_base(port) + "/v1")

    async def call() -> str | None:
        reply = await holder["c"].chat.completions.create(model="bench", messages=MESSAGES)
        return reply.choices[0].message.content

    async def teardown() -> None:
        await holder["c"].close()

    return setup, _gather64(call), teardown


def async_litellm(port: int) -> Any:
    litellm, args = _litellm(port, "/v1")

    async def setup() -> None:
        return None

    async def call() -> str:
        reply = await litellm.acompletion(**args)
        return str(reply.choices[0].message.content)

    async def teardown() -> None:
        return None

    return setup, _gather64(call), teardown


def async_rlm013(port: int) -> Any:
    raise Skip("rlm-code 0.1.13 has no async API (no agenerate_response)")


# -- case 4: SDK adapters vs the same SDK called directly --------------------------------------

_SDK_ADAPTER = {
    "openai": "rlm_code.models.adapters.openai_sdk",
    "anthropic": "rlm_code.models.adapters.anthropic_sdk",
    "gemini": "rlm_code.models.adapters.gemini_sdk",
}
_SDK_MODEL = {
    "openai": ("openai/gpt-4o", OPENAI_KEY, "/v1"),
    "anthropic": ("anthropic/claude-sonnet-4-5-20250929", ANTHROPIC_KEY, ""),
    "gemini": ("gemini/gemini-2.5-flash", GEMINI_KEY, ""),
}


def _sdk_ours(sdk: str, port: int, stream: bool) -> Op:
    module = _SDK_ADAPTER[sdk]
    _need(module, f"{module} is not written yet")
    model, key, suffix = _SDK_MODEL[sdk]
    connector = _ours_connector()
    prefix = "/stream" if stream else ""
    connector.connect_to_model(model, api_key=key, base_url=_base(port) + prefix + suffix)
    if stream:
        return lambda: "".join(connector.stream_response(PROMPT))
    return lambda: connector.generate_response(PROMPT)


def _sdk_openai_direct(port: int, stream: bool) -> Op:
    _need("openai")
    if stream:
        client = _openai_client(_base(port) + "/stream/v1")

        def stream_call() -> str:
            chunks = client.chat.completions.create(
                model="gpt-4o",
                messages=MESSAGES,
                stream=True,
                stream_options={"include_usage": True},
            )
            return _openai_stream_text(chunks)

        return stream_call
    client = _openai_client(_base(port) + "/v1")

    def call() -> str | None:
        reply = client.chat.completions.create(model="gpt-4o", messages=MESSAGES)
        return reply.choices[0].message.content

    return call


def _sdk_anthropic_direct(port: int, stream: bool) -> Op:
    _need("anthropic")
    from anthropic import Anthropic

    client = Anthropic(api_key=ANTHROPIC_KEY, base_url=_base(port) + ("/stream" if stream else ""))
    model = "claude-sonnet-4-5-20250929"
    if stream:

        def stream_call() -> str:
            parts = []
            events = client.messages.create(
                model=model, max_tokens=4096, messages=MESSAGES, stream=True
            )
            for event in events:
                if event.type == "content_block_delta" and event.delta.type == "text_delta":
                    parts.append(event.delta.text)
            return "".join(parts)

        return stream_call

    def call() -> str:
        reply = client.messages.create(model=model, max_tokens=4096, messages=MESSAGES)
        return str(reply.content[0].text)

    return call


def _sdk_gemini_direct(port: int, stream: bool) -> Op:
    _need("google.genai", "google-genai is not installed")
    from google import genai
    from google.genai import types

    base = _base(port) + ("/stream" if stream else "")
    client = genai.Client(api_key=GEMINI_KEY, http_options=types.HttpOptions(base_url=base))
    model = "gemini-2.5-flash"
    if stream:

        def stream_call() -> str:
            parts = []
            for chunk in client.models.generate_content_stream(model=model, contents=PROMPT):
                if chunk.text:
                    parts.append(chunk.text)
            return "".join(parts)

        return stream_call

    def call() -> str | None:
        return client.models.generate_content(model=model, contents=PROMPT).text

    return call


_DIRECT = {
    "openai": _sdk_openai_direct,
    "anthropic": _sdk_anthropic_direct,
    "gemini": _sdk_gemini_direct,
}


def _sdk_case(sdk: str, stream: bool) -> dict[str, Callable[[int], Op]]:
    return {
        "direct": lambda port: _DIRECT[sdk](port, stream),
        "ours": lambda port: _sdk_ours(sdk, port, stream),
    }


# -- Ollama (for information): native /api/chat ------------------------------------------------


def ollama_httpx(port: int) -> Op:
    import httpx

    client = httpx.Client(headers=JSON_HEADERS, timeout=60)
    url = _base(port) + "/api/chat"

    def call() -> str:
        body = json.dumps({"model": "bench:latest", "messages": MESSAGES, "stream": False})
        data = json.loads(client.post(url, content=body.encode()).content)
        return str(data["message"]["content"])

    return call


def ollama_ours(port: int) -> Op:
    connector = _ours_connector()
    connector.connect_to_model("ollama/bench", base_url=_base(port))
    return lambda: connector.generate_response(PROMPT)


# -- case 7: memory over 10,000 sequential calls -------------------------------------------------


def _status_kb(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory(make: Callable[[int], Op], port: int, n: int) -> dict[str, Any]:
    call = make(port)
    _check(call(), REPLY, "memory contender")
    rss_start = _status_kb("VmRSS")
    mark = n // 10
    rss_mark = 0
    started = time.perf_counter()
    for i in range(1, n + 1):
        call()
        if i == mark:
            rss_mark = _status_kb("VmRSS")
    seconds = time.perf_counter() - started
    rss_end = _status_kb("VmRSS")
    return {
        "ops": n,
        "seconds": seconds,
        "us_per_op": seconds / n * 1e6,
        "rss_start_kb": rss_start,
        "rss_mark_kb": rss_mark,
        "rss_end_kb": rss_end,
        "growth_kb": rss_end - rss_mark,
        "mark": mark,
        "peak_rss_kb": _status_kb("VmHWM"),
    }


# -- case 6: discovery against silent ports -----------------------------------------------------


def _silent_listeners(count: int) -> tuple[list[int], Callable[[], None]]:
    """`count` loopback ports that accept connections and never send a byte."""
    servers = []
    held: list[socket.socket] = []
    stop = threading.Event()
    for _ in range(count):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(256)
        server.settimeout(0.05)
        servers.append(server)

    def accept_forever() -> None:
        while not stop.is_set():
            for server in servers:
                try:
                    conn, _ = server.accept()
                except (TimeoutError, OSError):
                    continue
                held.append(conn)  # keep it open, say nothing

    thread = threading.Thread(target=accept_forever, daemon=True)
    thread.start()

    def close() -> None:
        stop.set()
        thread.join()
        for sock in [*held, *servers]:
            sock.close()

    return [s.getsockname()[1] for s in servers], close


def discover(flavour: str, timeout: float, n: int) -> dict[str, Any]:
    if flavour == "ours":
        _need("rlm_code.models.providers.local_discovery", "local_discovery is not written yet")
        from rlm_code.models.providers.registry import ProviderRegistry

        rows = [s for s in ProviderRegistry.default().list_providers("local")]
        env_vars = [(s.base_url_env_var, s.adapter_type) for s in rows if s.base_url_env_var]
        ports, close = _silent_listeners(len(env_vars))
        for (var, adapter), port in zip(env_vars, ports, strict=True):
            os.environ[var] = _base(port) + ("" if adapter == "ollama" else "/v1")
    else:
        # 0.1.13 ignores the env vars: it probes a hard-coded list of localhost URLs, one after
        # the other. Point each distinct URL of that list at its own silent port instead.
        from rlm_code.models.providers.local_discovery import LocalProviderDiscovery

        probes = LocalProviderDiscovery._PROBES
        roots = sorted({p["base_url"].split("/v1")[0] for p in probes})
        ports, close = _silent_listeners(len(roots))
        new_root = {root: _base(port) for root, port in zip(roots, ports, strict=True)}
        LocalProviderDiscovery._PROBES = [
            {
                **p,
                "base_url": new_root[p["base_url"].split("/v1")[0]]
                + p["base_url"][len(p["base_url"].split("/v1")[0]) :],
            }
            for p in probes
        ]
    try:
        if flavour == "ours":
            connector = _ours_connector()
        else:
            from rlm_code.core.config import ConfigManager
            from rlm_code.models.llm_connector import LLMConnector

            connector = LLMConnector(ConfigManager())
        walls = []
        results: list[dict[str, Any]] = []
        for _ in range(n + 1):  # the first call is cold (imports aiohttp); reported apart
            started = time.perf_counter()
            results = connector.discover_local_providers(timeout=timeout)
            walls.append(time.perf_counter() - started)
    finally:
        close()
    healthy = sum(1 for r in results if r.get("healthy"))
    warm = sorted(walls[1:])
    return {
        "ops": n,
        "timeout_s": timeout,
        "ports": len(ports),
        "results": len(results),
        "healthy": healthy,
        "cold_s": walls[0],
        "median_s": warm[len(warm) // 2],
        "max_s": warm[-1],
        "seconds": sum(walls[1:]),
        "us_per_op": warm[len(warm) // 2] * 1e6,
    }


# -- the table of cases ------------------------------------------------------------------------

SYNC_CASES: dict[str, dict[str, Callable[[int], Op]]] = {
    "seq": {
        "httpx": seq_httpx,
        "httpx2": seq_httpx2,
        "ours": seq_ours,
        "openai": seq_openai,
        "litellm": seq_litellm,
        "rlm013": seq_rlm013,
    },
    # Case 10: the runner gives `ours` a fresh ledger file and `ours_off` RLM_CODE_LEDGER=off.
    "seq_ledger": {"httpx2": seq_httpx2, "ours": seq_ours, "ours_off": seq_ours},
    "stream": {
        "httpx": stream_httpx,
        "httpx2": stream_httpx2,
        "ours": stream_ours,
        "openai": stream_openai,
        "litellm": stream_litellm,
        "rlm013": stream_rlm013,
    },
    "sdk_openai": _sdk_case("openai", False),
    "sdk_anthropic": _sdk_case("anthropic", False),
    "sdk_gemini": _sdk_case("gemini", False),
    "sdk_openai_stream": _sdk_case("openai", True),
    "sdk_anthropic_stream": _sdk_case("anthropic", True),
    "sdk_gemini_stream": _sdk_case("gemini", True),
    "ollama": {"httpx": ollama_httpx, "ours": ollama_ours},
    **long_line.cases(),
    **tool_call.cases(),
    **route_case.cases(),
}
ASYNC_CASES: dict[str, dict[str, Callable[[int], Any]]] = {
    "async": {
        "aiohttp": async_aiohttp,
        "httpx": async_httpx,
        "ours": async_ours,
        "openai": async_openai,
        "litellm": async_litellm,
        "rlm013": async_rlm013,
    }
}
MEMORY_CASES = {"httpx": seq_httpx, "httpx2": seq_httpx2, "ours": seq_ours}


def _expected(case: str) -> object:
    """What a case's operation returns (the text, or for the tool-call cases the finish
    reason, tool name and parsed arguments); None when its operations check themselves."""
    if case in fixtures.LONG_LINES:
        return None
    if case in tool_call.PREFIXES:
        return tool_call.EXPECTED
    return STREAM_TEXT if "stream" in case else REPLY


class Profiler:
    """`--profile N`: cProfile around the timed loop, top N functions to stderr."""

    def __init__(self, lines: int) -> None:
        self.lines = lines
        self.profile: Any = None

    def __enter__(self) -> None:
        if self.lines:
            import cProfile

            self.profile = cProfile.Profile()
            self.profile.enable()

    def __exit__(self, *exc: object) -> None:
        if self.profile is not None:
            import pstats

            self.profile.disable()
            stats = pstats.Stats(self.profile, stream=sys.stderr)
            stats.sort_stats("tottime").print_stats(self.lines)
            stats.sort_stats("cumulative").print_stats(self.lines)


def run_sync(
    case: str, make: Callable[[int], Op], port: int, n: int, warmup: int, profile: int = 0
) -> dict:
    call = make(port)
    expected = _expected(case)
    first = call()
    if expected is not None:
        _check(first, expected, f"{case} contender")
    for _ in range(warmup):
        call()
    with Profiler(profile):
        started = time.perf_counter()
        for _ in range(n):
            call()
        seconds = time.perf_counter() - started
    result: dict[str, Any] = {"ops": n, "seconds": seconds, "us_per_op": seconds / n * 1e6}
    check_after = getattr(call, "check_after", None)  # e.g. route: all calls shared one route
    if check_after is not None:
        result.update(check_after())
    rows = ledger_cases.check_rows(1 + warmup + n)  # None: the ledger is off
    if rows is not None:
        result["ledger_rows"] = rows
    return result


def run_async(make: Callable[[int], Any], port: int, n: int, warmup: int, profile: int = 0) -> dict:
    setup, batch, teardown = make(port)

    async def main() -> dict:
        await setup()
        try:
            first = await batch()
            for text in first:
                _check(text, REPLY, "async contender")
            for _ in range(warmup):
                await batch()
            with Profiler(profile):
                started = time.perf_counter()
                for _ in range(n):
                    await batch()
                seconds = time.perf_counter() - started
        finally:
            await teardown()
        return {
            "ops": n,
            "seconds": seconds,
            "us_per_op": seconds / n * 1e6,
            "us_per_call": seconds / (n * CONCURRENCY) * 1e6,
        }

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description="Run one benchmark contender.")
    parser.add_argument("case")
    parser.add_argument("contender")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--profile", type=int, default=0, help="print the top N of cProfile")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    try:
        if args.case in SYNC_CASES:
            make = SYNC_CASES[args.case][args.contender]
            result = run_sync(args.case, make, args.port, args.n, args.warmup, args.profile)
        elif args.case in ASYNC_CASES:
            make_async = ASYNC_CASES[args.case][args.contender]
            result = run_async(make_async, args.port, args.n, args.warmup, args.profile)
        elif args.case == "memory":
            result = memory(MEMORY_CASES[args.contender], args.port, args.n)
        elif args.case == "discover":
            result = discover(args.contender, args.timeout, args.n)
        else:
            raise SystemExit(f"unknown case {args.case!r}")
    except Skip as why:
        result = {"skip": str(why)}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
