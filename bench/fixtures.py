"""Write the static answers nginx serves and nginx's own config, into one directory.

    python bench/fixtures.py --dir DIR --port PORT

Everything the benchmarks talk to is a fixed file (or an inline `return 200` body), so the
server side costs the same for every contender and is as cheap as it gets:

| method + path                                         | answer                              |
| ----------------------------------------------------- | ----------------------------------- |
| POST /v1/chat/completions                             | OpenAI `chat.completion` with usage |
| POST /stream/v1/chat/completions                      | SSE: 200 chunks + usage + [DONE]    |
| POST /v1/messages                                     | Anthropic `message` with usage      |
| POST /stream/v1/messages                              | Anthropic SSE, 200 text deltas      |
| POST /v1[beta]/models/M:generateContent               | Gemini `GenerateContentResponse`    |
| POST /stream/v1[beta]/models/M:streamGenerateContent | Gemini SSE, 200 events              |
| GET  /api/tags, POST /api/chat                        | Ollama model list, chat answer      |
| POST /stream/api/chat                                 | Ollama NDJSON, 200 lines + done     |
| POST /line40/v1/chat/completions (and /line15/...)    | SSE: one 40 MB (15 MB) content line |
| POST /tools/v1/chat/completions                       | `chat.completion` with a tool call  |
| POST /toolstream/v1/chat/completions                  | SSE: the same tool call, streamed   |
| GET  [/PREFIX]/v1/models                              | OpenAI model list (connect check)   |

A POST to a static file is answered 405 by nginx's static module; `error_page 405 =200 $uri`
turns that into an internal GET of the same file, answered 200. Small JSON answers are inlined
with `return 200 '...'` (the fastest path nginx has). Standard library only: this file is also
imported by the scripts that run inside the rlm-code 0.1.13 virtual environment.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

STREAM_CHUNKS = 200
MODEL = "bench"
PROMPT = "Write one short sentence about benchmarks."
REPLY = "Benchmarks measure what you ran, on the machine you ran it on, and nothing more."
USAGE = {"prompt_tokens": 14, "completion_tokens": 17, "total_tokens": 31}
CREATED = 1_700_000_000
# Streams whose one content chunk is a single SSE line of this many characters (issue 10.9):
# 40 MB is over rlm-code's 16 MiB line cap (refused, typed), 15 MB is under it.
LONG_LINES = {"line40": 40_000_000, "line15": 15_000_000}
LONG_LINE_CHAR = "x"


def _dumps(obj: object) -> str:
    return json.dumps(obj, separators=(",", ":"))


def openai_completion() -> str:
    return _dumps(
        {
            "id": "chatcmpl-bench0000000000000000000000",
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "system_fingerprint": "fp_bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def token(i: int) -> str:
    return f"tok{i} "


def stream_text() -> str:
    """The text every 200-chunk stream carries, joined."""
    return "".join(token(i) for i in range(STREAM_CHUNKS))


def openai_stream() -> str:
    base = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
        "system_fingerprint": "fp_bench",
    }
    events = []
    for i in range(STREAM_CHUNKS):
        delta: dict[str, object] = {"content": token(i)}
        if i == 0:
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        events.append({**base, "choices": [choice]})
    events.append(
        {
            **base,
            "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
        }
    )
    events.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 14, "completion_tokens": STREAM_CHUNKS, "total_tokens": 214},
        }
    )
    return "".join(f"data: {_dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def long_line_stream(size: int) -> str:
    """An OpenAI stream whose one content chunk carries `size` characters on one line."""
    base = {
        "id": "chatcmpl-bench0000000000000000000000",
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": MODEL,
    }
    role = {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
    text = {"index": 0, "delta": {"content": LONG_LINE_CHAR * size}, "finish_reason": None}
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    events = [{**base, "choices": [choice]} for choice in (role, text, stop)]
    return "".join(f"data: {_dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def openai_models() -> str:
    return _dumps(
        {"object": "list", "data": [{"id": MODEL, "object": "model", "created": CREATED}]}
    )


def anthropic_message() -> str:
    return _dumps(
        {
            "id": "msg_bench000000000000000000",
            "type": "message",
            "role": "assistant",
            "model": MODEL,
            "content": [{"type": "text", "text": REPLY}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 14, "output_tokens": 17},
        }
    )


def anthropic_stream() -> str:
    def event(name: str, data: dict[str, object]) -> str:
        return f"event: {name}\ndata: {_dumps(data)}\n\n"

    start = {
        "id": "msg_bench000000000000000000",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {"input_tokens": 14, "output_tokens": 1},
    }
    parts = [
        event("message_start", {"type": "message_start", "message": start}),
        event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        event("ping", {"type": "ping"}),
    ]
    for i in range(STREAM_CHUNKS):
        parts.append(
            event(
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": 0,
                    "delta": {"type": "text_delta", "text": token(i)},
                },
            )
        )
    parts.append(event("content_block_stop", {"type": "content_block_stop", "index": 0}))
    parts.append(
        event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                "usage": {"output_tokens": STREAM_CHUNKS},
            },
        )
    )
    parts.append(event("message_stop", {"type": "message_stop"}))
    return "".join(parts)


def _gemini_response(text: str, finish: bool, usage: dict[str, int] | None) -> dict[str, object]:
    candidate: dict[str, object] = {
        "content": {"parts": [{"text": text}], "role": "model"},
        "index": 0,
    }
    if finish:
        candidate["finishReason"] = "STOP"
    response: dict[str, object] = {
        "candidates": [candidate],
        "modelVersion": MODEL,
        "responseId": "bench000000000000",
    }
    if usage is not None:
        response["usageMetadata"] = usage
    return response


def gemini_response() -> str:
    usage = {"promptTokenCount": 14, "candidatesTokenCount": 17, "totalTokenCount": 31}
    return _dumps(_gemini_response(REPLY, True, usage))


def gemini_stream() -> str:
    events = []
    for i in range(STREAM_CHUNKS):
        last = i == STREAM_CHUNKS - 1
        usage = {"promptTokenCount": 14}
        if last:
            usage = {"promptTokenCount": 14, "candidatesTokenCount": 200, "totalTokenCount": 214}
        events.append(_gemini_response(token(i), last, usage))
    return "".join(f"data: {_dumps(e)}\r\n\r\n" for e in events)


def ollama_tags() -> str:
    model = {
        "name": f"{MODEL}:latest",
        "model": f"{MODEL}:latest",
        "modified_at": "2025-01-01T00:00:00Z",
        "size": 1,
        "digest": "0" * 64,
        "details": {"format": "gguf", "family": "bench", "parameter_size": "1B"},
    }
    return _dumps({"models": [model]})


def _ollama_line(text: str, done: bool) -> dict[str, object]:
    line: dict[str, object] = {
        "model": f"{MODEL}:latest",
        "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done": done,
    }
    if done:
        line.update(done_reason="stop", prompt_eval_count=14, eval_count=STREAM_CHUNKS)
    return line


def ollama_chat() -> str:
    line = _ollama_line(REPLY, True)
    line["eval_count"] = 17
    return _dumps(line)


def ollama_stream() -> str:
    lines = [_ollama_line(token(i), False) for i in range(STREAM_CHUNKS)]
    lines.append(_ollama_line("", True))
    return "".join(_dumps(line) + "\n" for line in lines)


def _inline(body: str) -> str:
    if "'" in body or "$" in body or "\\" in body or len(body) > 3500:
        raise ValueError("inline nginx bodies must be short and free of ' $ \\")
    return f"'{body}'"


NGINX_CONF = """\
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 300s;
    keepalive_requests 1000000;
    client_max_body_size 16m;
    client_body_buffer_size 1m;
    server_tokens off;
    etag off;

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        root {dir}/www;
        error_page 405 =200 $uri;

        location ~ ^(/[a-z0-9]+)?/v1/models$ {{
            default_type application/json;
            return 200 {openai_models};
        }}
        location ~ ^/(line[0-9]+)/v1/chat/completions$ {{
            default_type text/event-stream;
            alias {dir}/www/$1.sse;
        }}
        location = /v1/chat/completions {{
            default_type application/json;
            return 200 {openai_json};
        }}
        location = /v1/messages {{
            default_type application/json;
            return 200 {anthropic_json};
        }}
        location ~ ^/v1(beta)?/models/[^/]+:generateContent$ {{
            default_type application/json;
            return 200 {gemini_json};
        }}
        location = /api/tags {{
            default_type application/json;
            return 200 {ollama_tags};
        }}
        location = /api/chat {{
            default_type application/json;
            return 200 {ollama_chat};
        }}
        location = /stream/v1/chat/completions {{
            default_type text/event-stream;
            alias {dir}/www/openai_stream.sse;
        }}
        location = /stream/v1/messages {{
            default_type text/event-stream;
            alias {dir}/www/anthropic_stream.sse;
        }}
        location ~ ^/stream/v1(beta)?/models/[^/]+:streamGenerateContent$ {{
            default_type text/event-stream;
            alias {dir}/www/gemini_stream.sse;
        }}
        location = /stream/api/chat {{
            default_type application/x-ndjson;
            alias {dir}/www/ollama_stream.ndjson;
        }}
{tool_locations}        location / {{
            return 404;
        }}
    }}
}}
"""


def write(directory: Path, port: int) -> None:
    import tool_call  # here, not at the top: it reads this module's constants when imported

    www = directory / "www"
    www.mkdir(parents=True, exist_ok=True)
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (directory / "tmp" / sub).mkdir(parents=True, exist_ok=True)
    files = {
        "openai_stream.sse": openai_stream(),
        "anthropic_stream.sse": anthropic_stream(),
        "gemini_stream.sse": gemini_stream(),
        "ollama_stream.ndjson": ollama_stream(),
    }
    for name, size in LONG_LINES.items():
        files[f"{name}.sse"] = long_line_stream(size)
    files.update(tool_call.files())
    for name, body in files.items():
        (www / name).write_text(body, encoding="utf-8")
    conf = NGINX_CONF.format(
        dir=directory,
        port=port,
        openai_json=_inline(openai_completion()),
        openai_models=_inline(openai_models()),
        anthropic_json=_inline(anthropic_message()),
        gemini_json=_inline(gemini_response()),
        ollama_tags=_inline(ollama_tags()),
        ollama_chat=_inline(ollama_chat()),
        tool_locations=tool_call.NGINX_LOCATIONS.format(dir=directory),
    )
    (directory / "nginx.conf").write_text(conf, encoding="utf-8")
    # nginx's worker runs as an unprivileged user when the master is root: let it read.
    for path in [directory, *directory.rglob("*")]:
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--port", required=True, type=int)
    args = parser.parse_args()
    write(args.dir.resolve(), args.port)


if __name__ == "__main__":
    main()
