"""What the local "model" does beyond echoing text: tool calls, reasoning, structured output.

Driven two ways, both deterministic:

* A scripted queue (in-process tests): ``server.queue_replies([ScriptedReply(...), ...])``.
  Each chat request (any protocol, any model) takes the next entry, in order; when the queue
  is empty the conventions below apply. ``ScriptedReply(text, tool_calls, reasoning)``:
  ``tool_calls`` is a list of ``(name, arguments)``, where arguments is a dict or the exact
  JSON text to send (so tests can script escapes, unicode or broken JSON).
* Conventions (work from any client, e.g. the CLI or ``examples/agent_loop.py``):

  - **Tool calls.** When the request offers tools, ``tool_choice`` is not "none" and the
    last turn is the user's, every line of that turn of the form ``call NAME {json}`` (or
    ``call NAME``) becomes a call of tool NAME with those arguments. With ``tool_choice``
    "required" or a named tool and no such line, the (named, else first) tool is called with
    arguments made from its parameter schema (`instance_of`).
  - **After tool results.** When the last turn holds tool results, the reply is
    ``"Tool result: " + the results joined by "; "``.
  - **Reasoning.** When the request asks for reasoning (any effort or budget), the reply
    carries reasoning text ``"Thinking about: " + the last user text`` (or the tool results),
    and, where the protocol has them, a signature: ``signature_of(reasoning)``.
  - **Structured output.** When the request carries a JSON schema, the reply text is
    ``json.dumps(instance_of(schema, text))``: a valid instance whose strings are the text the
    reply would otherwise have had.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ScriptedReply",
    "WireToolCall",
    "convention_calls",
    "instance_of",
    "signature_of",
    "wire_call",
]

_CALL_LINE = re.compile(r"^\s*call\s+([a-zA-Z0-9_-]{1,64})\s*(\{.*\})?\s*$", re.MULTILINE)


@dataclass(frozen=True)
class WireToolCall:
    """One tool call of a reply: ``arguments_json`` is the text sent on the wire (OpenAI-style
    protocols) and ``arguments`` its parsed object (protocols that send objects)."""

    id: str
    name: str
    arguments: Any
    arguments_json: str


@dataclass(frozen=True)
class ScriptedReply:
    """One scripted answer (see the module docstring)."""

    text: str | None = None
    tool_calls: Sequence[tuple[str, Mapping[str, Any] | str]] = ()
    reasoning: str | None = None


def wire_call(name: str, arguments: Mapping[str, Any] | str) -> WireToolCall:
    """A tool call with a fresh id; a string is sent as is (it may even be invalid JSON)."""
    if isinstance(arguments, str):
        try:
            parsed: Any = json.loads(arguments)
        except ValueError:
            parsed = None
        text = arguments
    else:
        parsed, text = dict(arguments), json.dumps(arguments, ensure_ascii=False)
    return WireToolCall("call_" + uuid.uuid4().hex[:24], name, parsed, text)


def convention_calls(
    text: str,
    tools: Sequence[tuple[str, Mapping[str, Any]]],
    choice: str | None,
    forced: str | None,
) -> list[WireToolCall]:
    """The tool calls the conventions make for the last user turn ``text``."""
    if not tools or choice == "none":
        return []
    offered = {name: schema for name, schema in tools}
    calls = []
    for match in _CALL_LINE.finditer(text):
        name, args = match.group(1), match.group(2)
        if name in offered and (forced is None or name == forced):
            calls.append(wire_call(name, args if args is not None else "{}"))
    if not calls and choice in ("required", "tool"):
        name = forced or tools[0][0]
        calls.append(wire_call(name, instance_of(offered.get(name) or {}, "text")))
    return calls


def signature_of(reasoning: str) -> str:
    """The signature the server gives (and later checks on) a piece of reasoning."""
    digest = hashlib.sha256(("rlm-local-thinking:" + reasoning).encode("utf-8")).digest()
    return base64.b64encode(digest).decode("ascii")


def instance_of(schema: Mapping[str, Any], text: str, depth: int = 0) -> Any:
    """A small value valid against ``schema`` (the subset structured output uses): strings
    are ``text``, numbers 1, booleans true, arrays one item, objects every property."""
    if depth > 8:
        return None
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options and isinstance(options[0], Mapping):
            return instance_of(options[0], text, depth + 1)
    kind = schema.get("type", "object" if "properties" in schema else "string")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {
            name: instance_of(sub if isinstance(sub, Mapping) else {}, text, depth + 1)
            for name, sub in properties.items()
        }
    if kind == "array":
        items = schema.get("items")
        count = max(1, int(schema.get("minItems", 1) or 1))
        item = instance_of(items if isinstance(items, Mapping) else {}, text, depth + 1)
        return [item] * count
    if kind == "integer":
        return int(schema.get("minimum", 1) or 1)
    if kind == "number":
        return float(schema.get("minimum", 1) or 1)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text
