"""One chat turn of the shell: send the conversation, show the reply as its events arrive.

Why a module of its own: the reply is more than text. `connector.stream(...)` yields typed
events, and each kind is shown its own way, apart from the answer:

- reasoning (`ReasoningDelta`) comes first, dim on a colour terminal, its block prefixed
  `thinking: ` (`_output.ReasoningWriter`); `/reasoning off` hides it;
- the answer (`TextDelta`) streams as plain text, filtered for the terminal;
- a tool call (`ToolCallDone`) is one dim line; the shell offers no tools, so it is rare and
  never run.

The conversation keeps only the answer's text (as before): reasoning is not replayed, and a
tool call without its result would be an invalid turn for most providers. Imported on the
first message, never at start-up.

Conversation policy (unchanged; see `loop`): a finished reply is kept; an interrupted one is
kept as far as it got, marked `INTERRUPTED_MARK`, or dropped with its message if no text had
arrived; a failed call or an empty reply adds nothing. The stream is closed on every way out,
which records the usage received.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TextIO

from rlm_code.cli._output import ReasoningWriter, style, tool_call_line
from rlm_code.cli.sanitize import TerminalSanitizer
from rlm_code.cli.shell.names import INTERRUPTED_MARK
from rlm_code.cli.shell.terminal import close_quietly
from rlm_code.models.types import ReasoningDelta, TextDelta, ToolCall, ToolCallDone

if TYPE_CHECKING:
    from rlm_code.cli.shell.loop import Shell


class ReplyView:
    """Writes one reply's events to `out`: reasoning apart and first, the answer, tool calls.

    Keeps the answer's raw text (`text`) for the conversation and the tool calls it saw."""

    def __init__(self, out: TextIO, *, color: bool, show_reasoning: bool) -> None:
        self.out = out
        self.color = color
        self.show_reasoning = show_reasoning
        self.parts: list[str] = []
        self.tool_calls: list[ToolCall] = []
        self._clean = TerminalSanitizer()  # the answer is the provider's text
        self._thinking = ReasoningWriter(out, color=color)
        self._mid_line = False  # the answer's last write did not end a line

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def add(self, event: Any) -> None:
        kind = type(event)
        if kind is TextDelta:
            if self._thinking.started:
                self._thinking.end()
            self.parts.append(event.text)
            shown = self._clean.feed(event.text)
            if shown:
                self.out.write(shown)
                self.out.flush()
                self._mid_line = not shown.endswith("\n")
        elif kind is ReasoningDelta:
            if self.show_reasoning:
                self._break_line()
                self._thinking.feed(event.text)
        elif kind is ToolCallDone:
            call: ToolCall = event.tool_call
            self.tool_calls.append(call)
            self._thinking.end()
            self._break_line()
            line = tool_call_line(call.name, call.arguments_json)
            self.out.write(style(line, "dim", color=self.color) + "\n")
            self.out.flush()

    def _break_line(self) -> None:
        if self._mid_line:
            self.out.write("\n")
            self._mid_line = False

    def end(self) -> None:
        """After the last event (or an interruption): close any open line."""
        self._thinking.end()
        self._break_line()
        self.out.flush()


def chat(shell: Shell, text: str) -> None:
    """Send `text` with the conversation so far and show the reply as it streams."""
    connector = shell.connector()
    if not connector.get_connection_status()["connected"]:
        shell.error("not connected; use /connect <provider> <model>, or /connect to pick one")
        return
    messages = [*shell.history, {"role": "user", "content": text}]
    stream = connector.stream(messages=messages, system_prompt=shell.system)
    view = ReplyView(shell.out, color=shell.color, show_reasoning=shell.show_reasoning)
    interrupted = False
    failure: Exception | None = None
    try:
        for event in stream:
            view.add(event)
    except KeyboardInterrupt:
        interrupted = True
    except BrokenPipeError:
        raise  # the reader of our output is gone: `cli.main` ends quietly
    except Exception as exc:
        failure = exc
    finally:
        close_quietly(stream)
        view.end()
    reply = view.text
    if failure is not None:
        shell.report(failure)
        return
    if interrupted:
        if reply:
            shell.say("(reply interrupted; the part shown stays in the conversation)", dim=True)
            remember(shell, text, reply.rstrip() + "\n" + INTERRUPTED_MARK)
        else:
            shell.out.write("\n")
            shell.say("(interrupted before the reply started; nothing was kept)", dim=True)
        return
    if view.tool_calls:
        shell.say("(the shell offers no tools: the tool call was not run)", dim=True)
    if stream.response.finish_reason == "length":
        shell.say("(the reply was cut off by the token limit)", dim=True)
    if not reply:
        if not view.tool_calls:
            shell.say("(the model sent an empty reply; nothing was kept)", dim=True)
        return
    remember(shell, text, reply)


def remember(shell: Shell, text: str, reply: str) -> None:
    shell.history.append({"role": "user", "content": text})
    shell.history.append({"role": "assistant", "content": reply})


__all__ = ["ReplyView", "chat", "remember"]
