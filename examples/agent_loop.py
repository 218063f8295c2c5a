"""A complete tool loop: the model calls Python functions until it can answer.

    python examples/agent_loop.py                        # the built-in local server, no key
    python examples/agent_loop.py --model anthropic/claude-sonnet-4-5 "What is in README.md?"

The tools are plain typed functions: `tools=[read_file, evaluate]` gives the model their
names, docstrings and argument schemas. Each turn appends `resp.message` (which carries what
the provider needs replayed: tool calls, reasoning, signatures) and one `tool` message per
call, so the same loop works on every provider with no provider-specific code.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rlm_code import ConfigManager, LLMConnector, ModelError
from rlm_code.testing import run_local_server

MAX_TURNS = 8
MAX_FILE_BYTES = 20_000
# The local server calls a tool for each user line `call NAME {json}`; a real model decides.
LOCAL_PROMPT = (
    'call read_file {"path": "README.md"}\ncall evaluate {"expression": "(17 + 4) * 2 ** 3"}'
)
MODEL_PROMPT = (
    "Read README.md and say in one sentence what it is about; then compute (17 + 4) * 2 ** 3."
)


def read_file(path: str) -> str:
    """Read a text file under the current directory (at most 20 kB)."""
    root = Path.cwd().resolve()
    target = (root / path).resolve()
    if not target.is_relative_to(root):
        raise ValueError(f"{path} is outside the current directory")
    with target.open("rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    text = data[:MAX_FILE_BYTES].decode("utf-8", errors="replace")
    return text + ("\n[truncated]" if len(data) > MAX_FILE_BYTES else "")


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}  # fmt: skip
_UNARY: dict[type, Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}


def evaluate(expression: str) -> str:
    """Evaluate arithmetic: numbers, + - * / // % **, unary signs and parentheses."""
    if len(expression) > 200:
        raise ValueError("expression too long (200 characters at most)")

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return node.value
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](value(node.operand))
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.Pow) and (abs(right) > 100 or abs(left) > 10**6):
                raise ValueError("exponent or base too large (|exponent| <= 100, |base| <= 10**6)")
            result = _BINARY[type(node.op)](left, right)
            if isinstance(result, complex):
                raise ValueError("the result is not a real number")
            return result
        raise ValueError(f"not allowed in arithmetic: {ast.unparse(node)!r}")

    return str(value(ast.parse(expression.strip(), mode="eval").body))


TOOLS = {tool.__name__: tool for tool in (read_file, evaluate)}


def run_tool(name: str, arguments: dict[str, Any]) -> str:
    """The tool's result, or the error as text: the model reads it and can try again."""
    try:
        return str(TOOLS[name](**arguments))
    except KeyError:
        return f"error: no tool named {name!r}"
    except (TypeError, ValueError, ArithmeticError, OSError, SyntaxError) as exc:
        return f"error: {exc}"


def agent(connector: LLMConnector, prompt: str) -> str:
    """Ask, run the tools the model calls, send their results back; repeat until it answers."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
    for _ in range(MAX_TURNS):
        resp = connector.complete(messages=messages, tools=list(TOOLS.values()))
        messages.append(resp.message)
        if not resp.tool_calls:
            return resp.text
        for call in resp.tool_calls:
            result = run_tool(call.name, call.arguments)
            print(f"-> {call.name}({json.dumps(call.arguments)})\n<- {result[:200]!r}")
            messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    return f"(stopped after {MAX_TURNS} turns)"


def main() -> None:
    parser = argparse.ArgumentParser(description="A tool loop with two Python tools.")
    parser.add_argument("--model", help="provider/model; default: the built-in local server")
    parser.add_argument("prompt", nargs="?", help="what to ask")
    args = parser.parse_args()
    prompt = args.prompt or (MODEL_PROMPT if args.model else LOCAL_PROMPT)
    with contextlib.ExitStack() as stack:
        connector = stack.enter_context(LLMConnector(config_manager=ConfigManager()))
        try:
            if args.model:  # the key comes from the provider's env var (ANTHROPIC_API_KEY, ...)
                connector.connect_to_model(args.model)
            else:  # no key, no network: the built-in local server
                server = stack.enter_context(run_local_server())
                connector.connect_to_model("vllm/test-model", base_url=server.openai_base_url)
            answer = agent(connector, prompt)
        except ModelError as exc:
            raise SystemExit(f"error: {exc}") from None
    print("answer:", answer)


if __name__ == "__main__":
    main()
