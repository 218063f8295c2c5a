"""`/connect` for the interactive shell: argument parsing, history scrubbing, the picker.

Forms::

    /connect                                   picker: mode -> provider -> model
    /connect <provider>                        picker, from the model step
    /connect <provider>/<model> [key] [url]
    /connect <provider> <model> [key] [url]

After the model, an argument starting with http:// or https:// is the base URL; `-` (or
`none`, `local`) stands for "no key"; anything else is the API key. The key is used for the
connection only: it is registered with `rlm_code.core.redact` (so no error message can show
it), never printed, and dropped from the line before it reaches the history file.

The picker's ACP mode only lists agents and says how to start them: an ACP agent is a program
launched by its own CLI (or an editor), not a model endpoint, so there is nothing to connect to.

Discovery is read through `discovery` (any failure counts as "no discovery": the picker then
lists every provider without a running/not-running mark). What of a `/connect` line may reach
the history file is `history`'s rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rlm_code.cli.shell.discovery import (
    ACP_DISCOVERY_TIMEOUT_S,
    LOCAL_DISCOVERY_TIMEOUT_S,
    LocalServer,
    acp_agents,
    local_servers,
)
from rlm_code.cli.shell.history import NO_KEY, is_url
from rlm_code.cli.shell.picker import Choice, Terminal, pick

if TYPE_CHECKING:
    from rlm_code.models.llm_connector import LLMConnector

USAGE = "usage: /connect [<provider> <model> | <provider>/<model>] [api-key] [base-url]"
TYPE_A_NAME = "type a name..."


class ConnectUsageError(ValueError):
    """The `/connect` arguments cannot be read; the message says how to write them."""


@dataclass(frozen=True)
class ConnectRequest:
    """What `/connect` asks for. `model` None means "let the user pick one"."""

    model: str | None
    provider: str | None = None
    api_key: str | None = field(default=None, repr=False)
    base_url: str | None = None


def parse_connect(args: Sequence[str]) -> ConnectRequest | None:
    """`/connect` arguments -> a request; None for the picker. Raises ConnectUsageError."""
    if not args:
        return None
    first = args[0]
    if "/" in first:
        if first.startswith("/") or first.endswith("/"):
            raise ConnectUsageError(f"{first!r} is not provider/model; {USAGE}")
        model: str | None = first
        provider = None
        rest = list(args[1:])
    else:
        provider = first
        model = args[1] if len(args) > 1 else None
        rest = list(args[2:])
    key: str | None = None
    url: str | None = None
    for token in rest:
        if is_url(token) and url is None:
            url = token
        elif token.lower() in NO_KEY and key is None:
            continue
        elif not is_url(token) and key is None:
            key = token
        else:
            raise ConnectUsageError(f"too many arguments; {USAGE}")
    return ConnectRequest(model, provider, key, url)


# -- the picker ---------------------------------------------------------------------------------


class Host(Protocol):
    """What the picker needs from the shell."""

    @property
    def term(self) -> Terminal: ...

    def connector(self) -> LLMConnector: ...

    def info(self, text: str) -> None: ...

    def connect(self, request: ConnectRequest) -> None: ...

    def read_name(self, prompt: str, choices: Sequence[str]) -> str | None: ...

    def cached_models(self, provider_id: str) -> list[str]: ...


MODES: tuple[Choice[str], ...] = (
    Choice("Local", "local", "a model server on this machine (Ollama, LM Studio, vLLM, ...)"),
    Choice("BYOK", "byok", "a cloud provider with your own API key"),
    Choice("ACP", "acp", "a coding agent that speaks ACP (started by its own CLI)"),
)


def run_picker(host: Host, provider: str | None = None) -> None:
    """Mode -> provider -> model -> connect; every step can be cancelled. `/connect NAME` of a
    configured route (not a provider id) connects to that route."""
    connector = host.connector()
    if (
        provider is not None
        and connector.provider_registry.get(provider) is None
        and connector.config_manager.route_settings(provider) is not None
    ):
        host.connect(ConnectRequest(provider))
        return
    providers = {p["id"]: p for p in connector.get_supported_providers()}
    servers: dict[str, LocalServer] | None = None
    if provider is None:
        mode = pick("Connect: choose a mode", MODES, host.term)
        if mode is None:
            return
        if mode.value == "acp":
            _acp(host, connector)
            return
        if mode.value == "local":
            host.info("looking for local model servers...")
            servers = local_servers(connector, LOCAL_DISCOVERY_TIMEOUT_S)
            if servers is None:
                host.info("local discovery is not available; showing every local provider")
        chosen = pick(
            f"Connect ({mode.label}): choose a provider",
            _provider_choices(providers.values(), mode.value, servers),
            host.term,
        )
        if chosen is None:
            return
        provider = chosen.value
    else:
        spec = connector.provider_registry.get(provider)
        if spec is None:
            raise ConnectUsageError(unknown_provider_message(provider, connector))
        provider = spec.provider_id
        if spec.is_local:
            servers = local_servers(connector, LOCAL_DISCOVERY_TIMEOUT_S)
    info = providers[provider]
    server = servers.get(provider) if servers else None
    model = _pick_model(host, connector, info, server)
    if model is None:
        return
    key: str | None = None
    if info["requires_api_key"] and not info["has_api_key"]:
        env = " or ".join(info["api_key_env_vars"])
        key = host.term.read_secret(
            f"{info['name']} API key (hidden; Enter to skip and use {env}): "
        )
        key = (key or "").strip() or None
        if key:
            from rlm_code.core.redact import register_secret

            register_secret(key)
    host.connect(ConnectRequest(model, provider, key, None))


def _provider_choices(
    providers: Iterable[Mapping[str, Any]],
    mode: str,
    servers: dict[str, LocalServer] | None,
) -> list[Choice[str]]:
    local = mode == "local"
    rows: list[tuple[int, Choice[str]]] = []
    for info in providers:
        if (info["connection_type"] == "local") != local:
            continue
        pid = info["id"]
        if local:
            url = info.get("default_base_url") or ""
            server = servers.get(pid) if servers is not None else None
            if servers is None:
                detail, rank = url, 1
            elif server is not None and server.running:
                count = f", {len(server.models)} models" if server.models else ""
                detail, rank = f"running at {server.base_url or url}{count}", 0
            elif server is not None and server.answered_as:
                detail, rank = f"{server.base_url} answers as {server.answered_as}", 1
            else:
                detail, rank = f"not running ({(server.base_url if server else '') or url})", 2
        elif info["has_api_key"]:
            detail, rank = "configured", 0
        elif not info["requires_api_key"]:
            detail, rank = "no key needed", 1
        else:
            detail, rank = f"needs {' or '.join(info['api_key_env_vars'])}", 2
        rows.append((rank, Choice(pid, pid, f"{info['name']}: {detail}")))
    rows.sort(key=lambda row: row[0])  # stable: registry order within each rank
    return [choice for _, choice in rows]


def _pick_model(
    host: Host,
    connector: LLMConnector,
    info: Mapping[str, Any],
    server: LocalServer | None,
) -> str | None:
    pid = info["id"]
    choices: list[Choice[str | None]] = []
    seen: set[str] = set()

    def add(names: Iterable[str], detail: str) -> None:
        for name in names:
            if name not in seen:
                seen.add(name)
                choices.append(Choice(name, name, detail))

    if server is not None and server.running:
        add(server.models, "on the server")
    elif pid == "ollama" and server is None:
        add(connector.list_available_ollama_models(), "installed")
    add(host.cached_models(pid), "listed by the provider")
    add(connector.list_provider_example_models(pid, limit=50), "suggested")
    choices.append(Choice(TYPE_A_NAME, None, "any model the provider serves"))
    chosen = pick(f"Connect ({pid}): choose a model", choices, host.term)
    if chosen is None:
        return None
    if chosen.value is not None:
        return chosen.value
    name = host.read_name(f"{pid} model name: ", sorted(seen))
    name = (name or "").strip()
    if not name:
        host.info("cancelled: no model name given")
        return None
    return name


def _acp(host: Host, connector: LLMConnector) -> None:
    host.info(
        "ACP agents (Agent Client Protocol) are coding agents that run as their own "
        "programs; an editor or ACP client launches them with their own CLI. They are not "
        "model endpoints, so /connect cannot connect to one; it can show how to start it."
    )
    host.info("looking for ACP agents...")
    agents = acp_agents(connector, ACP_DISCOVERY_TIMEOUT_S)
    if agents is None:
        host.info("ACP discovery is not available in this installation.")
        return
    if not agents:
        host.info("no ACP agents found on this machine.")
        return
    choices = [
        Choice(
            a.agent_id,
            a,
            f"{a.name}: "
            + ("installed" if a.installed else "not installed")
            + (", configured" if a.configured else (", not configured" if a.installed else ""))
            + (f" ({a.version})" if a.version else ""),
        )
        for a in sorted(agents, key=lambda a: (not a.installed, not a.configured))
    ]
    chosen = pick("ACP agents", choices, host.term)
    if chosen is None:
        return
    agent = chosen.value
    if agent.installed and agent.command:
        host.info(
            f"{agent.name} is installed. An editor or ACP client starts it with: "
            f"{agent.command}. It uses its own model and keys, not this shell's connection."
        )
    elif agent.installed:
        host.info(f"{agent.name} is installed, but not its ACP entry point.")
    else:
        host.info(f"{agent.name} is not installed.")
    if agent.hint:
        host.info(agent.hint)
    if agent.installed and not agent.configured:
        host.info(f"{agent.name} is not signed in yet: run its CLI once to set it up.")
    if agent.docs_url:
        host.info(f"more: {agent.docs_url}")


def unknown_provider_message(name: str, connector: LLMConnector) -> str:
    """`unknown provider 'x'; did you mean ...?` (or a pointer to /providers)."""
    from rlm_code.cli._output import close_matches

    matches = close_matches(name, connector.provider_registry.names())
    if matches:
        return f"unknown provider {name!r}; did you mean: {', '.join(matches)}?"
    return f"unknown provider {name!r}; /providers lists the supported ones"


__all__ = [
    "USAGE",
    "ConnectRequest",
    "ConnectUsageError",
    "Host",
    "parse_connect",
    "run_picker",
    "unknown_provider_message",
]
