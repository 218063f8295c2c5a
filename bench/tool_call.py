"""The tool-call cases (issue 12, "Benchmarks"): one reply carrying one tool call, whole
(`tools_seq`) and streamed (`tools_stream`), through the openai_compatible adapter against bare
`httpx2`.

The answers are OpenAI chat-completions replies as OpenAI sends them: `message.tool_calls`
with `function.arguments` a JSON *string* and `finish_reason: "tool_calls"`; streamed, a role
chunk, the call's first piece (id, name, `arguments: ""`), `ARG_FRAGMENTS` argument fragments,
the finish chunk, the usage chunk and `[DONE]`. nginx serves both as files (the whole reply's
escaped quotes cannot be inlined in its config) under the prefixes `/tools` and `/toolstream`.

Every contender's operation returns `(finish_reason, name, arguments dict)`, checked against
`EXPECTED` on the first call: ours reads them off the `Response`, the bare contenders do by
hand what a user would (`json.loads` the body, then `json.loads` the arguments string; for the
stream, split the SSE lines and join the argument fragments). Standard library at module
level, like `contenders.py`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from typing import Any

import fixtures

Op = Callable[[], Any]
KEY = "sk-test-bench-0000000000000000"
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
MESSAGES = [{"role": "user", "content": fixtures.PROMPT}]
PREFIXES = {"tools_seq": "/tools", "tools_stream": "/toolstream"}
CALL_ID = "call_bench00000000000000000000"
NAME = "read_file"
ARGUMENTS = {
    "path": "rlm_code/models/llm_connector.py",
    "start_line": 120,
    "end_line": 180,
    "reason": "Find where a stream releases its connection when the caller leaves early.",
}
ARGUMENTS_JSON = json.dumps(ARGUMENTS)  # spaces after ':' and ',' like OpenAI's models write
ARG_FRAGMENTS = 20
# One tool in our plain form (what `complete(tools=...)` takes) and in OpenAI's wire form
# (what the bare clients put in the body).
TOOL = {
    "name": NAME,
    "description": "Read lines of a file in the repository.",
    "parameters": {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "Path from the repository root."},
            "start_line": {"type": "integer"},
            "end_line": {"type": "integer"},
            "reason": {"type": "string"},
        },
        "required": ["path"],
    },
}
WIRE_TOOLS = [{"type": "function", "function": TOOL}]
EXPECTED = ("tool_calls", NAME, ARGUMENTS)
USAGE = {
    "prompt_tokens": 96,
    "completion_tokens": 41,
    "total_tokens": 137,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def _head(kind: str) -> dict[str, object]:
    """The fields every reply and chunk starts with."""
    return {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": kind,
        "created": fixtures.CREATED,
        "model": fixtures.MODEL,
        "system_fingerprint": "fp_bench",
    }


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def fragments() -> list[str]:
    """`ARGUMENTS_JSON` cut into `ARG_FRAGMENTS` pieces of nearly equal length."""
    cuts = [len(ARGUMENTS_JSON) * i // ARG_FRAGMENTS for i in range(ARG_FRAGMENTS + 1)]
    return [ARGUMENTS_JSON[a:b] for a, b in itertools.pairwise(cuts)]


def completion() -> str:
    """The whole `chat.completion` reply carrying the tool call."""
    call = {
        "id": CALL_ID,
        "type": "function",
        "function": {"name": NAME, "arguments": ARGUMENTS_JSON},
    }
    message = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
    return _dumps({**_head("chat.completion"), "choices": [choice], "usage": USAGE})


def stream() -> str:
    """The same reply as `chat.completion.chunk` SSE events, ending with usage and `[DONE]`."""
    base = _head("chat.completion.chunk")

    def chunk(delta: dict[str, object], finish: str | None = None) -> dict[str, object]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice]}

    first = {
        "index": 0,
        "id": CALL_ID,
        "type": "function",
        "function": {"name": NAME, "arguments": ""},
    }
    events = [
        chunk({"role": "assistant", "content": None, "refusal": None}),
        chunk({"tool_calls": [first]}),
    ]
    for piece in fragments():
        events.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
    events.append(chunk({}, "tool_calls"))
    events.append({**base, "choices": [], "usage": USAGE})
    return "".join(f"data: {_dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def files() -> dict[str, str]:
    """The files nginx serves for these cases, by name under its `www` directory."""
    return {"tools.json": completion(), "toolstream.sse": stream()}


NGINX_LOCATIONS = """\
        location = /tools/v1/chat/completions {{
            default_type application/json;
            alias {dir}/www/tools.json;
        }}
        location = /toolstream/v1/chat/completions {{
            default_type text/event-stream;
            alias {dir}/www/toolstream.sse;
        }}
"""


# -- contenders ---------------------------------------------------------------------------------


def _base(case: str, port: int) -> str:
    return f"http://127.0.0.1:{port}{PREFIXES[case]}/v1"


def ours(case: str, port: int) -> Op:
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

    connector = LLMConnector(ConfigManager())
    connector.connect_to_model("vllm/bench", base_url=_base(case, port))
    tools = [TOOL]
    if case == "tools_seq":

        def call() -> tuple[str | None, str, dict[str, Any]]:
            response = connector.complete(fixtures.PROMPT, tools=tools)
            tool = response.tool_calls[0]
            return response.finish_reason, tool.name, tool.arguments

        return call

    def stream_call() -> tuple[str | None, str, dict[str, Any]]:
        with connector.stream(fixtures.PROMPT, tools=tools) as events:
            for _event in events:
                pass
        response = events.response
        tool = response.tool_calls[0]
        return response.finish_reason, tool.name, tool.arguments

    return stream_call


def sse_tool_call(lines: Iterable[str]) -> tuple[str | None, str, dict[str, Any]]:
    """The first tool call of an OpenAI chat stream, read as a bare HTTP client would: `data:`
    lines up to `[DONE]`, the name from the call's first piece, its argument fragments joined,
    then `json.loads` of the joined string."""
    name = ""
    parts: list[str] = []
    finish = None
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        choices = json.loads(data).get("choices")
        if not choices:
            continue
        choice = choices[0]
        for piece in choice["delta"].get("tool_calls") or ():
            if piece["index"] != 0:
                continue
            function = piece.get("function") or {}
            name = function.get("name") or name
            parts.append(function.get("arguments") or "")
        finish = choice.get("finish_reason") or finish
    return finish, name, json.loads("".join(parts))


def _bare(module_name: str, case: str, port: int) -> Op:
    module = __import__(module_name)
    client = module.Client(headers=HEADERS, timeout=60)
    url = _base(case, port) + "/chat/completions"
    if case == "tools_seq":

        def call() -> tuple[str | None, str, dict[str, Any]]:
            payload = {"model": "bench", "messages": MESSAGES, "tools": WIRE_TOOLS}
            data = json.loads(client.post(url, content=json.dumps(payload).encode()).content)
            choice = data["choices"][0]
            function = choice["message"]["tool_calls"][0]["function"]
            return choice["finish_reason"], function["name"], json.loads(function["arguments"])

        return call

    def stream_call() -> tuple[str | None, str, dict[str, Any]]:
        payload = {
            "model": "bench",
            "messages": MESSAGES,
            "tools": WIRE_TOOLS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        with client.stream("POST", url, content=json.dumps(payload).encode()) as response:
            return sse_tool_call(response.iter_lines())

    return stream_call


def openai(case: str, port: int) -> Op:
    from openai import OpenAI

    client = OpenAI(api_key=KEY, base_url=_base(case, port))
    if case == "tools_seq":

        def call() -> tuple[str | None, str, dict[str, Any]]:
            reply = client.chat.completions.create(
                model="bench", messages=MESSAGES, tools=WIRE_TOOLS
            )
            choice = reply.choices[0]
            function = choice.message.tool_calls[0].function
            return choice.finish_reason, function.name, json.loads(function.arguments)

        return call

    def stream_call() -> tuple[str | None, str, dict[str, Any]]:
        chunks = client.chat.completions.create(
            model="bench",
            messages=MESSAGES,
            tools=WIRE_TOOLS,
            stream=True,
            stream_options={"include_usage": True},
        )
        name, parts, finish = "", [], None
        for chunk in chunks:
            if not chunk.choices:
                continue
            choice = chunk.choices[0]
            for piece in choice.delta.tool_calls or ():
                if piece.index == 0 and piece.function is not None:
                    name = piece.function.name or name
                    parts.append(piece.function.arguments or "")
            finish = choice.finish_reason or finish
        return finish, name, json.loads("".join(parts))

    return stream_call


def cases() -> dict[str, dict[str, Callable[[int], Op]]]:
    """`SYNC_CASES` entries for `contenders.py`: case -> contender -> factory(port)."""
    table: dict[str, dict[str, Callable[[int], Op]]] = {}
    for case in PREFIXES:
        table[case] = {
            "httpx2": lambda port, c=case: _bare("httpx2", c, port),
            "httpx": lambda port, c=case: _bare("httpx", c, port),
            "ours": lambda port, c=case: ours(c, port),
            "openai": lambda port, c=case: openai(c, port),
        }
    return table
