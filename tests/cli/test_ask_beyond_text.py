"""`rlm-code ask` beyond text: `--json` keys, `--schema FILE`, `--reasoning`, tool calls, length.

Every test runs the real CLI in a subprocess against a local protocol server. Exact numbers
come from the server's own rules (`count_tokens`, `echo_reply`, `instance_of`); scripted
replies (`queue_replies`) make the "model" send reasoning, tool calls or broken JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from cli_process import cli_env, run_cli, run_in_pty
from shell_helpers import ANSI

from rlm_code.testing import LocalProtocolServer, ScriptedReply, count_tokens, echo_reply
from rlm_code.testing.scripted import instance_of

pytestmark = pytest.mark.timeout(90)

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}, "stars": {"type": "integer"}},
    "required": ["title", "stars"],
}
BUCKETS = (
    "input_tokens",
    "output_tokens",
    "cache_read_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "total_tokens",
)


def on(server: LocalProtocolServer) -> dict[str, str]:
    """The environment of a CLI run whose default connection is `vllm/test-model` on `server`."""
    return {"RLM_CODE_MODEL": "vllm/test-model", "VLLM_BASE_URL": server.openai_base_url}


def chat_bodies(server: LocalProtocolServer) -> list[Any]:
    return [r.json for r in server.requests if r.path == "/v1/chat/completions"]


def ask_json(tmp_path: Path, server: LocalProtocolServer, *args: str) -> dict[str, Any]:
    result = run_cli("ask", "--json", *args, env=on(server), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


# -- --json ----------------------------------------------------------------------------------------


def test_json_keeps_its_keys_and_adds_finish_reason_buckets_and_tool_calls(tmp_path: Path) -> None:
    prompt = "count these four words"
    result = run_cli("ask", "--json", prompt, cwd=tmp_path)  # the built-in server
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    reply = echo_reply(prompt)
    assert data["text"] == reply
    assert (data["provider"], data["model"]) == ("openai-compatible", "rlm-code-local")
    assert data["usage"] == {
        "total_calls": 1,
        "prompt_tokens": count_tokens(prompt),
        "completion_tokens": count_tokens(reply),
    }
    assert data["finish_reason"] == "stop"
    assert set(BUCKETS) <= set(data)
    assert data["input_tokens"] == count_tokens(prompt)
    assert data["output_tokens"] == count_tokens(reply)
    assert data["total_tokens"] == count_tokens(prompt) + count_tokens(reply)
    assert data["tool_calls"] == []
    assert "reasoning" not in data  # only when the model sent some


def test_json_unknown_usage_is_null_never_zero(tmp_path: Path, fresh_server) -> None:
    env = {"RLM_CODE_MODEL": "vllm/fault-no_usage", "VLLM_BASE_URL": fresh_server.openai_base_url}
    result = run_cli("ask", "--json", "hi", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["text"] == echo_reply("hi")
    assert {name: data[name] for name in BUCKETS} == dict.fromkeys(BUCKETS)


def test_json_reports_reasoning_when_asked(tmp_path: Path, fresh_server) -> None:
    data = ask_json(tmp_path, fresh_server, "--reasoning", "high", "why is the sky blue")
    assert data["reasoning"] == "Thinking about: why is the sky blue"
    assert data["text"] == echo_reply("why is the sky blue")
    body = chat_bodies(fresh_server)[-1]
    assert body["reasoning_effort"] == "high"


def test_json_reports_tool_calls(tmp_path: Path, fresh_server) -> None:
    fresh_server.queue_replies(
        [ScriptedReply(tool_calls=[("lookup", {"q": 'naïve "x"'}), ("ping", "{}")])]
    )
    data = ask_json(tmp_path, fresh_server, "look it up")
    assert data["finish_reason"] == "tool_calls"
    calls = data["tool_calls"]
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("lookup", {"q": 'naïve "x"'}),
        ("ping", {}),
    ]
    assert all(isinstance(c["id"], str) and c["id"] for c in calls)
    assert len({c["id"] for c in calls}) == 2


def test_json_reports_length_when_max_tokens_cuts(tmp_path: Path, fresh_server) -> None:
    data = ask_json(tmp_path, fresh_server, "--max-tokens", "2", "one two three four")
    assert data["finish_reason"] == "length"
    assert data["text"] == "Echo: one"
    assert data["output_tokens"] == 2


# -- streamed (plain) output: reasoning and notes on stderr, the answer alone on stdout --------


def test_streamed_reasoning_goes_to_stderr_and_stdout_is_the_answer(
    tmp_path: Path, fresh_server
) -> None:
    result = run_cli(
        "ask", "--reasoning", "2048", "hello there", env=on(fresh_server), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply("hello there") + "\n"
    assert "thinking: Thinking about: hello there\n" in result.stderr
    assert "\x1b" not in result.stderr  # not a terminal: no colour
    assert chat_bodies(fresh_server)[-1]["stream"] is True


def test_no_stream_reasoning_goes_to_stderr_too(tmp_path: Path, fresh_server) -> None:
    args = ("ask", "--no-stream", "--reasoning", "low", "hi")
    result = run_cli(*args, env=on(fresh_server), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == echo_reply("hi") + "\n"
    assert "thinking: Thinking about: hi\n" in result.stderr


@pytest.mark.parametrize(("no_color", "dim"), [("", True), ("1", False)])
def test_reasoning_is_dim_on_a_terminal_unless_no_color(
    tmp_path: Path, fresh_server, no_color: str, dim: bool
) -> None:
    env = cli_env(tmp_path, {**on(fresh_server), "NO_COLOR": no_color})
    terminal, stdout = run_in_pty("ask", "--reasoning", "low", "hi", cwd=tmp_path, env=env,
                                  tty="stderr")  # fmt: skip
    assert stdout == echo_reply("hi") + "\n"
    joined = terminal.replace("\x1b[0m\x1b[2m", "")  # each piece is dimmed on its own
    assert ("\x1b[2mthinking: Thinking about: hi\x1b[0m" in joined) is dim
    assert ("\x1b" in terminal) is dim
    assert "thinking: Thinking about: hi" in ANSI.sub("", terminal)


def test_streamed_tool_call_is_one_line_on_stderr(tmp_path: Path, fresh_server) -> None:
    fresh_server.queue_replies([ScriptedReply(text="ok", tool_calls=[("lookup", {"q": "x"})])])
    result = run_cli("ask", "look", env=on(fresh_server), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"
    assert 'tool call: lookup {"q": "x"}' in result.stderr.splitlines()


def test_streamed_cut_off_reply_gets_a_note_on_stderr(tmp_path: Path, fresh_server) -> None:
    result = run_cli("ask", "--max-tokens", "2", "a b c d", env=on(fresh_server), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Echo: a\n"
    assert "cut off by the token limit (finish reason: length)" in result.stderr


# -- --schema --------------------------------------------------------------------------------------


def test_schema_sends_response_format_and_prints_the_json(tmp_path: Path, fresh_server) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(SCHEMA), encoding="utf-8")
    result = run_cli("ask", "--schema", str(schema_file), "a film", env=on(fresh_server),
                     cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    expected = instance_of(SCHEMA, echo_reply("a film"))
    assert json.loads(result.stdout) == expected
    body = chat_bodies(fresh_server)[-1]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCHEMA


def test_schema_with_json_adds_the_parsed_reply(tmp_path: Path, fresh_server) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(SCHEMA), encoding="utf-8")
    data = ask_json(tmp_path, fresh_server, "--schema", str(schema_file), "a film")
    assert data["json"] == instance_of(SCHEMA, echo_reply("a film"))
    assert json.loads(data["text"]) == data["json"]


def test_schema_reply_that_is_not_json_is_an_error(tmp_path: Path, fresh_server) -> None:
    fresh_server.queue_replies([ScriptedReply(text="sorry, no JSON today")])
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(SCHEMA), encoding="utf-8")
    result = run_cli("ask", "--schema", "schema.json", "x", env=on(fresh_server), cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not valid JSON" in lines[0], result.stderr


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (None, "no such file"),
        ("DIR", "is a directory"),
        (b'{"type": "object",', "is not valid JSON"),
        (b"\xff\xfe{}", "is not UTF-8"),
        (b"[1, 2]", "must hold a JSON object"),
        (b'{"title": "no schema here"}', "does not look like a JSON schema"),
    ],
)
def test_bad_schema_file_is_one_line_exit_2_and_nothing_sent(
    tmp_path: Path, fresh_server, content: bytes | str | None, fragment: str
) -> None:
    path = tmp_path / "schema.json"
    if content == "DIR":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    result = run_cli("ask", "--schema", str(path), "hi", env=on(fresh_server), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rlm-code: --schema: ") and fragment in lines[0]
    assert chat_bodies(fresh_server) == []


@pytest.mark.parametrize("value", ["extreme", "0", "-5", "1.5"])
def test_bad_reasoning_value_is_a_usage_error(tmp_path: Path, value: str) -> None:
    result = run_cli("ask", "--reasoning", value, "hi", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "--reasoning" in result.stderr


# -- the writers, directly (independent of any adapter) --------------------------------------------


def test_stream_reply_splits_answer_reasoning_and_tool_calls() -> None:
    import io

    from rlm_code.cli.commands.ask import stream_reply
    from rlm_code.models.streaming import ResponseStream
    from rlm_code.models.types import (
        ReasoningDelta,
        StreamEnd,
        TextDelta,
        ToolCall,
        ToolCallDone,
        Usage,
        UsageReport,
    )

    call = ToolCall("call_9", "lookup", {"q": "x"}, '{"q": "x"}')
    events = [
        ReasoningDelta("let me\nthink"),
        TextDelta("Hello \x1b]0;evil\x07"),
        TextDelta("world"),
        ToolCallDone(call),
        UsageReport(Usage(input_tokens=3, output_tokens=4)),
        StreamEnd("tool_calls", "tool_calls"),
    ]
    done: list[Any] = []
    stream = ResponseStream(iter(events), "p", "m", on_done=lambda r, e: done.append(r))
    out, err = io.StringIO(), io.StringIO()
    response = stream_reply(stream, out, err)
    assert out.getvalue() == "Hello world\n"
    assert err.getvalue() == 'thinking: let me\n          think\ntool call: lookup {"q": "x"}\n'
    assert response.finish_reason == "tool_calls" and response.tool_calls == [call]
    assert len(done) == 1 and done[0].usage.output_tokens == 4  # closed once, usage recorded


def test_json_report_keys() -> None:
    from rlm_code.cli.commands.ask import json_report
    from rlm_code.models.types import Response, ToolCall, Usage

    response = Response(
        text="",
        usage=Usage(input_tokens=10, output_tokens=7, cache_read_tokens=5, reasoning_tokens=3),
        finish_reason="tool_calls",
        reasoning="hmm",
        tool_calls=[ToolCall("c1", "f", {"a": 1}, '{"a": 1}')],
    )
    status = {"provider": "openai", "model": "gpt-x"}
    report = json_report(response, status, {"total_calls": 1})
    assert report == {
        "text": "",
        "provider": "openai",
        "model": "gpt-x",
        "usage": {"total_calls": 1},
        "finish_reason": "tool_calls",
        "input_tokens": 10,
        "output_tokens": 7,
        "cache_read_tokens": 5,
        "cache_write_tokens": None,
        "reasoning_tokens": 3,
        "total_tokens": 22,
        "reasoning": "hmm",
        "tool_calls": [{"id": "c1", "name": "f", "arguments": {"a": 1}}],
    }
