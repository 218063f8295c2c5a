"""The shell shows a reply's reasoning dimmed and apart from the answer, and tool calls as lines.

The pty tests drive the real shell against a test's own local server, whose scripted replies
(`queue_replies`) carry reasoning and tool calls; they check what the user sees, what the
next request sends (the answer only, never the reasoning) and `/reasoning on|off`. The
writer that lays out reasoning (`_output.ReasoningWriter`) and the reply view are tested
directly for the cases a pty cannot pin down (pieces split anywhere, escape sequences).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from shell_helpers import ENTER, Session, error_lines, shell_env

from rlm_code.cli._output import ReasoningWriter, tool_call_line
from rlm_code.cli.shell.chat import ReplyView
from rlm_code.cli.shell.line_editor import Completer
from rlm_code.cli.shell.names import COMMAND_NAMES
from rlm_code.models.types import ReasoningDelta, TextDelta, ToolCall, ToolCallDone
from rlm_code.testing import LocalProtocolServer, ScriptedReply

pytestmark = pytest.mark.timeout(60)

VLLM = "vllm/test-model"
DIM = "\x1b[2m"
RESET = "\x1b[0m"


def open_shell(
    sessions: list[Session],
    tmp_path: Path,
    server: LocalProtocolServer,
    prompt: str = f"{VLLM}> ",
    **env: str,
) -> Session:
    environ = shell_env(tmp_path, VLLM_BASE_URL=server.openai_base_url, RLM_CODE_MODEL=VLLM, **env)
    session = Session(tmp_path, environ)
    sessions.append(session)
    session.expect_exact(prompt)
    return session


def chat_messages(server: LocalProtocolServer) -> list[Any]:
    return [r.json["messages"] for r in server.requests if r.path == "/v1/chat/completions"]


def test_reasoning_is_shown_before_the_answer_and_not_kept(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    fresh_server.queue_replies(
        [ScriptedReply(text="The answer is 42.", reasoning="step one\nstep two\n")]
    )
    session = open_shell(sessions, tmp_path, fresh_server)
    out = session.run("what is the answer?", VLLM)
    assert "thinking: step one\n          step two\nThe answer is 42.\n" in out
    session.run("and why?", VLLM)
    assert chat_messages(fresh_server)[-1] == [
        {"role": "user", "content": "what is the answer?"},
        {"role": "assistant", "content": "The answer is 42."},
        {"role": "user", "content": "and why?"},
    ]
    assert session.exit() == 0


def test_reasoning_off_hides_it_and_on_shows_it_again(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    session = open_shell(sessions, tmp_path, fresh_server)
    assert "reasoning: on" in session.run("/reasoning", VLLM)
    assert "reasoning: off" in session.run("/reasoning off", VLLM)
    fresh_server.queue_replies([ScriptedReply(text="plain answer", reasoning="hidden thoughts")])
    out = session.run("hi", VLLM)
    assert "plain answer" in out
    assert "hidden thoughts" not in out and "thinking:" not in out
    assert "reasoning: off" in session.run("/reasoning", VLLM)
    assert "reasoning: on" in session.run("/reasoning ON", VLLM)
    fresh_server.queue_replies([ScriptedReply(text="second answer", reasoning="shown thoughts")])
    assert "thinking: shown thoughts\nsecond answer" in session.run("again", VLLM)
    errors = error_lines(session.run("/reasoning loud", VLLM))
    assert len(errors) == 1 and "/reasoning on" in errors[0]
    assert session.exit() == 0


def test_reasoning_is_dim_on_a_colour_terminal(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    fresh_server.queue_replies([ScriptedReply(text="answer", reasoning="deep thought")])
    coloured_prompt = f"\x1b[1;36m{VLLM}{RESET}> "
    session = open_shell(sessions, tmp_path, fresh_server, coloured_prompt, NO_COLOR="")
    session.child.sendline("hi")
    session.expect_exact(coloured_prompt)
    raw = session.log.getvalue().replace(RESET + DIM, "")  # each piece is dimmed on its own
    assert f"{DIM}thinking: deep thought{RESET}" in raw
    assert f"{DIM}answer" not in raw  # the answer itself is plain


def test_tool_calls_are_one_line_each_and_not_run(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    calls = [("lookup", {"q": "x"}), ("ping", "{}")]
    fresh_server.queue_replies([ScriptedReply(text="Let me check.", tool_calls=calls)])
    session = open_shell(sessions, tmp_path, fresh_server)
    out = session.run("check it", VLLM)
    lines = out.split("\n")
    assert 'tool call: lookup {"q": "x"}' in lines
    assert "tool call: ping {}" in lines
    assert "the shell offers no tools" in out
    session.run("next", VLLM)
    kept = chat_messages(fresh_server)[-1][1]
    assert kept == {"role": "assistant", "content": "Let me check."}  # no tool_calls replayed
    assert session.exit() == 0


def test_help_and_tab_completion_know_reasoning(
    sessions: list[Session], tmp_path: Path, fresh_server: LocalProtocolServer
) -> None:
    assert "/reasoning" in COMMAND_NAMES
    session = open_shell(sessions, tmp_path, fresh_server)
    assert "/reasoning [on|off]" in session.run("/help", VLLM)
    session.send("/reas\t of\t" + ENTER)
    assert "reasoning: off" in session.prompt(VLLM)
    assert session.exit() == 0


def test_completer_offers_on_and_off() -> None:
    completer = Completer(COMMAND_NAMES, list, lambda provider: [])
    assert completer.candidates("", "/rea") == ["/reasoning"]
    assert completer.candidates("/reasoning ", "") == ["off", "on"]
    assert completer.candidates("/reasoning ", "o") == ["off", "on"]
    assert completer.candidates("/reasoning on ", "") == []


# -- the writers, directly -------------------------------------------------------------------------


def written(pieces: list[str], *, color: bool = False) -> str:
    out = io.StringIO()
    writer = ReasoningWriter(out, color=color)
    for piece in pieces:
        writer.feed(piece)
    writer.end()
    return out.getvalue()


@pytest.mark.parametrize(
    ("pieces", "expected"),
    [
        (["one"], "thinking: one\n"),
        (["\n\nfirst", " line\nsecond\n", "\n"], "thinking: first line\n          second\n"),
        (["a\n", "\n", "b"], "thinking: a\n          \n          b\n"),
        (["\n", "\n"], ""),  # only newlines: no block at all
        (["x\x1b]0;tit", "le\x07y\x1b[2", "Jz"], "thinking: xyz\n"),  # split sequences removed
    ],
)
def test_reasoning_writer_layout(pieces: list[str], expected: str) -> None:
    assert written(pieces) == expected


def test_reasoning_writer_dims_each_piece_on_its_own() -> None:
    assert written(["ab", "c\nd"], color=True) == (
        f"{DIM}thinking: ab{RESET}{DIM}c\n          d{RESET}\n"
    )


def test_reply_view_keeps_reasoning_apart_from_the_answer() -> None:
    out = io.StringIO()
    view = ReplyView(out, color=False, show_reasoning=True)
    call = ToolCall("call_1", "lookup", {"q": "x"}, '{"q": "x"}')
    events = [
        ReasoningDelta("plan"),
        TextDelta("Hello"),
        TextDelta(" \x1b[2Jworld"),
        ReasoningDelta("more"),
        ToolCallDone(call),
        TextDelta("done"),
    ]
    for event in events:
        view.add(event)
    view.end()
    assert out.getvalue() == (
        'thinking: plan\nHello world\nthinking: more\ntool call: lookup {"q": "x"}\ndone\n'
    )
    assert view.text == "Hello \x1b[2Jworlddone"  # the conversation keeps the raw answer
    assert view.tool_calls == [call]


def test_tool_call_line_is_one_filtered_line() -> None:
    line = tool_call_line("look\x1b[2Jup", '{"text": "a\\nb",\n "x": 1}')
    assert line == 'tool call: lookup {"text": "a\\nb", "x": 1}'
    long = tool_call_line("write", '{"body": "' + "y" * 500 + '"}')
    assert len(long) == 200 and long.endswith("...")
