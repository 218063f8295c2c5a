"""`examples/agent_loop.py` runs as documented, and its two tools are safe.

The example runs as a subprocess with no model (the built-in local server, no key): the
default prompt makes the "model" call both tools, and the final answer carries both results.
The tools are also tested directly: `read_file` stays under the current directory and caps
what it reads; `evaluate` does arithmetic and nothing else.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from cli_process import TIMEOUT_S, cli_env

from rlm_code.testing import LocalProtocolServer, ScriptedReply

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "agent_loop.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("agent_loop_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def in_dir(tmp_path: Path) -> Iterator[Path]:
    """The test runs in `tmp_path/work` (the tools' current directory)."""
    work = tmp_path / "work"
    work.mkdir()
    previous = Path.cwd()
    os.chdir(work)
    try:
        yield work
    finally:
        os.chdir(previous)


def run_python(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python *args` in `tmp_path` as a user would run it: the CLI tests' environment (no key,
    no user config), output captured, bounded by the CLI tests' timeout."""
    return subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=cli_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )


def readme_snippet(heading: str) -> str:
    """The first Python block after `heading` in the README, as a reader would copy it."""
    readme = (EXAMPLE.parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index(heading) :]
    found = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert found is not None
    return found.group(1)


def test_runs_with_no_model_and_calls_both_tools(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("Project notes: hello from the readme.")
    result = run_python(tmp_path, str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert '-> read_file({"path": "README.md"})' in lines
    assert "<- 'Project notes: hello from the readme.'" in lines
    assert '-> evaluate({"expression": "(17 + 4) * 2 ** 3"})' in lines
    assert "<- '168'" in lines
    assert lines[-1] == "answer: Tool result: Project notes: hello from the readme.; 168"


def test_unknown_model_is_one_error_line(tmp_path: Path) -> None:
    result = run_python(tmp_path, str(EXAMPLE), "--model", "nope/x", "hi")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error: ") and "nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_file_reads_under_the_current_directory_only(
    example: ModuleType, in_dir: Path
) -> None:
    (in_dir / "sub").mkdir()
    (in_dir / "sub" / "a.txt").write_text("inside")
    (in_dir.parent / "secret.txt").write_text("outside")
    (in_dir / "link.txt").symlink_to(in_dir.parent / "secret.txt")
    assert example.read_file("sub/a.txt") == "inside"
    assert example.read_file("./sub/../sub/a.txt") == "inside"
    for path in ("../secret.txt", str(in_dir.parent / "secret.txt"), "link.txt", "/etc/passwd"):
        with pytest.raises(ValueError, match="outside the current directory"):
            example.read_file(path)
    assert example.run_tool("read_file", {"path": "../secret.txt"}).startswith("error: ")
    assert example.run_tool("read_file", {"path": "missing.txt"}).startswith("error: ")
    assert example.run_tool("read_file", {"path": "sub"}).startswith("error: ")  # a directory


def test_read_file_caps_the_size(example: ModuleType, in_dir: Path) -> None:
    (in_dir / "big.txt").write_text("x" * (example.MAX_FILE_BYTES + 5000))
    text = example.read_file("big.txt")
    assert text == "x" * example.MAX_FILE_BYTES + "\n[truncated]"


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("1 + 2 * 3", "7"),
        ("(17 + 4) * 2 ** 3", "168"),
        ("7 // 2 + 7 % 2", "4"),
        ("-(3 - 5) + +1", "3"),
        ("1 / 4", "0.25"),
        ("2 ** -1", "0.5"),
        (" 2.5 * 2 ", "5.0"),
    ],
)
def test_evaluate_does_arithmetic(example: ModuleType, expression: str, value: str) -> None:
    assert example.evaluate(expression) == value


@pytest.mark.parametrize(
    "expression",
    [
        "__import__('os').system('true')",
        "open('x')",
        "a + 1",
        "(1).__class__",
        "[1, 2]",
        "'a' * 3",
        "True + 1",
        "1 if 1 else 2",
        "lambda: 1",
        "2 ** 1000",
        "(10 ** 7) ** 2",
        "(-8) ** 0.5",
        "1 < 2",
        "1 +",
        "1 / 0",
        "9" * 300,
    ],
)
def test_evaluate_refuses_everything_else(example: ModuleType, expression: str) -> None:
    result = example.run_tool("evaluate", {"expression": expression})
    assert result.startswith("error: "), result


def test_unknown_tool_and_bad_arguments_are_errors_for_the_model(example: ModuleType) -> None:
    assert example.run_tool("rm", {}) == "error: no tool named 'rm'"
    assert example.run_tool("evaluate", {"expr": "1"}).startswith("error: ")


def test_the_loop_stops_after_max_turns(
    example: ModuleType, fresh_server: LocalProtocolServer
) -> None:
    from rlm_code import ConfigManager, LLMConnector

    turns = example.MAX_TURNS
    fresh_server.queue_replies(
        [ScriptedReply(tool_calls=[("evaluate", {"expression": "1 + 1"})])] * turns
    )
    with LLMConnector(config_manager=ConfigManager()) as connector:
        connector.connect_to_model("vllm/test-model", base_url=fresh_server.openai_base_url)
        assert example.agent(connector, "loop forever") == f"(stopped after {turns} turns)"
    bodies = [r.json for r in fresh_server.requests if r.path == "/v1/chat/completions"]
    assert len(bodies) == turns
    last = bodies[-1]["messages"]
    assert [m["role"] for m in last[-3:]] == ["tool", "assistant", "tool"]
    assert last[-1]["content"] == "2"


def test_readme_tools_snippet_runs_as_written(tmp_path: Path) -> None:
    """The README's "Tools, reasoning and structured output" sample, run with no key."""
    snippet = readme_snippet("## Tools, reasoning and structured output")
    result = run_python(tmp_path, "-c", snippet)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "Tool result: 4 stop",
        "{'city': 'Echo: Where is the Eiffel Tower?'}",
        "Echo: Why is the sky blue?",
        "Thinking about: Why is the sky blue?",
    ]
    assert lines[4].startswith("Usage(input_tokens=5, output_tokens=")


def test_readme_cost_and_budget_snippet_runs_as_written(tmp_path: Path) -> None:
    """The README's "Cost, usage scopes and budgets" sample prints what its comments say."""
    snippet = readme_snippet("## Cost, usage scopes and budgets")
    result = run_python(tmp_path, "-c", snippet)
    assert result.returncode == 0, result.stderr
    expected = [
        line.split("# ")[-1].strip()
        for line in snippet.splitlines()
        if "print(" in line and "# " in line
    ]
    assert result.stdout.splitlines() == expected
