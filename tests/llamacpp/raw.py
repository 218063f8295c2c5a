"""Raw HTTP calls to the llama.cpp server (httpx2, no code of ours in between).

The tests compare what our connector reports with what the server itself said for the same
request, so this side must not share a parser with the code under test: SSE is split by
hand here, and the JSON is read field by field.

The server reuses its prompt cache between requests that share a prompt, which changes
`cached_tokens` from one call to the next. `settled` makes the cache state repeatable:
after one warm-up call with the same prompt, every later call with that prompt sees the
same cached prefix, so a raw call and our call can be compared count for count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

TIMEOUT = 30.0


@dataclass(frozen=True)
class RawReply:
    """One reply as the server sent it: text, raw stop reason, `usage` object, body(ies)."""

    text: str
    finish_reason: str | None
    usage: dict[str, Any]
    body: bytes


def chat_body(prompt: str, *, max_tokens: int, stream: bool, **extra: Any) -> dict[str, Any]:
    """The chat-completions body our adapter sends for a plain prompt at temperature 0."""
    body: dict[str, Any] = {
        "model": "tiny",
        "messages": [{"role": "user", "content": prompt}],
        "stream": stream,
        "temperature": 0,
        "max_tokens": max_tokens,
        **extra,
    }
    if stream:
        body["stream_options"] = {"include_usage": True}
    return body


def _sse_data(body: bytes) -> list[str]:
    """The `data:` payloads of an SSE body, in order (events are blank-line separated)."""
    payloads = []
    for line in body.decode("utf-8").splitlines():
        if line.startswith("data:"):
            payloads.append(line[5:].strip())
    return payloads


def chat(base_url: str, prompt: str, *, max_tokens: int, stream: bool, **extra: Any) -> RawReply:
    """POST /v1/chat/completions, whole or streamed, and read the server's own answer."""
    import httpx2

    body = chat_body(prompt, max_tokens=max_tokens, stream=stream, **extra)
    reply = httpx2.post(f"{base_url}/v1/chat/completions", json=body, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    if not stream:
        data = reply.json()
        first = data["choices"][0]
        text, stop = first["message"]["content"], first["finish_reason"]
        return RawReply(text, stop, data["usage"], reply.content)
    payloads = _sse_data(reply.content)
    assert payloads[-1] == "[DONE]", payloads[-3:]
    pieces: list[str] = []
    reason: str | None = None
    usage: dict[str, Any] = {}
    for payload in payloads[:-1]:
        event = json.loads(payload)
        for choice in event.get("choices") or []:
            pieces.append(choice.get("delta", {}).get("content") or "")
            reason = choice.get("finish_reason") or reason
        usage = event.get("usage") or usage
    return RawReply("".join(pieces), reason, usage, reply.content)


def messages(base_url: str, prompt: str, *, max_tokens: int, stream: bool) -> RawReply:
    """POST /v1/messages (llama.cpp's Anthropic endpoint), whole or streamed."""
    import httpx2

    body = {
        "model": "tiny",
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "stream": stream,
    }
    reply = httpx2.post(f"{base_url}/v1/messages", json=body, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    if not stream:
        data = reply.json()
        text = "".join(b["text"] for b in data["content"] if b["type"] == "text")
        return RawReply(text, data["stop_reason"], data["usage"], reply.content)
    pieces: list[str] = []
    reason: str | None = None
    usage: dict[str, Any] = {}
    for payload in _sse_data(reply.content):
        event = json.loads(payload)
        if event["type"] == "message_start":
            usage = {**event["message"]["usage"]}
        elif event["type"] == "content_block_delta" and event["delta"]["type"] == "text_delta":
            pieces.append(event["delta"]["text"])
        elif event["type"] == "message_delta":
            reason = event["delta"].get("stop_reason")
            usage.update(event.get("usage") or {})
    assert json.loads(_sse_data(reply.content)[-1])["type"] == "message_stop"
    return RawReply("".join(pieces), reason, usage, reply.content)


def settled(base_url: str, prompt: str, max_tokens: int) -> RawReply:
    """Warm the prompt cache for `prompt`, then return a whole reply in the settled state."""
    chat(base_url, prompt, max_tokens=max_tokens, stream=False)
    return chat(base_url, prompt, max_tokens=max_tokens, stream=False)


def openai_counts(usage: dict[str, Any]) -> dict[str, int]:
    """The server's chat-completions usage in `last_call`'s terms."""
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return {
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "cache_read_tokens": cached,
    }


def anthropic_counts(usage: dict[str, Any]) -> dict[str, int]:
    """The server's Messages usage in `last_call`'s terms (its input excludes cache reads)."""
    cached = usage.get("cache_read_input_tokens", 0)
    return {
        "prompt_tokens": usage["input_tokens"] + cached,
        "completion_tokens": usage["output_tokens"],
        "cache_read_tokens": cached,
    }


def json_body(reply: RawReply) -> Any:
    """A whole reply's body, parsed."""
    return json.loads(reply.body)
