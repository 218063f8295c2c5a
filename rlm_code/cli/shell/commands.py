"""The shell's slash commands. Imported on the first `/command`, never at start-up.

Each command is `func(shell, rest) -> bool | None`: `rest` is the text after the command
name; returning False leaves the shell. Errors are raised and the shell turns them into one
`error:` line. Tables are plain aligned text (`_output.format_table`), coloured only on a
terminal without `NO_COLOR`; their cells, like every `shell.say` line, are filtered for the
terminal (a model name or a discovery detail is the provider's text). No command ever prints
an API key: `/status` says where a key came from, not what it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from rlm_code.cli._output import close_matches, format_table, use_color
from rlm_code.cli.shell.names import COMMAND_NAMES, INTERRUPTED_MARK

if TYPE_CHECKING:
    from rlm_code.cli.shell.loop import Shell
    from rlm_code.models.llm_connector import LLMConnector

Handler = Callable[["Shell", str], "bool | None"]


class Command:
    """One slash command: its usage line, its one-line summary and its handler.

    A plain slots class, not a dataclass: `dataclasses` pulls in `inspect` (~4 ms), and this
    module loads on the first command, `/exit` included, so it counts in start-up time.
    """

    __slots__ = ("handler", "summary", "usage")

    def __init__(self, usage: str, summary: str, handler: Handler) -> None:
        self.usage = usage
        self.summary = summary
        self.handler = handler


def dispatch(shell: Shell, text: str) -> bool:
    """Run one `/command ...` line; False means leave the shell."""
    name, _, rest = text.partition(" ")
    name = name.lower()
    command = COMMANDS.get(name)
    if command is None:
        matches = close_matches(name, COMMAND_NAMES, n=2)
        hint = f"did you mean {' or '.join(matches)}? " if matches else ""
        shell.error(f"unknown command {name}; {hint}/help lists the commands")
        return True
    return command.handler(shell, rest.strip()) is not False


def table(shell: Shell, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    text = format_table(
        headers, [[str(c) for c in row] for row in rows], color=use_color(shell.out)
    )
    shell.out.write(text + "\n")
    shell.out.flush()


# -- connection ---------------------------------------------------------------------------------


def cmd_connect(shell: Shell, rest: str) -> None:
    from rlm_code.cli.shell.connect import ConnectRequest, parse_connect

    request = parse_connect(rest.split())
    if request is None:
        request = ConnectRequest(None)
    shell.connect(request)


def cmd_disconnect(shell: Shell, rest: str) -> None:
    connector = shell.connector()
    status = connector.get_connection_status()
    if not status["connected"]:
        shell.say("not connected")
        return
    connector.disconnect()
    shell.say(f"disconnected from {status['model_id']}")


def cmd_status(shell: Shell, rest: str) -> None:
    connector = shell.connector()
    status = connector.get_connection_status()
    if not status["connected"]:
        shell.say("not connected; /connect <provider> <model>, or /connect to pick one")
    else:
        from rlm_code.core.redact import redact

        source = status.get("api_key_source")
        if status["has_api_key"]:
            key = f"set (from {source})" if source else "set"
        else:
            key = "not needed" if status["connection_type"] == "local" else "none"
        rows = [
            ("model", status["model_id"]),
            ("provider", f"{status['provider_name']} ({status['connection_type']})"),
            ("base URL", redact(str(status["base_url"]))),
            ("API key", key),
            ("route", status.get("route") or "-"),
            *_profile_rows(connector),
        ]
        table(shell, ("connection", ""), rows)
    turns = sum(1 for m in shell.history if m["role"] == "user")
    system = shell.system
    shell.say(f"conversation: {turns} exchange{'s' if turns != 1 else ''}", dim=True)
    shell.say(f"system prompt: {_preview(system) if system else '(none)'}", dim=True)


def _profile_rows(connector: LLMConnector) -> list[tuple[str, str]]:
    """The model's context window and capabilities, with where they came from (a local
    server is asked once per connection, within the connect timeout; nothing on failure)."""
    from rlm_code.core.exceptions import ModelError

    try:
        profile = connector.profile()
    except ModelError:
        return []
    window = profile.context_window
    source = profile.sources.get("context_window", "default")
    context = f"{window:,} tokens ({source})" if window else "unknown"
    return [("context", context), ("supports", ", ".join(profile.capabilities()) or "-")]


def _preview(text: str, limit: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def cmd_usage(shell: Shell, rest: str) -> None:
    """The connector's usage summary: per model, then the totals (the very same numbers)."""
    summary = shell.connector().get_usage_summary()
    totals = summary["totals"]
    failed = int(totals.get("failed_calls", 0))
    if not totals["total_calls"] and not failed:
        shell.say("no calls yet in this session")
        return
    headers = ("model", "calls", "prompt", "completion", "total", "no usage reported", "cost")

    def row(name: str, entry: dict[str, Any], calls: str) -> list[Any]:
        return [
            name,
            entry[calls],
            entry["prompt_tokens"],
            entry["completion_tokens"],
            entry["total_tokens"],
            entry["unknown_usage_calls"],
            _cost(entry),
        ]

    rows = [row(name, entry, "calls") for name, entry in summary["by_model"].items()]
    rows.append(row("total", totals, "total_calls"))
    table(shell, headers, rows)
    unknown = int(totals["unknown_usage_calls"])
    if unknown:
        shell.say(
            f"{unknown} call{'s' if unknown != 1 else ''} got no usage report (an interrupted "
            "stream, or a server that does not send one): not counted in the token totals",
            dim=True,
        )
    if failed:
        shell.say(
            f"{failed} failed call{'s' if failed != 1 else ''} (no reply, no tokens)", dim=True
        )
    if totals.get("cost_partial"):
        shell.say(
            "cost covers only the calls with a known price ('+' marks a partial sum); "
            "`rlm-code usage` shows the ledger",
            dim=True,
        )
    last = summary.get("last_call")
    if last and last.get("interrupted"):
        shell.say(
            f"the last call ({last['model']}) stopped before the reply was complete", dim=True
        )


def _cost(entry: dict[str, Any]) -> str:
    """`$0.0123`, `$0.0123+` when some call's price is unknown, `unknown` when none is known."""
    cost = entry.get("cost_usd")
    if cost is None:
        return "unknown"
    return f"${cost:.4f}" + ("+" if entry.get("cost_partial") else "")


# -- catalog ------------------------------------------------------------------------------------


def cmd_providers(shell: Shell, rest: str) -> None:
    rows = []
    for info in shell.connector().get_supported_providers():
        if info["has_api_key"]:
            configured = "yes"
        elif not info["requires_api_key"]:
            configured = "no key needed"
        else:
            configured = "no: set " + " or ".join(info["api_key_env_vars"])
        rows.append((info["id"], info["name"], info["connection_type"], configured))
    table(shell, ("id", "name", "mode", "configured"), rows)
    shell.say("connect with /connect <id> <model>, or /connect to pick one", dim=True)


def cmd_models(shell: Shell, rest: str) -> None:
    connector = shell.connector()
    status = connector.get_connection_status()
    which = rest.strip()
    if not which:
        if not status["connected"]:
            shell.say("not connected: name one: /models <provider>, /models local or /models cloud")
            return
        _print_models(shell, connector, str(status["provider"]), status)
        return
    lowered = which.lower()
    if lowered == "local":
        _local_table(shell, connector)
        return
    if lowered in ("cloud", "byok"):
        rows = []
        for info in connector.get_supported_providers():
            if info["connection_type"] != "byok":
                continue
            models = connector.list_provider_example_models(info["id"], limit=3)
            ready = "yes" if info["has_api_key"] or not info["requires_api_key"] else "no"
            rows.append((info["id"], ready, ", ".join(models) or "-"))
        table(shell, ("provider", "configured", "models (first 3)"), rows)
        shell.say("all of one provider: /models <provider>", dim=True)
        return
    spec = connector.provider_registry.get(which)
    if spec is None:
        from rlm_code.cli.shell.connect import unknown_provider_message

        shell.error(unknown_provider_message(which, connector))
        return
    _print_models(shell, connector, spec.provider_id, status)


def _print_models(
    shell: Shell, connector: LLMConnector, provider_id: str, status: dict[str, Any]
) -> None:
    from rlm_code.core.exceptions import ModelError

    current = status["model"] if status["connected"] else None
    if status["connected"] and status["provider"] == provider_id:
        try:
            models = connector.list_models()
            source = f"served by {provider_id} (live list)"
        except ModelError as exc:
            shell.report(exc, prefix="could not list the live models: ")
            models = connector.list_provider_example_models(provider_id, limit=1000)
            source = f"curated for {provider_id}"
    else:
        models = connector.list_provider_example_models(provider_id, limit=1000)
        source = f"curated for {provider_id} (connect to see the provider's own list)"
    if not models:
        shell.say(f"no models {source}; /connect {provider_id} <model> with the name you know")
        return
    shell.say(f"models {source}:", dim=True)
    for name in models:
        mark = "  (connected)" if name == current else ""
        shell.say(f"  {name}{mark}")


def _local_table(shell: Shell, connector: LLMConnector) -> bool:
    from rlm_code.cli.shell.discovery import LOCAL_DISCOVERY_TIMEOUT_S, local_servers

    shell.say("looking for local model servers...", dim=True)
    servers = local_servers(connector, LOCAL_DISCOVERY_TIMEOUT_S)
    specs = connector.provider_registry.list_providers("local")
    if servers is None:
        shell.say("local discovery is not available; the local providers and their URLs:")
        table(
            shell, ("provider", "default URL"), [(s.provider_id, s.default_base_url) for s in specs]
        )
        return False
    rows = []
    for spec in specs:
        server = servers.get(spec.provider_id)
        if server is None:
            rows.append((spec.provider_id, "not running", spec.default_base_url or "-", "-"))
            continue
        models = ", ".join(server.models[:3]) + (", ..." if len(server.models) > 3 else "")
        state = "running" if server.running else "not running"
        rows.append((spec.provider_id, state, server.base_url or "-", models or "-"))
    rows.sort(key=lambda r: r[1] != "running")
    table(shell, ("provider", "status", "URL", "models"), rows)
    return True


def cmd_discover(shell: Shell, rest: str) -> None:
    from rlm_code.cli.shell.discovery import ACP_DISCOVERY_TIMEOUT_S, acp_agents

    connector = shell.connector()
    _local_table(shell, connector)
    shell.say("looking for ACP agents...", dim=True)
    agents = acp_agents(connector, ACP_DISCOVERY_TIMEOUT_S)
    if agents is None:
        shell.say("ACP discovery is not available")
    elif not agents:
        shell.say("no ACP agents found")
    else:
        rows = [
            (
                a.name,
                "yes" if a.installed else "no",
                "yes" if a.configured else "no",
                a.version or "-",
                a.command or "-",
            )
            for a in agents
        ]
        table(shell, ("agent", "installed", "configured", "version", "command"), rows)
        shell.say(
            "ACP agents run as their own programs (their CLI starts them); /connect picks models",
            dim=True,
        )


# -- conversation -------------------------------------------------------------------------------


def cmd_clear(shell: Shell, rest: str) -> None:
    turns = sum(1 for m in shell.history if m["role"] == "user")
    shell.history.clear()
    shell.say(f"conversation cleared ({turns} exchange{'s' if turns != 1 else ''} forgotten)")


def cmd_system(shell: Shell, rest: str) -> None:
    if not rest:
        if shell.system:
            shell.say(f"system prompt: {shell.system}")
        else:
            shell.say("no system prompt; set one with /system <text>")
        return
    if rest in ("--clear", "--reset"):
        shell.system = None
        shell.say("system prompt cleared")
        return
    shell.system = rest
    shell.say("system prompt set (sent with every message from now on)")


def cmd_reasoning(shell: Shell, rest: str) -> None:
    """Show or hide the model's reasoning (display only: what is asked of the model and what
    the conversation keeps do not change)."""
    word = rest.strip().lower()
    if word in ("on", "off"):
        shell.show_reasoning = word == "on"
    elif word:
        shell.error(f"unknown setting {rest.strip()!r}; use /reasoning on or /reasoning off")
        return
    if shell.show_reasoning:
        shell.say("reasoning: on (shown dimmed before the answer, when the model sends it)")
    else:
        shell.say("reasoning: off (hidden; the model may still reason)")


# -- shell --------------------------------------------------------------------------------------


def cmd_help(shell: Shell, rest: str) -> None:
    width = max(len(c.usage) for c in COMMANDS.values())
    seen: set[int] = set()
    lines = ["Type a message to chat; the whole conversation is sent each time.", ""]
    for command in COMMANDS.values():
        if id(command) in seen:
            continue
        seen.add(id(command))
        lines.append(f"  {command.usage:<{width}}  {command.summary}")
    lines += [
        "",
        "Keys: Tab completes; Up/Down recall history; Ctrl-C stops a reply (the part shown",
        f"stays, marked {INTERRUPTED_MARK}) or drops the line being typed; Ctrl-D leaves.",
        "A line starting with // sends a message that begins with /. A line starting with a",
        "space is kept out of the history file; /connect keys never reach it.",
    ]
    shell.say("\n".join(lines))


def cmd_exit(shell: Shell, rest: str) -> bool:
    return False


_EXIT = Command("/exit, /quit", "leave the shell (Ctrl-D too)", cmd_exit)
COMMANDS: dict[str, Command] = {
    "/connect": Command(
        "/connect [provider model [key] [url]]",
        "connect (no arguments: pick mode, provider, model)",
        cmd_connect,
    ),
    "/models": Command("/models [provider|local|cloud]", "list models", cmd_models),
    "/providers": Command("/providers", "list providers and whether each is set up", cmd_providers),
    "/discover": Command("/discover", "look for local model servers and ACP agents", cmd_discover),
    "/status": Command("/status", "show the connection and the conversation", cmd_status),
    "/usage": Command("/usage", "tokens used in this session, per model", cmd_usage),
    "/disconnect": Command("/disconnect", "close the connection", cmd_disconnect),
    "/clear": Command("/clear", "forget the conversation (keeps the system prompt)", cmd_clear),
    "/system": Command(
        "/system [text|--clear]", "show, set or clear the system prompt", cmd_system
    ),
    "/reasoning": Command(
        "/reasoning [on|off]", "show or hide the model's reasoning (default on)", cmd_reasoning
    ),
    "/help": Command("/help", "this help", cmd_help),
    "/exit": _EXIT,
    "/quit": _EXIT,
}

__all__ = ["COMMANDS", "Command", "dispatch"]
