"""Run every benchmark case against nginx, in rounds, and write the tables into BENCHMARKS.md.

    python bench/runner.py --port PORT --ours-venv DIR --old-venv DIR [--rounds 5] [--quick]

Started by `bench/run.sh` (which builds the virtual environments and runs nginx). Each
contender runs in a fresh process (`bench/contenders.py`); every round runs every contender of
a case once, in a rotated order (reversed on odd rounds), so slow drift of the machine spreads
over all of them. The table reports the median over rounds and its ratio to the case's
baseline, measured in the same run. Raw numbers go to `bench/results/latest.json`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
import fixtures  # noqa: E402
import ledger_cases  # noqa: E402
import route_case  # noqa: E402
import startup  # noqa: E402

CONTENDERS = HERE / "contenders.py"
BENCHMARKS_MD = REPO / "BENCHMARKS.md"
STARTUP_KEYS = {"pass", "help", "user_httpx2", "user_ours", "user_ours_ledger"}
START_MARK = "<!-- bench:results:start -->"
END_MARK = "<!-- bench:results:end -->"


@dataclass
class Contender:
    name: str  # the contender's name in contenders.py
    label: str  # how the table names it
    venv: str = "ours"  # "ours" or "old" (rlm-code 0.1.13)
    n: int | None = None  # operations per process (None: the case's default)
    warmup: int | None = None
    ledger: bool = False  # run with the usage ledger on, a fresh file per process


@dataclass
class Case:
    key: str  # the case's name in contenders.py
    title: str
    unit: str  # what one operation is
    baseline: str
    contenders: list[Contender]
    n: int
    warmup: int
    target: float | None = None  # ours / baseline must be at most this
    note: str = ""
    # Contenders besides `ours` listed in the targets table, for information: name -> title.
    info: dict[str, str] = field(default_factory=dict)
    # (with, without): the section also gives the per-op difference, paired by round.
    delta: tuple[str, str] | None = None
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def build_cases(quick: bool) -> list[Case]:
    """The cases and their counts; `quick` divides the counts for a smoke run."""
    q = 10 if quick else 1

    def n(value: int) -> int:
        return max(1, value // q)

    sdk_cases = []
    for sdk, label in (("openai", "OpenAI"), ("anthropic", "Anthropic"), ("gemini", "Gemini")):
        direct = {
            "openai": "`OpenAI().chat.completions.create`",
            "anthropic": "`Anthropic().messages.create`",
            "gemini": "`genai.Client().models.generate_content`",
        }[sdk]
        sdk_cases.append(
            Case(
                f"sdk_{sdk}",
                f"4. {label} SDK adapter, whole replies",
                "call",
                "direct",
                [Contender("direct", f"{direct} (baseline)"), Contender("ours", "ours")],
                n=n(1000),
                warmup=50,
                target=1.1,
            )
        )
        sdk_cases.append(
            Case(
                f"sdk_{sdk}_stream",
                f"4. {label} SDK adapter, 200-chunk streams",
                "stream",
                "direct",
                [
                    Contender("direct", f"{direct}, streamed (baseline)"),
                    Contender("ours", "ours (`stream_response`)"),
                ],
                n=n(100),
                warmup=5,
                target=1.1,
            )
        )
    return [
        Case(
            "seq",
            "1. Sequential non-streamed calls (openai-compatible path)",
            "call",
            "httpx",
            [
                Contender("httpx", "bare `httpx.Client` POST + `json.loads` (baseline)"),
                Contender("httpx2", "bare `httpx2.Client` POST + `json.loads`"),
                Contender("ours", "ours: `connect_to_model('vllm/bench')` + `generate_response`"),
                Contender("openai", "`openai` SDK directly"),
                Contender("litellm", "`litellm.completion`", n=n(300), warmup=10),
                Contender("rlm013", "rlm-code 0.1.13 `generate_response`", venv="old"),
            ],
            n=n(2000),
            warmup=100,
            target=1.15,
        ),
        Case(
            "stream",
            "2. One 200-chunk streamed reply",
            "stream",
            "httpx",
            [
                Contender("httpx", "bare `httpx` `iter_lines` + `json.loads` (baseline)"),
                Contender("httpx2", "bare `httpx2` `iter_lines` + `json.loads`"),
                Contender("ours", "ours: `stream_response`"),
                Contender("openai", "`openai` SDK, `stream=True`", n=n(100), warmup=5),
                Contender(
                    "litellm", "`litellm.completion(stream=True)`", n=max(3, n(20)), warmup=2
                ),
                Contender("rlm013", "rlm-code 0.1.13", venv="old", n=1, warmup=0),
            ],
            n=n(300),
            warmup=10,
            target=1.3,
        ),
        Case(
            "tools_seq",
            "9. A whole reply carrying one tool call (openai-compatible path)",
            "call",
            "httpx2",
            [
                Contender(
                    "httpx2",
                    "bare `httpx2.Client` POST + `json.loads` of body and arguments (baseline)",
                ),
                Contender("httpx", "bare `httpx.Client`, the same"),
                Contender("ours", "ours: `complete(tools=[...])`, `tool_calls[0].arguments`"),
                Contender("openai", "`openai` SDK directly, `json.loads(arguments)`"),
            ],
            n=n(2000),
            warmup=100,
            target=1.15,
        ),
        Case(
            "tools_stream",
            "9. The same tool call streamed (20 argument fragments)",
            "stream",
            "httpx2",
            [
                Contender(
                    "httpx2",
                    "bare `httpx2` `iter_lines`, fragments joined, `json.loads` (baseline)",
                ),
                Contender("httpx", "bare `httpx`, the same"),
                Contender("ours", "ours: `stream(tools=[...])` to the end, `.response.tool_calls`"),
                Contender("openai", "`openai` SDK, `stream=True`, fragments joined", n=n(200)),
            ],
            n=n(1000),
            warmup=50,
            target=1.3,
        ),
        Case(
            "seq_ledger",
            "10. Sequential calls with the usage ledger on (case 1's fixture and counts)",
            "call",
            "httpx2",
            [
                Contender("httpx2", "bare `httpx2.Client` POST + `json.loads` (baseline)"),
                Contender(
                    "ours",
                    "ours, ledger on (a fresh SQLite file per process): `generate_response`",
                    ledger=True,
                ),
                Contender("ours_off", "ours, ledger off (`RLM_CODE_LEDGER=off`), same run"),
            ],
            n=n(2000),
            warmup=100,
            target=ledger_cases.SEQ_LEDGER_TARGET,
            info={"ours_off": "10. The same calls with the ledger off (as every other row)"},
            delta=("ours", "ours_off"),
        ),
        Case(
            "route",
            "11. Sub-model calls through a pooled route (`generate_response_with_model`)",
            "call",
            "current",
            [
                Contender(
                    "current",
                    "ours: `generate_response` on the current connection (baseline)",
                ),
                Contender(
                    "ours",
                    "ours: `generate_response_with_model(prompt, 'test-model', "
                    "'openai-compatible', base_url=...)`, no connection",
                ),
                Contender("httpx2", "bare `httpx2.Client` POST + `json.loads`"),
            ],
            n=n(2000),
            warmup=100,
            target=route_case.TARGET,
        ),
        Case(
            "async",
            "3. 64 concurrent async calls (`asyncio.gather`)",
            "batch of 64",
            "aiohttp",
            [
                Contender("aiohttp", "bare `aiohttp.ClientSession` (baseline)"),
                Contender("httpx", "bare `httpx.AsyncClient`"),
                Contender("ours", "ours: `agenerate_response`"),
                Contender("openai", "`AsyncOpenAI`", n=n(20), warmup=2),
                Contender("litellm", "`litellm.acompletion`", n=max(2, n(8)), warmup=1),
                Contender("rlm013", "rlm-code 0.1.13", venv="old", n=1, warmup=0),
            ],
            n=n(40),
            warmup=3,
            target=1.5,
        ),
        *sdk_cases,
        *[
            Case(
                key,
                f"8. One {size / 1e6:g} MB SSE line (openai_compatible adapter)",
                "stream with one long line",
                "openai",
                [
                    Contender("openai", "`openai` SDK, `stream=True` (baseline)"),
                    Contender("httpx2", "bare `httpx2` `iter_lines` + `json.loads`"),
                    Contender(
                        "ours",
                        "ours: `stream_response`"
                        + (
                            " (refused: typed `ResponseFormatError`, 16 MiB line cap)"
                            if size > 16 * 1024 * 1024
                            else ""
                        ),
                    ),
                ],
                n=max(1, n(5)),
                warmup=1,
            )
            for key, size in fixtures.LONG_LINES.items()
        ],
        Case(
            "ollama",
            "Extra: Ollama `/api/chat`, sequential (for information)",
            "call",
            "httpx",
            [
                Contender("httpx", "bare `httpx.Client` POST + `json.loads` (baseline)"),
                Contender("ours", "ours: `connect_to_model('ollama/bench')` + `generate_response`"),
            ],
            n=n(1000),
            warmup=50,
        ),
    ]


# -- environment --------------------------------------------------------------------------------

_DROP = re.compile(
    r"(_API_KEY|_BASE_URL|_API_BASE|^OLLAMA_HOST$|^https?_proxy$|^all_proxy$|"
    r"^PYTHONDONTWRITEBYTECODE$|^PYTHONPATH$|^RLM_CODE_)",
    re.IGNORECASE,
)


def child_env(scratch: Path) -> dict[str, str]:
    """The environment of every timed process: no keys, no proxies, a throwaway config dir,
    the usage ledger off and the user data dir in `scratch` (`ledger_cases.isolate`; the
    ledger rows turn it back on, never in the real user data dir).

    `PYTHONDONTWRITEBYTECODE` is dropped: users' installs have `.pyc` files, and cold imports
    without them measure the compiler, not the code.
    """
    env = {k: v for k, v in os.environ.items() if not _DROP.search(k)}
    env.update(
        RLM_CODE_CONFIG_DIR=str(scratch / "config"),
        XDG_CONFIG_HOME=str(scratch / "xdg"),
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        NO_PROXY="127.0.0.1,localhost",
        PYTHONWARNINGS="ignore",
        NO_COLOR="1",
    )
    ledger_cases.isolate(env, scratch)
    return env


T = TypeVar("T")


def round_order(items: list[T], r: int) -> list[T]:
    """Round `r`'s order: forward on even rounds, backward on odd ones, rotated every two
    rounds, so that over the rounds each contender runs early and late, before and after
    each other one."""
    base = list(items) if r % 2 == 0 else list(reversed(items))
    k = (r // 2) % len(base)
    return base[k:] + base[:k]


def summarize(results: dict[str, dict[str, Any]], baseline: str, unit: str) -> None:
    """Median per contender, and its ratio to the baseline.

    `ratio` is paired: the median over rounds of (contender / baseline in the same round), so
    drift of the machine between rounds (other processes, frequency) cancels out.
    `ratio_of_medians` is kept beside it in the raw results.
    """
    key = f"median_{unit}"
    for slot in results.values():
        if slot["runs"]:
            slot[key] = statistics.median(slot["runs"])
    base = results.get(baseline, {})
    base_rounds = base.get("by_round", {})
    for slot in results.values():
        pairs = [
            v / base_rounds[r] for r, v in slot.get("by_round", {}).items() if r in base_rounds
        ]
        if pairs and base.get(key):
            slot["ratio"] = statistics.median(pairs)
            slot["ratio_of_medians"] = slot[key] / base[key]


class Runner:
    def __init__(self, args: argparse.Namespace, scratch: Path) -> None:
        self.port = args.port
        self.pythons = {
            "ours": str(Path(args.ours_venv) / "bin" / "python"),
            "old": str(Path(args.old_venv) / "bin" / "python"),
        }
        self.old_ok = Path(self.pythons["old"]).exists() and self._old_installed()
        self.litellm_ok = self._has("ours", "litellm")
        self.scratch = scratch
        self.env = child_env(scratch)
        self.cwd = str(scratch)
        self.log_path = scratch / "stderr.log"

    def _has(self, venv: str, module: str) -> bool:
        code = f"import importlib.util,sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
        return subprocess.run([self.pythons[venv], "-c", code], check=False).returncode == 0

    def _old_installed(self) -> bool:
        code = "import importlib.metadata as m; print(m.version('rlm-code'))"
        out = subprocess.run(
            [self.pythons["old"], "-c", code], capture_output=True, text=True, check=False
        )
        return out.stdout.strip() == "0.1.13"

    def run_one(self, case: str, c: Contender, n: int, warmup: int) -> dict[str, Any]:
        if c.venv == "old" and not self.old_ok:
            return {"skip": "rlm-code 0.1.13 did not install from PyPI (see bench/run.sh log)"}
        if c.name == "litellm" and not self.litellm_ok:
            return {"skip": "litellm did not install from PyPI (see bench/run.sh log)"}
        cmd = [self.pythons[c.venv], str(CONTENDERS), case, c.name]
        cmd += ["--port", str(self.port), "--n", str(n), "--warmup", str(warmup)]
        env = self.env
        if c.ledger:
            path = ledger_cases.fresh_path(self.scratch, f"{case}-{c.name}")
            env = {**env, ledger_cases.LEDGER_ENV: str(path)}
        try:
            proc = subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                env=env,
                cwd=self.cwd,
                timeout=600,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return {"error": "timed out after 600 s"}
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"== {case} {c.name}\n{proc.stderr}")
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            return {"error": f"exit {proc.returncode}: {tail[:200]}"}
        result: dict[str, Any] = json.loads(lines[-1])
        return result

    # -- ratio cases --------------------------------------------------------------------------

    def run_case(self, case: Case, rounds: int) -> None:
        print(
            f"[bench] {case.key}: {len(case.contenders)} contenders x {rounds} rounds", flush=True
        )
        for c in case.contenders:
            case.results[c.name] = {"runs": [], "by_round": {}, "raw": []}
        for r in range(rounds):
            for c in round_order(case.contenders, r):
                slot = case.results[c.name]
                if "skip" in slot or "error" in slot:
                    continue
                warmup = case.warmup if c.warmup is None else c.warmup
                result = self.run_one(case.key, c, c.n or case.n, warmup)
                if "skip" in result or "error" in result:
                    slot.update(result)
                    print(f"[bench]   {c.name}: {result}", flush=True)
                    continue
                slot["runs"].append(result["us_per_op"])
                slot["by_round"][r] = result["us_per_op"]
                slot["raw"].append(result)
        summarize(case.results, case.baseline, "us")

    # -- cold start ---------------------------------------------------------------------------

    def cold_start(
        self,
        runs: int,
        slow_runs: int,
        ours_venv: Path,
        old_venv: Path,
        keys: set[str] | None = None,
    ) -> dict:
        """Whole-process start-up times, interleaved; median wall time in ms.

        `keys` keeps only those commands (`--only startup`: the user start-up pair, `python -c
        pass` and `rlm-code --help`).
        """
        ours_py = str(ours_venv / "bin" / "python")
        old_py = str(old_venv / "bin" / "python")
        ours_cli = str(ours_venv / "bin" / "rlm-code")
        old_skip = None if self.old_ok else "rlm-code 0.1.13 did not install"
        Env = dict[str, str] | None
        Command = tuple[str, str, list[str], bytes | None, int, str | None, Env]

        def command(key: str, label: str, argv: list[str], stdin: bytes | None = None,
                    count: int = runs, skip: str | None = None, env: Env = None,
                    ) -> Command:  # fmt: skip
            return (key, label, argv, stdin, count, skip, env)

        if (REPO / "rlm_code" / "cli" / "shell" / "loop.py").exists():
            shell = command("shell", "interactive shell: `rlm-code` with `/exit` on stdin",
                            [ours_cli], b"/exit\n")  # fmt: skip
        else:
            shell = command("shell", "interactive shell", [], count=0,
                            skip="rlm_code/cli/shell.py is not written yet")  # fmt: skip
        commands = [
            command("pass", "`python -c pass` (baseline)", [ours_py, "-c", "pass"]),
            command("help", "`rlm-code --help`", [ours_cli, "--help"]),
            shell,
            command("httpx", "`python -c 'import httpx'`", [ours_py, "-c", "import httpx"]),
            command("litellm", "`python -c 'import litellm'`", [ours_py, "-c", "import litellm"],
                    count=slow_runs, skip=None if self.litellm_ok else "litellm did not install"),
            command("old_import", "rlm-code 0.1.13: `import rlm_code.models.llm_connector`",
                    [old_py, "-c", "import rlm_code.models.llm_connector"], skip=old_skip),
            command("old_help", "rlm-code 0.1.13: `rlm-code --help`",
                    [str(old_venv / "bin" / "rlm-code"), "--help"], skip=old_skip),
        ]  # fmt: skip
        user = startup.user_commands(ours_py, self.port)
        ledger_env = ledger_cases.startup_env(self.env, self.scratch)
        ledger_label = (
            "user start-up, usage ledger on (`RLM_CODE_LEDGER` unset: the default file under a "
            "temp `XDG_DATA_HOME`), otherwise as the row above"
        )
        user.append(("user_ours_ledger", ledger_label, user[-1][2], ledger_env))
        for key, label, argv, *env in reversed(user):
            problem = startup.check_reply(argv, env[0] if env else self.env, self.cwd)
            commands.insert(2, command(key, label, argv, skip=problem, env=env[0] if env else None))
        if keys is not None:
            commands = [entry for entry in commands if entry[0] in keys]
        print(f"[bench] cold start: {len(commands)} commands x {runs} runs", flush=True)
        results: dict[str, dict[str, Any]] = {}
        active = []
        for key, label, cmd, stdin, count, skip, env in commands:
            results[key] = {"label": label, "runs": [], "by_round": {}, "count": count}
            if skip:
                results[key]["skip"] = skip
            else:
                active.append((key, cmd, stdin, count, env))
        for _key, cmd, stdin, _count, env in active:  # warm-up: page cache and .pyc files
            for _ in range(2):
                self._time_command(cmd, stdin, env)
        for r in range(runs):
            for key, cmd, stdin, count, env in round_order(active, r):
                slot = results[key]
                if r >= count or "error" in slot:
                    continue
                seconds, error = self._time_command(cmd, stdin, env)
                if error:
                    slot["error"] = error
                    print(f"[bench]   {key}: {error}", flush=True)
                else:
                    slot["runs"].append(seconds * 1000)
                    slot["by_round"][r] = seconds * 1000
        summarize(results, "pass", "ms")
        for key in ("user_ours", "user_ours_ledger"):
            if key in results and "user_httpx2" in results:
                ratio = startup.paired_ratio(results[key], results["user_httpx2"])
                if ratio is not None:
                    results[key]["ratio_vs_httpx2"] = ratio
        self._check_startup_ledger(results.get("user_ours_ledger"))
        return results

    def _check_startup_ledger(self, slot: dict[str, Any] | None) -> None:
        """The ledger-on start-up row wrote one row per process (the reply check, 2
        warm-ups, the timed runs), or it did not measure a ledger that was on."""
        if not slot or "skip" in slot or "error" in slot:
            return
        path = self.scratch / ledger_cases.STARTUP_DATA_DIR / ledger_cases.LEDGER_FILE
        want = 1 + 2 + len(slot["runs"])
        got = ledger_cases.count_rows(path) if path.exists() else 0
        slot["ledger_rows"] = got
        if got != want:
            slot["error"] = f"the ledger holds {got} rows after {want} processes"
            for key in ("median_ms", "ratio", "ratio_vs_httpx2"):
                slot.pop(key, None)

    def _time_command(
        self, cmd: list[str], stdin: bytes | None, env: dict[str, str] | None = None
    ) -> tuple[float, str | None]:
        started = time.perf_counter()
        try:
            proc = subprocess.run(
                cmd,
                input=stdin if stdin is not None else b"",
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=self.env if env is None else env,
                cwd=self.cwd,
                timeout=60,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return 0.0, "did not exit within 60 s"
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            tail = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
            return seconds, f"exit {proc.returncode}: {tail[:200]}"
        return seconds, None

    # -- discovery and memory ----------------------------------------------------------------------

    def single(self, case: str, c: Contender, n: int) -> dict:
        if c.venv == "old" and not self.old_ok:
            return {"skip": "rlm-code 0.1.13 did not install"}
        result = self.run_one(case, c, n, 0)
        return result


# -- reporting ------------------------------------------------------------------------------------


def fmt_us(us: float) -> str:
    if us >= 10_000:
        return f"{us / 1000:,.1f} ms"
    if us >= 1000:
        return f"{us / 1000:,.2f} ms"
    return f"{us:,.0f} µs"


def verdict(ratio: float | None, target: float | None) -> str:
    if ratio is None or target is None:
        return ""
    if ratio <= target:
        return "met"
    return f"**missed by {(ratio / target - 1) * 100:.0f}%**"


def code_state() -> str:
    """Which rlm_code was measured: the commit, and how many files differ from it."""

    def git(*cmd: str) -> str:
        out = subprocess.run(["git", "-C", str(REPO), *cmd], capture_output=True, text=True)
        return out.stdout.strip() if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain", "--", "rlm_code").splitlines() if line]
    if not changed:
        return f"commit {head}, clean"
    return f"commit {head} plus {len(changed)} uncommitted or untracked files under rlm_code/"


def machine_info(ours_python: str, old_python: str) -> dict[str, str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try: out[name] = m.version(name)\n"
        "    except m.PackageNotFoundError: out[name] = 'not installed'\n"
        "print(json.dumps(out))\n"
    )
    names = [
        "rlm-code",
        "httpx",
        "httpx2",
        "aiohttp",
        "openai",
        "anthropic",
        "google-genai",
        "litellm",
    ]
    for python, tag in ((ours_python, ""), (old_python, " (0.1.13 venv)")):
        if not Path(python).exists():
            continue
        out = subprocess.run(
            [python, "-c", code, *names[: 1 if tag else None]],
            capture_output=True,
            text=True,
            check=False,
        )
        if out.returncode == 0:
            for name, version in json.loads(out.stdout).items():
                versions[name + tag] = version
    nginx = subprocess.run(
        ["nginx", "-v"], capture_output=True, text=True, check=False
    ).stderr.strip()
    py = subprocess.run(
        [ours_python, "-VV"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "cpu": cpu,
        "nproc": str(os.cpu_count()),
        "python": py,
        "os": f"{platform.system()} {platform.release()}",
        "nginx": nginx.replace("nginx version: ", "").replace("nginx/", ""),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def row(*cells: object) -> str:
    """One markdown table row."""
    return "| " + " | ".join(str(c) for c in cells) + " |"


def section_head(title: str, text: str, headers: tuple[str, ...], align: str) -> list[str]:
    """The start of one results section: heading, what it measures, table header; `align` has
    one letter per column, `l` or `r` (numbers, right-aligned)."""
    rule = row(*("---:" if a == "r" else "---" for a in align))
    return [f"### {title}", "", text, "", row(*headers), rule]


def why_not(*slots: dict[str, Any]) -> str:
    for slot in slots:
        for key in ("skip", "error"):
            if slot.get(key):
                return str(slot[key])
    return "no data"


def render_targets(
    cases: list[Case],
    cold: dict[str, dict[str, Any]],
    discover: dict[str, dict[str, Any]],
    memory: dict[str, dict[str, Any]],
) -> list[str]:
    out = ["### Targets", ""]
    out.append(row("case", "ours vs baseline", "ratio", "target", "verdict"))
    out.append(row("---", "---", "---:", "---:", "---"))
    for case in cases:
        if case.target is None:
            continue
        ours = case.results.get("ours", {})
        base = case.results.get(case.baseline, {})
        base_label = next(c.label for c in case.contenders if c.name == case.baseline)
        base_label = base_label.replace(" (baseline)", "")
        target = f"<= {case.target:g}x"
        if "ratio" in ours:
            versus = f"{fmt_us(ours['median_us'])} vs {fmt_us(base['median_us'])} ({base_label})"
            ratio = f"{ours['ratio']:.2f}x"
            out.append(row(case.title, versus, ratio, target, verdict(ours["ratio"], case.target)))
        else:
            skipped = f"skipped: {why_not(ours, base)}"
            out.append(row(case.title, skipped, "", target, "not measured"))
        for name, title in case.info.items():
            slot = case.results.get(name, {})
            if "ratio" in slot:
                versus = f"{fmt_us(slot['median_us'])} vs {fmt_us(base['median_us'])}"
                versus += f" ({base_label})"
                out.append(row(title, versus, f"{slot['ratio']:.2f}x", "none", "information"))
            else:
                out.append(row(title, f"n/a: {why_not(slot)}", "", "none", "information"))
    base_ms = cold.get("pass", {}).get("median_ms")
    user, user_base = cold.get("user_ours", {}), cold.get("user_httpx2", {})
    title = "5. Start-up as a user feels it: connect + one reply, whole process"
    target = f"<= {startup.USER_TARGET:g}x"
    if "ratio_vs_httpx2" in user:
        versus = (
            f"{user['median_ms']:.1f} ms vs {user_base['median_ms']:.1f} ms "
            "(bare `httpx2` script, same request)"
        )
        ratio = user["ratio_vs_httpx2"]
        out.append(row(title, versus, f"{ratio:.2f}x", target, verdict(ratio, startup.USER_TARGET)))
    elif cold:
        out.append(row(title, f"skipped: {why_not(user, user_base)}", "", target, "not measured"))
    on = cold.get("user_ours_ledger", {})
    title = "5. The same start-up with the usage ledger on (issue 13)"
    if "ratio_vs_httpx2" in on:
        versus = f"{on['median_ms']:.1f} ms vs {user_base['median_ms']:.1f} ms (the same script)"
        out.append(row(title, versus, f"{on['ratio_vs_httpx2']:.2f}x", "none", "information"))
    elif on:
        out.append(row(title, f"n/a: {why_not(on)}", "", "none", "information"))
    for key, target_ratio in (("help", 4.0), ("shell", 4.0)):
        slot = cold.get(key, {})
        if not slot:
            continue
        title = f"5. Cold start: {slot.get('label', key)}"
        target = f"<= {target_ratio:g}x"
        if "ratio" in slot:
            versus = f"{slot['median_ms']:.1f} ms vs {base_ms:.1f} ms (`python -c pass`)"
            ratio = f"{slot['ratio']:.2f}x"
            out.append(row(title, versus, ratio, target, verdict(slot["ratio"], target_ratio)))
        elif cold:
            out.append(row(title, f"skipped: {why_not(slot)}", "", target, "not measured"))
    d = discover.get("ours", {})
    if "median_s" in d:
        ratio = d["median_s"] / d["timeout_s"]
        title = (
            f"6. `discover_local_providers(timeout={d['timeout_s']:g})`, {d['ports']} silent ports"
        )
        versus = f"{d['median_s']:.3f} s vs one timeout"
        out.append(row(title, versus, f"{ratio:.2f}x", "~1x (<= 1.2x)", verdict(ratio, 1.2)))
    elif discover:
        out.append(row("6. Discovery, silent ports", f"skipped: {why_not(d)}", "", "~1x", "n/a"))
    m = memory.get("ours", {})
    if "growth_kb" in m:
        ok = "met" if m["growth_kb"] <= 512 else f"**missed: {m['growth_kb']} KB**"
        httpx_growth = memory.get("httpx", {}).get("growth_kb", "?")
        title = f"7. RSS growth, call {m['mark']:,} to {m['ops']:,}"
        versus = f"{m['growth_kb']} KB (bare httpx: {httpx_growth} KB)"
        out.append(row(title, versus, "", "flat (<= 512 KB)", ok))
    out.append("")
    return out


def render_case(case: Case) -> list[str]:
    out = section_head(
        case.title,
        f"One operation = one {case.unit}; {case.n:,} per process unless noted "
        "(column ops/process); median over rounds.",
        ("contender", "median per op", "x baseline", "runs (min - max)", "ops/process"),
        "lrrrr",
    )
    for c in case.contenders:
        slot = case.results.get(c.name, {})
        if "median_us" in slot:
            runs = slot["runs"]
            ratio = f"{slot['ratio']:.2f}x" if "ratio" in slot else ""
            spread = f"{fmt_us(min(runs))} - {fmt_us(max(runs))} ({len(runs)})"
            out.append(row(c.label, fmt_us(slot["median_us"]), ratio, spread, f"{c.n or case.n:,}"))
        else:
            out.append(row(c.label, f"n/a: {why_not(slot)}", "", "", ""))
    out.append("")
    if case.delta:
        out += render_delta(case, *case.delta)
    return out


def render_delta(case: Case, with_: str, without: str) -> list[str]:
    """One line: what `with_` costs over `without` per operation, paired by round."""
    a = case.results.get(with_, {}).get("by_round", {})
    b = case.results.get(without, {}).get("by_round", {})
    rounds = [r for r in a if r in b]
    if not rounds:
        return []
    diff = statistics.median(a[r] - b[r] for r in rounds)
    ratio = statistics.median(a[r] / b[r] for r in rounds)
    rows = case.results[with_]["raw"][0].get("ledger_rows")
    checked = f"; each ledger-on process's file held one row per call ({rows:,})" if rows else ""
    return [
        f"Difference per {case.unit}, paired by round: `{with_}` minus `{without}` = "
        f"{fmt_us(diff)} ({ratio:.2f}x){checked}.",
        "",
    ]


def render_cold(cold: dict[str, dict[str, Any]]) -> list[str]:
    out = section_head(
        "5. Cold start (whole processes)",
        "Wall time from spawn to exit, median over interleaved runs (2 warm-up runs each). "
        "The two user start-up rows are `python -c` scripts (`bench/startup.py`) that print the "
        "reply of one request to nginx; ours also makes the connect-time `/v1/models` check.",
        ("command", "median", "x `python -c pass`", "x bare `httpx2` script", "runs (min - max)"),
        "lrrrr",
    )
    for key, slot in cold.items():
        if "median_ms" in slot:
            runs = slot["runs"]
            spread = f"{min(runs):.1f} - {max(runs):.1f} ms ({len(runs)})"
            ratio = f"{slot.get('ratio', 0):.2f}x"
            versus = ""
            if key == "user_httpx2":
                versus = "1.00x"
            elif "ratio_vs_httpx2" in slot:
                versus = f"{slot['ratio_vs_httpx2']:.2f}x"
            out.append(row(slot["label"], f"{slot['median_ms']:.1f} ms", ratio, versus, spread))
        else:
            out.append(row(slot["label"], f"n/a: {why_not(slot)}", "", "", ""))
    out.append("")
    return out


def render_discover(discover: dict[str, dict[str, Any]]) -> list[str]:
    out = section_head(
        "6. Local discovery with every probe port silent",
        "Each local provider's base-URL env var points at its own loopback port that accepts "
        "connections and never answers; `LLMConnector().discover_local_providers(timeout=0.5)`.",
        ("implementation", "ports", "first call (cold)", "median warm call", "results"),
        "lrrrl",
    )
    old_label = "rlm-code 0.1.13 (hard-coded URLs probed one by one, moved to silent ports)"
    for name, label in (("ours", "ours"), ("rlm013", old_label)):
        slot = discover.get(name, {})
        if "median_s" in slot:
            found = f"{slot['results']} rows, {slot['healthy']} healthy"
            cold_s, warm_s = f"{slot['cold_s']:.3f} s", f"{slot['median_s']:.3f} s"
            out.append(row(label, slot["ports"], cold_s, warm_s, found))
        else:
            out.append(row(label, f"n/a: {why_not(slot)}", "", "", ""))
    out.append("")
    return out


def render_memory(memory: dict[str, dict[str, Any]]) -> list[str]:
    out = section_head(
        "7. Memory over sequential calls",
        "One process per contender; RSS read from `/proc/self/status` (VmRSS, VmHWM).",
        ("contender", "RSS after call 1", "RSS at 10%", "RSS at end", "growth 10% -> end", "peak"),
        "lrrrrr",
    )
    labels = {
        "httpx": "bare `httpx.Client`",
        "httpx2": "bare `httpx2.Client`",
        "ours": "ours (`generate_response`)",
    }
    for name, slot in memory.items():
        label = labels.get(name, name)
        if "growth_kb" in slot:
            label = f"{label}, {slot['ops']:,} calls"
            mb = [f"{slot[k] / 1024:.1f} MB" for k in ("rss_start_kb", "rss_mark_kb", "rss_end_kb")]
            growth = f"{slot['growth_kb']} KB"
            out.append(row(label, *mb, growth, f"{slot['peak_rss_kb'] / 1024:.1f} MB"))
        else:
            out.append(row(label, f"n/a: {why_not(slot)}", "", "", "", ""))
    out.append("")
    return out


def render(
    cases: list[Case],
    cold: dict[str, dict[str, Any]],
    discover: dict[str, dict[str, Any]],
    memory: dict[str, dict[str, Any]],
    info: dict[str, str],
    meta: dict[str, Any],
) -> str:
    out = [
        f"Generated by `{meta['command']}` on {meta['date']}; wall time {meta['wall_s']:.0f} s; "
        f"{meta['rounds']} rounds per case, contender order rotated each round.",
        "",
        f"- Machine: {info['nproc']} CPUs ({info['cpu']}); {info['os']}",
        f"- Python: {info['python']}",
        f"- Server: nginx {info['nginx']} on 127.0.0.1, `worker_processes 1`, keep-alive, "
        "static answers (`bench/fixtures.py`)",
        f"- Packages: {info['packages']}",
        f"- Code measured: {meta['code']}"
        + ("" if meta["code"] == meta["code_start"] else f" (at the start: {meta['code_start']})"),
        f"- Load average (1 min): {meta['load']}; other processes on the machine add noise, "
        "which the paired ratios below reduce but do not remove",
        "- `x baseline` is paired: the median over rounds of (contender / baseline in the same "
        "round); `median per op` is the median over rounds of each contender alone",
        "- Usage ledger (issue 13): off (`RLM_CODE_LEDGER=off`) for every row except the "
        "ledger-on rows of case 10 and of the start-up; `XDG_DATA_HOME` is a temp dir for every "
        f"process; {meta['ledger_check']}",
    ]
    if meta.get("quick"):
        out.append("- **Quick mode**: counts divided by 10, 2 rounds; noisy, a smoke test only.")
    out.append("")
    out += render_targets(cases, cold, discover, memory)
    for case in cases:
        out += render_case(case)
    if cold:
        out += render_cold(cold)
    if discover:
        out += render_discover(discover)
    if memory:
        out += render_memory(memory)
    return "\n".join(out)


def write_markdown(section: str) -> None:
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else ""
    block = f"{START_MARK}\n{section}\n{END_MARK}"
    if START_MARK in text and END_MARK in text:
        head, rest = text.split(START_MARK, 1)
        _, tail = rest.split(END_MARK, 1)
        text = head + block + tail
    else:
        text = (text.rstrip() + "\n\n## Results\n\n" if text else "# Benchmarks\n\n") + block + "\n"
    BENCHMARKS_MD.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ours-venv", required=True)
    parser.add_argument("--old-venv", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="counts / 10, 2 rounds: a smoke test")
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY", ""),
        help=(
            "comma-separated case keys (seq, seq_ledger, route, stream, tools_seq, tools_stream, "
            "async, sdk_openai, ..., line40, line15, ollama, cold, startup, startup_ledger, "
            "discover, memory); default $BENCH_ONLY, else every case"
        ),
    )
    parser.add_argument("--no-write", action="store_true", help="do not touch BENCHMARKS.md")
    parser.add_argument("--command", default="bash bench/run.sh")
    parser.add_argument("--started", type=float, default=None, help="epoch seconds of run.sh start")
    args = parser.parse_args()
    args.ours_venv = str(Path(args.ours_venv).absolute())  # not resolve(): keep the venv's python
    args.old_venv = str(Path(args.old_venv).absolute())
    started = time.time()
    load_start = os.getloadavg()[0]
    code_start = code_state()
    rounds = 2 if args.quick else args.rounds
    cold_runs = 5 if args.quick else args.cold_runs
    only = {s for s in args.only.split(",") if s}

    with tempfile.TemporaryDirectory(prefix="rlm-bench-") as tmp:
        scratch = Path(tmp)
        runner = Runner(args, scratch)
        cases = [c for c in build_cases(args.quick) if not only or c.key in only]
        for case in cases:
            runner.run_case(case, rounds)
        cold: dict[str, dict[str, Any]] = {}
        if not only or {"cold", "startup", "startup_ledger"} & only:
            keys = None if not only or "cold" in only else STARTUP_KEYS
            cold = runner.cold_start(
                cold_runs, max(3, cold_runs // 4), Path(args.ours_venv), Path(args.old_venv), keys
            )
        discover: dict[str, dict[str, Any]] = {}
        if not only or "discover" in only:
            print("[bench] discovery", flush=True)
            # 0.1.13 probes one URL after the other: one warm call (~6 s) is enough.
            for name, venv, calls in (("ours", "ours", 5), ("rlm013", "old", 1)):
                discover[name] = runner.single("discover", Contender(name, name, venv=venv), calls)
        memory: dict[str, dict[str, Any]] = {}
        if not only or "memory" in only:
            print("[bench] memory", flush=True)
            for name in ("httpx", "httpx2", "ours"):
                memory[name] = runner.single(
                    "memory", Contender(name, name), 1000 if args.quick else 10_000
                )
        info = machine_info(runner.pythons["ours"], runner.pythons["old"])
        stray = ledger_cases.stray_ledgers(scratch)
        if stray:
            print(f"[bench] WARNING: ledger files written by ledger-off rows: {stray}", flush=True)
        stderr_log = runner.log_path.read_text(encoding="utf-8") if runner.log_path.exists() else ""

    begin = args.started if args.started else started
    meta = {
        "command": args.command + (" --quick" if args.quick else ""),
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": time.time() - begin,
        "rounds": rounds,
        "quick": args.quick,
        "load": f"{load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end",
        "code": code_state(),
        "code_start": code_start,
        "ledger_check": (
            f"**ledger-off rows wrote {', '.join(stray)}**"
            if stray
            else "after the run no ledger file was found under it (the off rows wrote none)"
        ),
    }
    results_dir = HERE / "results"
    results_dir.mkdir(exist_ok=True)
    raw = {
        "meta": meta,
        "machine": info,
        "cases": {c.key: c.results for c in cases},
        "cold": cold,
        "discover": discover,
        "memory": memory,
    }
    (results_dir / "latest.json").write_text(json.dumps(raw, indent=2), encoding="utf-8")
    (results_dir / "stderr.log").write_text(stderr_log, encoding="utf-8")
    section = render(cases, cold, discover, memory, info, meta)
    (results_dir / "latest.md").write_text(section + "\n", encoding="utf-8")
    if not args.no_write and not only:
        write_markdown(section)
        print(f"[bench] wrote {BENCHMARKS_MD}", flush=True)
    print(section)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
