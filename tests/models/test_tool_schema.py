"""`tool_schema`: tools from typed Python functions, schemas from typed classes.

This module uses `from __future__ import annotations` on purpose: every hint below is a string
until `typing.get_type_hints` resolves it, as in most modern code.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, Required, TypedDict

import pytest
from cli_process import run_python

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.tool_schema import function_tool, is_schema_model, model_schema
from rlm_code.models.types import ToolSpec

try:
    from pydantic import BaseModel, Field
except ImportError:  # pydantic is optional: its tests skip
    BaseModel = None  # type: ignore[assignment,misc]

needs_pydantic = pytest.mark.skipif(BaseModel is None, reason="pydantic is not installed")


def params(fn: Any) -> dict[str, Any]:
    return function_tool(fn).parameters


def prop(hint_fn: Any) -> dict[str, Any]:
    """The schema of the single parameter `x` of `hint_fn`."""
    return params(hint_fn)["properties"]["x"]


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Point:
    """A point on the plane.

    Attributes:
        x: distance from the left edge
        y: distance from the top edge
    """

    x: float
    y: float = 0.0
    tags: list[str] = dataclasses.field(default_factory=list)
    label: str = dataclasses.field(default="", metadata={"description": "shown next to it"})
    cached: int = dataclasses.field(default=0, init=False)


@dataclasses.dataclass
class Line:
    start: Point
    end: Point


@dataclasses.dataclass
class Tree:
    children: list[Tree]


class Options(TypedDict, total=False):
    """Search options."""

    depth: Required[int]
    pattern: str
    hidden: NotRequired[bool]


class Strict(TypedDict):
    name: str
    note: NotRequired[str]


UserId = NewType("UserId", int)


# --- type mapping ---------------------------------------------------------------------------


def test_primitives_and_none() -> None:
    def f(a: str, b: int, c: float, d: bool, e: None) -> None: ...

    assert params(f)["properties"] == {
        "a": {"type": "string"},
        "b": {"type": "integer"},
        "c": {"type": "number"},
        "d": {"type": "boolean"},
        "e": {"type": "null"},
    }


def test_the_parameters_object_is_closed_and_lists_required_names() -> None:
    def f(a: str, b: int = 1) -> None: ...

    assert params(f) == {
        "type": "object",
        "properties": {"a": {"type": "string"}, "b": {"type": "integer", "default": 1}},
        "required": ["a"],
        "additionalProperties": False,
    }


def test_no_parameters() -> None:
    def ping() -> str:
        """Check the service is up."""
        return "pong"

    assert function_tool(ping) == ToolSpec(
        "ping",
        "Check the service is up.",
        {"type": "object", "properties": {}, "required": [], "additionalProperties": False},
    )


def test_arrays() -> None:
    def f(
        a: list[int],
        b: tuple[str, ...],
        c: set[float],
        d: frozenset[str],
        e: list,
        g: Sequence[int],
    ) -> None: ...

    assert params(f)["properties"] == {
        "a": {"type": "array", "items": {"type": "integer"}},
        "b": {"type": "array", "items": {"type": "string"}},
        "c": {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
        "d": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "e": {"type": "array"},
        "g": {"type": "array", "items": {"type": "integer"}},
    }


def test_nested_arrays() -> None:
    def f(x: list[list[bool]]) -> None: ...

    assert prop(f) == {"type": "array", "items": {"type": "array", "items": {"type": "boolean"}}}


def test_dicts() -> None:
    def f(a: dict[str, int], b: dict, c: dict[str, list[str]]) -> None: ...

    assert params(f)["properties"] == {
        "a": {"type": "object", "additionalProperties": {"type": "integer"}},
        "b": {"type": "object"},
        "c": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    }


def test_optional_forms_are_a_type_list_with_null() -> None:
    def f(a: str | None, b: Optional[int], c: None | float) -> None:  # noqa: UP045, RUF036
        ...

    assert params(f)["properties"] == {
        "a": {"type": ["string", "null"]},
        "b": {"type": ["integer", "null"]},
        "c": {"type": ["null", "number"]},
    }


def test_unions_of_structured_types_are_any_of() -> None:
    def f(x: list[int] | None, y: int | str) -> None: ...

    assert params(f)["properties"] == {
        "x": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}]},
        "y": {"type": ["integer", "string"]},
    }


def test_literals_are_enums() -> None:
    def f(a: Literal["r", "w"], b: Literal[1, 2, 3], c: Literal["auto", 0, None]) -> None: ...

    assert params(f)["properties"] == {
        "a": {"type": "string", "enum": ["r", "w"]},
        "b": {"type": "integer", "enum": [1, 2, 3]},
        "c": {"enum": ["auto", 0, None]},
    }


def test_enum_classes_are_enums_of_their_values() -> None:
    def f(color: Color, level: Level, maybe: Color | None = None) -> None: ...

    assert params(f)["properties"] == {
        "color": {"type": "string", "enum": ["red", "blue"]},
        "level": {"type": "integer", "enum": [1, 2]},
        "maybe": {
            "anyOf": [{"type": "string", "enum": ["red", "blue"]}, {"type": "null"}],
            "default": None,
        },
    }


def test_any_and_new_type() -> None:
    def f(a: Any, b: UserId, c: dict[str, Any]) -> None: ...

    assert params(f)["properties"] == {
        "a": {},
        "b": {"type": "integer"},
        "c": {"type": "object", "additionalProperties": {}},
    }


def test_dataclass_is_a_nested_closed_object() -> None:
    def f(x: Point) -> None: ...

    assert prop(f) == {
        "type": "object",
        "description": "A point on the plane.",
        "properties": {
            "x": {"type": "number", "description": "distance from the left edge"},
            "y": {"type": "number", "description": "distance from the top edge", "default": 0.0},
            "tags": {"type": "array", "items": {"type": "string"}},
            "label": {"type": "string", "description": "shown next to it", "default": ""},
        },
        "required": ["x"],
        "additionalProperties": False,
    }


def test_dataclass_without_docstring_gets_no_generated_description() -> None:
    def f(x: Line) -> None: ...

    schema = prop(f)
    assert "description" not in schema  # not dataclasses' "Line(start: 'Point', end: 'Point')"
    assert schema["required"] == ["start", "end"]
    assert schema["properties"]["start"]["properties"]["x"]["type"] == "number"


def test_typed_dicts_keep_their_required_keys() -> None:
    def f(x: Options, y: Strict) -> None: ...

    schema = params(f)["properties"]
    assert schema["x"] == {
        "type": "object",
        "description": "Search options.",
        "properties": {
            "depth": {"type": "integer"},
            "pattern": {"type": "string"},
            "hidden": {"type": "boolean"},
        },
        "required": ["depth"],
        "additionalProperties": False,
    }
    assert schema["y"]["required"] == ["name"]  # NotRequired in a string annotation too
    assert "description" not in schema["y"]  # not dict's docstring


def test_annotated_adds_a_description() -> None:
    def f(x: Annotated[list[str], "file names, relative to the project"]) -> None: ...

    assert prop(f) == {
        "type": "array",
        "items": {"type": "string"},
        "description": "file names, relative to the project",
    }


def test_annotated_inside_a_container() -> None:
    def f(x: list[Annotated[int, "a line number"]]) -> None: ...

    assert prop(f) == {
        "type": "array",
        "items": {"type": "integer", "description": "a line number"},
    }


def test_output_is_plain_json() -> None:
    def f(a: Point, b: Options, c: Color = Color.BLUE, d: tuple[int, ...] = (1, 2)) -> None: ...

    parameters = params(f)
    assert json.loads(json.dumps(parameters)) == parameters


# --- defaults ---------------------------------------------------------------------------------


def test_defaults_make_a_parameter_optional_and_json_ones_are_recorded() -> None:
    sentinel = object()

    def f(
        a: int,
        b: str = "x",
        c: list[int] = [1, 2],  # noqa: B006
        d: tuple[int, ...] = (3, 4),
        e: Color = Color.BLUE,
        g: Any = sentinel,
        h: float = math.nan,
        *,
        k: bool = False,
        m: int | None = None,
    ) -> None: ...

    schema = params(f)
    assert schema["required"] == ["a"]
    props = schema["properties"]
    assert props["b"]["default"] == "x"
    assert props["c"]["default"] == [1, 2]
    assert props["d"]["default"] == [3, 4]  # as JSON has it
    assert props["e"]["default"] == "blue"  # the member's value
    assert "default" not in props["g"]  # not JSON: optional, but not shown
    assert "default" not in props["h"]  # NaN is not JSON
    assert props["k"] == {"type": "boolean", "default": False}
    assert props["m"] == {"type": ["integer", "null"], "default": None}


def test_keyword_only_parameters_are_allowed() -> None:
    def f(*, q: str) -> None: ...

    assert params(f)["required"] == ["q"]


# --- docstrings -------------------------------------------------------------------------------


def google_style(path: str, limit: int = 100, encoding: str = "utf-8") -> str:
    """Read a text file from the project.

    Lines past `limit` are left out.

    Args:
        path (str): the file, relative to the project
            root; absolute paths are refused.
        limit: how many lines to return.

    Returns:
        The text.

    Raises:
        OSError: when it cannot be read.
    """
    return ""


def sphinx_style(path: str, limit: int) -> str:
    """Read a text file.

    :param path: the file to read,
        relative to the root
    :param int limit: how many lines
    :returns: the text
    """
    return ""


def numpy_style(path: str) -> str:
    """Read a text file.

    Parameters
    ----------
    path : str
        The file.
    """
    return ""


def test_google_docstring() -> None:
    spec = function_tool(google_style)
    assert (
        spec.description == "Read a text file from the project.\n\nLines past `limit` are left out."
    )
    assert spec.parameters["properties"] == {
        "path": {
            "type": "string",
            "description": "the file, relative to the project root; absolute paths are refused.",
        },
        "limit": {"type": "integer", "description": "how many lines to return.", "default": 100},
        "encoding": {"type": "string", "default": "utf-8"},
    }


def test_sphinx_docstring() -> None:
    spec = function_tool(sphinx_style)
    assert spec.description == "Read a text file."
    assert spec.parameters["properties"] == {
        "path": {"type": "string", "description": "the file to read, relative to the root"},
        "limit": {"type": "integer", "description": "how many lines"},
    }


def test_numpy_sections_end_the_summary() -> None:
    assert function_tool(numpy_style).description == "Read a text file."


def test_no_docstring_is_an_empty_description() -> None:
    def f(x: int) -> None: ...

    assert function_tool(f).description == ""
    assert prop(f) == {"type": "integer"}


def test_annotated_text_wins_over_the_docstring() -> None:
    def f(x: Annotated[int, "from Annotated"], y: Point) -> None:
        """Do it.

        Args:
            x: from the docstring
            y: where to start
        """

    props = params(f)["properties"]
    assert props["x"]["description"] == "from Annotated"
    assert props["y"]["description"] == "where to start"  # over the class's own docstring


# --- functions, methods, names --------------------------------------------------------------


class Workspace:
    def search(self, pattern: str, limit: int = 10) -> list[str]:
        """Search the workspace."""
        return []

    @classmethod
    def open(cls, path: str) -> Workspace:
        return cls()


def test_bound_methods_skip_self_and_cls() -> None:
    spec = function_tool(Workspace().search)
    assert spec.name == "search"
    assert spec.description == "Search the workspace."
    assert list(spec.parameters["properties"]) == ["pattern", "limit"]
    assert list(params(Workspace.open)["properties"]) == ["path"]


def test_string_annotations_resolve() -> None:
    # This module's annotations are strings (from __future__ import annotations).
    assert google_style.__annotations__["path"] == "str"
    assert params(google_style)["properties"]["path"]["type"] == "string"


def test_annotations_without_the_future_import() -> None:
    namespace: dict[str, Any] = {}
    source = "def tool(n: int, names: list[str] | None = None) -> None: ..."
    exec(compile(source, "<tool>", "exec", dont_inherit=True), namespace)
    assert namespace["tool"].__annotations__["n"] is int
    assert params(namespace["tool"])["properties"] == {
        "n": {"type": "integer"},
        "names": {
            "anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
            "default": None,
        },
    }


# --- errors -----------------------------------------------------------------------------------


def raises(fn: Any, *fragments: str) -> str:
    with pytest.raises(InvalidInputError) as info:
        function_tool(fn)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    return message


def test_missing_type_hint_names_function_and_parameter() -> None:
    def read_file(path, limit: int = 1) -> str:  # type: ignore[no-untyped-def]
        return ""

    message = raises(read_file)
    assert message == "tool function 'read_file': parameter 'path' has no type hint; annotate it"


def test_star_args_and_kwargs_are_refused() -> None:
    def a(x: int, *rest: int) -> None: ...

    def b(x: int, **extra: int) -> None: ...

    raises(a, "tool function 'a'", "parameter 'rest'", "*rest")
    raises(b, "tool function 'b'", "parameter 'extra'", "**extra")


def test_positional_only_is_refused() -> None:
    def f(x: int, /) -> None: ...

    raises(f, "tool function 'f'", "parameter 'x'", "positional-only")


def test_unsupported_types_are_refused() -> None:
    def f(when: datetime) -> None: ...

    def g(pair: tuple[int, str]) -> None: ...

    def h(counts: dict[int, str]) -> None: ...

    def k(data: bytes) -> None: ...

    raises(f, "tool function 'f'", "parameter 'when'", "unsupported type datetime")
    raises(g, "parameter 'pair'", "tuple[int, str]", "tuple[X, ...]")
    raises(h, "parameter 'counts'", "dict[str, X]")
    raises(k, "parameter 'data'", "bytes")


def test_unsupported_type_inside_a_dataclass_names_the_field() -> None:
    @dataclasses.dataclass
    class Event:
        at: datetime

    def f(event: Event) -> None: ...

    f.__annotations__["event"] = Event  # a local class: give the resolved hint
    raises(f, "parameter 'event'", "field 'at' of Event", "datetime")


def test_recursive_dataclass_is_refused() -> None:
    def f(tree: Tree) -> None: ...

    raises(f, "parameter 'tree'", "recursive type Tree")


def test_literal_of_a_non_json_value_is_refused() -> None:
    def f(x: Literal[b"raw"]) -> None: ...

    raises(f, "parameter 'x'", "b'raw'")


def test_unresolvable_hint_is_refused() -> None:
    def f(x: NoSuchType) -> None: ...  # type: ignore[name-defined]  # noqa: F821

    raises(f, "tool function 'f'", "NameError", "NoSuchType")


def test_lambdas_and_unnamed_callables_are_refused() -> None:
    class Callable_:
        def __call__(self, x: int) -> None: ...

    raises(lambda x: x, "lambda", "def")
    raises(Callable_(), "Callable_", "def")
    raises(42, "int")


def test_tool_names_must_be_api_safe() -> None:
    def f(x: int) -> None: ...

    f.__name__ = "read file"
    raises(f, "'read file'", "1-64 letters")
    f.__name__ = "x" * 65
    raises(f, "1-64 letters")


# --- model_schema / is_schema_model -----------------------------------------------------------


def test_model_schema_of_a_dataclass_and_a_typed_dict() -> None:
    name, schema = model_schema(Point)
    assert name == "Point"
    assert schema == prop(point_tool)
    assert model_schema(Options) == ("Options", params(options_tool)["properties"]["x"])


def point_tool(x: Point) -> None: ...


def options_tool(x: Options) -> None: ...


def test_model_schema_refuses_what_it_cannot_describe() -> None:
    for bad, fragment in ((dict, "got dict"), (Point(1.0), "an instance of Point"), (42, "int")):
        with pytest.raises(InvalidInputError, match=fragment):
            model_schema(bad)
    with pytest.raises(InvalidInputError, match="recursive type Tree"):
        model_schema(Tree)


def test_is_schema_model() -> None:
    assert is_schema_model(Point)
    assert is_schema_model(Options)
    assert not is_schema_model(Point(1.0))
    assert not is_schema_model(dict)
    assert not is_schema_model(Color)
    assert not is_schema_model({"type": "object"})
    assert not is_schema_model(Workspace)


# --- pydantic -------------------------------------------------------------------------------

if BaseModel is not None:

    class Pet(BaseModel):
        """A pet."""

        name: str = Field(description="its name")
        age: int = 0

    class Owner(BaseModel):
        name: str
        pets: list[Pet]
        best_friend: Optional[Owner] = None  # noqa: UP045


@needs_pydantic
def test_pydantic_model_schema_is_its_own() -> None:
    assert model_schema(Pet) == ("Pet", Pet.model_json_schema())
    assert model_schema(Owner) == ("Owner", Owner.model_json_schema())
    assert is_schema_model(Pet)
    assert not is_schema_model(Pet(name="x"))


@needs_pydantic
def test_pydantic_parameter_is_embedded_with_its_defs_at_the_root() -> None:
    def adopt(pet: Pet, owner: Owner | None = None) -> None:
        """Adopt a pet.

        Args:
            pet: the pet to adopt
        """

    schema = params(adopt)
    assert schema["properties"]["pet"] == {
        **Pet.model_json_schema(),
        "description": "the pet to adopt",
    }
    owner = Owner.model_json_schema()
    assert schema["properties"]["owner"] == {
        "anyOf": [{k: v for k, v in owner.items() if k != "$defs"}, {"type": "null"}],
        "default": None,
    }
    assert schema["$defs"] == owner["$defs"]  # every "#/$defs/..." reference resolves
    refs = _refs(schema)
    assert refs and all(ref.removeprefix("#/$defs/") in schema["$defs"] for ref in refs)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if "$ref" in node else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


@needs_pydantic
def test_pydantic_model_inside_a_dataclass() -> None:
    @dataclasses.dataclass
    class Household:
        owner: Owner

    name, schema = model_schema(Household)
    assert name == "Household"
    assert set(schema["$defs"]) == set(Owner.model_json_schema()["$defs"])


# --- import cost ------------------------------------------------------------------------------

PROBE = """
import sys
import rlm_code.models.tool_schema
print("pydantic" in sys.modules)
"""


def test_importing_tool_schema_does_not_import_pydantic() -> None:
    assert run_python(PROBE).strip() == "False"


@needs_pydantic
def test_the_import_probe_sees_pydantic_when_it_is_imported() -> None:
    # The probe must notice pydantic, or the test above proves nothing.
    probe = PROBE.replace("import sys", "import sys\nimport pydantic")
    assert run_python(probe).strip() == "True"
