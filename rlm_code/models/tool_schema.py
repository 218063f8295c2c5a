"""Tools from plain Python functions, and JSON schemas from typed classes.

Agents' tools are typed Python functions already; writing each again as a JSON schema is where
a tool's definition drifts from its code. `function_tool` reads the function instead: name,
docstring summary (the description), signature and type hints (the parameters), and the
docstring's `Args:` or `:param x:` lines. `model_schema` does a structured-output class.

Hints map to JSON schema: str, int, float (number), bool, None; list[X], tuple[X, ...], set[X]
(array); dict[str, X] (object); unions and X | None (a type list, or anyOf); Literal and Enum
(enum); dataclasses and TypedDicts (closed nested objects); pydantic models (their own
`model_json_schema()`, `$defs` moved to the root so `$ref`s resolve); Annotated[X, "text"] (a
description); Any. Anything else is an `InvalidInputError` naming the function and parameter,
before any request. pydantic is optional and never imported: models are duck-typed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from rlm_code.core.exceptions import InvalidInputError
from rlm_code.models.types import ToolSpec

Schema = dict[str, Any]
_TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_PRIMITIVES: dict[object, str] = {str: "string", int: "integer", float: "number", bool: "boolean"}
_ARRAYS = (list, tuple, set, frozenset, Sequence)
_ARG_HEADERS = r"(?:Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Attributes)"
_GOOGLE_ARGS = re.compile(rf"^\s*{_ARG_HEADERS}\s*:\s*$")
_GOOGLE_SECTION = re.compile(
    rf"^\s*(?:{_ARG_HEADERS}|Returns?|Yields?|Raises|Examples?|Notes?|Warnings?|See Also)\s*:\s*$"
)
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:(.*)$")
_SPHINX_FIELD = re.compile(r"^\s*:(?:param|type|returns?|rtype|raises?|keyword)\b")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?\*{0,2}(\w+)\s*:(.*)$")
_DASHES = re.compile(r"^\s*-{3,}\s*$")  # under a NumPy-style section header
_SUPPORTED = "use str, int, float, bool, list, dict, Literal, Enum, dataclass, TypedDict, pydantic"


class _Context:
    """One schema being built: whom it is for (error messages), the classes being expanded
    (recursion cannot be written inline, so it is refused) and the `$defs` hoisted to the root."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.expanding: list[type] = []
        self.defs: Schema = {}

    def error(self, where: str, problem: str) -> InvalidInputError:
        return InvalidInputError(f"{self.owner}: {where} {problem}", hint="")


def function_tool(fn: Callable[..., Any]) -> ToolSpec:
    """The `ToolSpec` of a typed Python function (or bound method: `self` is not a parameter).

    Every parameter needs a type hint; one with a default is optional, and a JSON default is
    recorded as `"default"`. `*args`, `**kwargs`, positional-only parameters (tools are called
    with keyword arguments) and lambdas are refused."""
    name = getattr(fn, "__name__", None)
    if not callable(fn) or not isinstance(name, str) or not _TOOL_NAME.match(name):
        got = "a lambda" if name == "<lambda>" else repr(name) if name else type(fn).__name__
        raise InvalidInputError(
            f"a tool must be a function defined with def and named with 1-64 letters, digits, "
            f"'_' or '-', got {got}",
            hint="",
        )
    ctx = _Context(f"tool function {name!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise ctx.error("its signature", "cannot be read; define the tool with def") from None
    hints = _hints(fn, ctx)
    description, arg_docs = _parse_doc(inspect.getdoc(fn))
    properties: Schema = {}
    required: list[str] = []
    for param in signature.parameters.values():
        where = f"parameter {param.name!r}"
        if param.kind not in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY):
            kind = f"{param.kind.description} ({param})"
            raise ctx.error(where, f"is {kind}; tools are called with named arguments only")
        if param.name not in hints:
            raise ctx.error(where, "has no type hint; annotate it")
        properties[param.name] = _property(hints[param.name], arg_docs.get(param.name), ctx, where)
        if param.default is param.empty:
            required.append(param.name)
        else:
            _record_default(properties[param.name], param.default)
    defs = {"$defs": ctx.defs} if ctx.defs else {}  # pydantic models' definitions, hoisted
    return ToolSpec(name, description, {**_object(properties, required), **defs})


def model_schema(model: Any) -> tuple[str, Schema]:
    """(class name, JSON schema) of a structured-output class: a pydantic model (its own
    `model_json_schema()`), a dataclass or a TypedDict (the rules of `function_tool`)."""
    if not is_schema_model(model):
        got = getattr(model, "__name__", f"an instance of {type(model).__name__}")
        raise InvalidInputError(
            f"a response model must be a pydantic model, dataclass or TypedDict class, got {got}; "
            "pass such a class itself",
            hint="",
        )
    ctx = _Context(f"response model {model.__name__!r}")
    if _is_pydantic(model):
        return model.__name__, _pydantic_schema(model, ctx, "it")
    schema = _class(model, ctx, "the class")
    return model.__name__, {**schema, "$defs": ctx.defs} if ctx.defs else schema


def is_schema_model(obj: Any) -> bool:
    """Whether `model_schema` accepts `obj`: a pydantic model, dataclass or TypedDict class."""
    return isinstance(obj, type) and (
        _is_pydantic(obj) or dataclasses.is_dataclass(obj) or typing.is_typeddict(obj)
    )


def _is_pydantic(tp: object) -> bool:
    return isinstance(tp, type) and callable(getattr(tp, "model_json_schema", None))


def _hints(obj: Any, ctx: _Context) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as exc:  # a NameError, or whatever evaluating a hint raised
        problem = f"{type(exc).__name__}: {exc}"
        raise ctx.error("its type hints", f"cannot be resolved ({problem}); fix them") from None


def _property(hint: Any, doc: str | None, ctx: _Context, where: str) -> Schema:
    """A parameter's or field's schema. Its description is, first found: `Annotated` text,
    the docstring's line for it, the description of its type (a class docstring)."""
    schema = _schema(hint, ctx, where)
    annotated = typing.get_origin(hint) is typing.Annotated
    if doc and not (annotated and any(isinstance(m, str) for m in hint.__metadata__)):
        schema["description"] = doc
    return schema


def _schema(tp: Any, ctx: _Context, where: str) -> Schema:
    """The JSON schema of one type hint."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        schema = _schema(args[0], ctx, where)
        text = next((m for m in tp.__metadata__ if isinstance(m, str)), None)
        return {**schema, "description": text} if text else schema
    if origin in (typing.Required, typing.NotRequired):
        return _schema(args[0], ctx, where)
    if hasattr(tp, "__supertype__"):  # typing.NewType
        return _schema(tp.__supertype__, ctx, where)
    if tp is typing.Any:
        return {}
    if tp is None or tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    if origin is typing.Literal:
        return _enum(args, ctx, where)
    if origin is typing.Union or origin is types.UnionType:
        return _union([_schema(arg, ctx, where) for arg in args])
    if origin in _ARRAYS or tp in _ARRAYS:
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            raise ctx.error(where, f"has type {_name(tp)}; use tuple[X, ...] or list[X]")
        items = {"items": _schema(args[0], ctx, where)} if args else {}
        unique = {"uniqueItems": True} if (origin or tp) in (set, frozenset) else {}
        return {"type": "array", **items, **unique}
    if origin in (dict, Mapping) or tp in (dict, Mapping):
        if args and args[0] is not str:
            raise ctx.error(where, f"has type {_name(tp)}; JSON keys are str, use dict[str, X]")
        items = {"additionalProperties": _schema(args[1], ctx, where)} if args else {}
        return {"type": "object", **items}
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum(list(tp), ctx, where)
    if _is_pydantic(tp):
        return _pydantic_schema(tp, ctx, where, hoist=True)
    if isinstance(tp, type) and (dataclasses.is_dataclass(tp) or typing.is_typeddict(tp)):
        return _class(tp, ctx, where)
    raise ctx.error(where, f"has unsupported type {_name(tp)}; {_SUPPORTED}")


def _union(schemas: list[Schema]) -> Schema:
    """A type list when every member is a bare `{"type": ...}`, else `anyOf`."""
    if all(set(s) == {"type"} and isinstance(s["type"], str) for s in schemas):
        return {"type": list(dict.fromkeys(s["type"] for s in schemas))}
    return {"anyOf": schemas}


def _enum(choices: Sequence[Any], ctx: _Context, where: str) -> Schema:
    """An enum of JSON values (an Enum member as its value), typed when all share one type."""
    values = [c.value if isinstance(c, enum.Enum) else c for c in choices]
    bad = [v for v in values if v is not None and type(v) not in _PRIMITIVES]
    if bad:
        raise ctx.error(where, f"has a choice {bad[0]!r}: choices are str, int, float, bool, None")
    kinds = {"null" if v is None else _PRIMITIVES[type(v)] for v in values}
    schema: Schema = {"enum": list(dict.fromkeys(values))}
    return {"type": kinds.pop(), **schema} if len(kinds) == 1 else schema


def _pydantic_schema(model: Any, ctx: _Context, where: str, hoist: bool = False) -> Schema:
    """A pydantic model's own schema; nested in a larger one (`hoist`), its `$defs` move to the
    root's, since `$ref`s point at `#/$defs/...` of the whole document."""
    try:
        schema = dict(model.model_json_schema())
    except Exception as exc:  # pydantic's own error for a type JSON schema cannot express
        raise ctx.error(where, f"has a model pydantic cannot describe ({exc})") from None
    for name, definition in (schema.pop("$defs", {}) if hoist else {}).items():
        if ctx.defs.setdefault(name, definition) != definition:
            raise ctx.error(where, f"uses two different models named {name!r}; rename one")
    return schema


def _class(cls: type, ctx: _Context, where: str) -> Schema:
    """A dataclass or TypedDict as a closed object. Fields are described by `Annotated`, a
    dataclass field's `metadata["description"]` or the class docstring's `Attributes:`."""
    if cls in ctx.expanding:
        raise ctx.error(where, f"has recursive type {cls.__name__}; use a pydantic model instead")
    ctx.expanding.append(cls)
    hints = _hints(cls, ctx)
    own_doc = cls.__dict__.get("__doc__")  # not inspect.getdoc: it would inherit dict's
    if dataclasses.is_dataclass(cls) and own_doc and own_doc.startswith(f"{cls.__name__}("):
        own_doc = None  # the signature dataclasses write when a class has no docstring
    description, docs = _parse_doc(inspect.cleandoc(own_doc) if own_doc else None)
    properties: Schema = {}
    required: list[str] = []
    if dataclasses.is_dataclass(cls):
        for f in (f for f in dataclasses.fields(cls) if f.init):
            doc = f.metadata.get("description") or docs.get(f.name)
            properties[f.name] = schema = _property(
                hints[f.name], doc, ctx, f"{where}, field {f.name!r} of {cls.__name__}"
            )
            if f.default is not dataclasses.MISSING:
                _record_default(schema, f.default)
            elif f.default_factory is dataclasses.MISSING:
                required.append(f.name)
    else:
        keys = getattr(cls, "__required_keys__", ())  # misses marks in string annotations:
        for key, hint in hints.items():
            where_key, mark = f"{where}, key {key!r} of {cls.__name__}", typing.get_origin(hint)
            properties[key] = _property(hint, docs.get(key), ctx, where_key)
            if mark is typing.Required or (mark is not typing.NotRequired and key in keys):
                required.append(key)
    ctx.expanding.pop()
    schema = _object(properties, required)
    return {**schema, "description": description} if description else schema


def _object(props: Schema, req: list[str]) -> Schema:
    return {"type": "object", "properties": props, "required": req, "additionalProperties": False}


def _record_default(schema: Schema, default: Any) -> None:
    """Record a default the model can read: JSON values only (an Enum member as its value)."""
    if isinstance(default, enum.Enum):
        default = default.value
    with contextlib.suppress(TypeError, ValueError):  # not JSON: optional, but not shown
        schema["default"] = json.loads(json.dumps(default, allow_nan=False))


def _name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else repr(tp).replace("typing.", "")


def _parse_doc(doc: str | None) -> tuple[str, dict[str, str]]:
    """(summary, {parameter: description}) of a docstring. The summary is the text before the
    first section (Google `Args:`/`Returns:`..., Sphinx `:param x:`, a NumPy header over a
    dashed line); parameters are described by a Google `Args:` section or `:param x:` lines."""
    lines = (doc or "").expandtabs().splitlines()
    params: dict[str, list[str]] = {}
    current: list[str] | None = None
    end, base, entry = len(lines), -1, -1  # summary end; `Args:`/`:param` and entry indents
    for i, line in enumerate(lines):
        text, indent = line.strip(), len(line) - len(line.lstrip())
        numpy = text and i + 1 < len(lines) and _DASHES.match(lines[i + 1])
        if (_GOOGLE_SECTION.match(line) or _SPHINX_FIELD.match(line) or numpy) and end > i:
            end = i
        sphinx = _SPHINX_PARAM.match(line)
        if not text:
            continue
        if sphinx:
            base = entry = indent
            current = params[sphinx[1]] = [sphinx[2]]
        elif _GOOGLE_ARGS.match(line):
            base, entry, current = indent, -1, None
        elif base < 0 or indent <= base:  # outside a section
            base, current = -1, None
        elif entry < 0 or indent <= entry:  # a Google entry: `name (type): text`
            entry = indent
            google = _GOOGLE_ENTRY.match(text)
            current = params.setdefault(google[1], [google[2]]) if google else None
        elif current is not None:  # a continuation line
            current.append(text)
    described = {k: " ".join(t.strip() for t in v if t.strip()) for k, v in params.items()}
    return "\n".join(lines[:end]).strip(), {k: v for k, v in described.items() if v}
