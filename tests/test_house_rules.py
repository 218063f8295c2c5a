"""Rules of the house that keep the code easy to find one's way in, checked on the source.

- No import cycle among `rlm_code` modules, counting imports inside functions too (a cycle
  hidden in a function still couples the two modules both ways). Imports under
  `if TYPE_CHECKING:` never run and are left out.
- No module over 500 lines; the facade under 400.
- The facade names no provider and branches on no adapter type; the config names no provider.
- `import rlm_code` offers the front door lazily.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from cli_process import run_python

PACKAGE = Path(__file__).resolve().parent.parent / "rlm_code"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The `rlm_code` modules one module imports, at any depth of its code."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            for alias in node.names:
                if f"{base}.{alias.name}" in modules:
                    found.add(f"{base}.{alias.name}")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {name for name in found if name in modules and name != module}


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {
        name: _imports(ast.parse(path.read_text()), name, path.name == "__init__.py", modules)
        for name, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path `[a, b, ..., a]`, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := walk(target)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := walk(start)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a"}}) is None


def test_the_import_walker_sees_function_level_imports() -> None:
    source = "def f():\n    from rlm_code.b import thing\n"
    modules = {"rlm_code.a", "rlm_code.b"}
    assert _imports(ast.parse(source), "rlm_code.a", False, modules) == {"rlm_code.b"}
    guarded = "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import rlm_code.b\n"
    assert _imports(ast.parse(guarded), "rlm_code.a", False, modules) == set()


def test_no_import_cycle_in_the_package() -> None:
    graph = import_graph()
    assert "rlm_code.models.llm_connector" in graph
    assert find_cycle(graph) is None


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_module_over_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500


def test_the_facade_stays_small_and_names_no_provider() -> None:
    source = (PACKAGE / "models" / "llm_connector.py").read_text()
    assert len(source.splitlines()) < 400
    tree = ast.parse(source)
    compared = {
        node.comparators[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.Compare)
        and isinstance(node.comparators[0], ast.Constant)
        and isinstance(node.comparators[0].value, str)
    }
    assert not compared, f"the facade compares against literal names: {compared}"
    for name in ("adapter_type ==", 'provider_id == "', "opencode", "anthropic", "gemini"):
        assert name not in source


def test_the_config_names_no_provider() -> None:
    from rlm_code.models.providers.registry import PROVIDERS

    source = (PACKAGE / "core" / "config.py").read_text().lower()
    named = [p.provider_id for p in PROVIDERS if f'"{p.provider_id}' in source]
    assert not named


def test_front_door_is_lazy_and_complete() -> None:
    probe = (
        "import json, sys\n"
        "import rlm_code\n"
        "before = sorted(m for m in sys.modules if m.startswith('rlm_code'))\n"
        "from rlm_code import LLMConnector, ConfigManager, ModelError, Response, Usage\n"
        "from rlm_code.models.llm_connector import LLMConnector as Home\n"
        "print(json.dumps([before, LLMConnector is Home, issubclass(ModelError, Exception)]))\n"
    )
    stdout = run_python(probe)
    before, same, is_error = json.loads(stdout)
    assert before == ["rlm_code"]
    assert same and is_error


def test_front_door_unknown_name_is_an_attribute_error() -> None:
    import rlm_code

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        rlm_code.Nope  # noqa: B018


def test_front_door_names_match_their_homes() -> None:
    import importlib

    import rlm_code

    assert set(rlm_code.__all__) - {"__version__"} == set(rlm_code._EXPORTS)
    for name, home in rlm_code._EXPORTS.items():
        assert hasattr(importlib.import_module(home), name), (name, home)


def test_the_type_stub_declares_every_front_door_name() -> None:
    import rlm_code

    stub = ast.parse((PACKAGE / "__init__.pyi").read_text())
    declared = {
        (node.module, alias.name)
        for node in ast.walk(stub)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if alias.asname == alias.name  # the explicit re-export form
    }
    assert declared == {(home, name) for name, home in rlm_code._EXPORTS.items()}
