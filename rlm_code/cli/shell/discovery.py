"""Local-server and ACP-agent discovery as the shell reads it: defensively.

Discovery (`discover_local_providers`, `discover_acp_agents`) is read through the connector's
public methods, and any failure (module missing, timeout, odd data) counts as "no discovery"
(None): the picker and the tables then fall back to the registry's list. Names and details
come from servers and programs the user does not control, so they are filtered for the
terminal here, once (`rlm_code.cli.sanitize`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlm_code.cli.sanitize import strip_controls_one_line

if TYPE_CHECKING:
    from rlm_code.models.llm_connector import LLMConnector

log = logging.getLogger("rlm_code.shell")

LOCAL_DISCOVERY_TIMEOUT_S = 1.0
ACP_DISCOVERY_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class LocalServer:
    """One local provider as discovery saw it."""

    provider_id: str
    running: bool
    base_url: str = ""
    models: tuple[str, ...] = ()
    answered_as: str = ""  # the URL answers, but as this other provider


@dataclass(frozen=True)
class Agent:
    """One ACP agent as discovery saw it."""

    agent_id: str
    name: str
    installed: bool
    configured: bool
    command: str = ""  # the command line that starts the agent's ACP server, if known
    version: str = ""
    hint: str = ""  # discovery's note: what was found and what is missing
    docs_url: str = ""


def _first(item: Mapping[str, Any], *keys: str) -> Any:
    for key in keys:
        value = item.get(key)
        if value not in (None, ""):
            return value
    return None


def _names(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple):
        return ()
    names: list[str] = []
    for value in values:
        if isinstance(value, Mapping):
            value = _first(value, "name", "id", "model")
        if isinstance(value, str):
            value = strip_controls_one_line(value)
            if value and value not in names:
                names.append(value)
    return tuple(names)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return strip_controls_one_line(" ".join(str(v) for v in value))
    return strip_controls_one_line(str(value))


def local_servers(connector: LLMConnector, timeout: float) -> dict[str, LocalServer] | None:
    """Discovery results by provider id; None when discovery is not available or failed.

    Discovery reports one dict per URL; providers sharing that URL (its `candidates`, e.g.
    TGI, MLX and llama.cpp on port 8080) are recorded as not running, with `answered_as`
    naming the provider the server was recognised as.
    """
    try:
        found = connector.discover_local_providers(timeout=timeout)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:  # any failure is "no discovery", never a crash
        log.debug("local discovery failed: %r", exc)
        return None
    if not isinstance(found, list):
        return None
    servers: dict[str, LocalServer] = {}
    for item in found:
        if not isinstance(item, Mapping):
            continue
        provider_id = _first(item, "provider_id", "id", "provider")
        if not isinstance(provider_id, str):
            continue
        running = bool(_first(item, "healthy", "running", "reachable", "available"))
        url = _text(_first(item, "base_url", "url", "endpoint"))
        server = LocalServer(provider_id, running, url, _names(item.get("models")))
        _keep(servers, server)
        candidates = item.get("candidates")
        for other in candidates if isinstance(candidates, list) else ():
            if isinstance(other, str) and other != provider_id:
                answered = provider_id if running else ""
                _keep(servers, LocalServer(other, False, url, answered_as=answered))
    return servers


def _keep(servers: dict[str, LocalServer], server: LocalServer) -> None:
    previous = servers.get(server.provider_id)
    if previous is None or (server.running and not previous.running):
        servers[server.provider_id] = server


def acp_agents(connector: LLMConnector, timeout: float) -> list[Agent] | None:
    """ACP agents from discovery; None when discovery is not available or failed."""
    try:
        found = connector.discover_acp_agents(timeout=timeout)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        log.debug("ACP discovery failed: %r", exc)
        return None
    if not isinstance(found, list):
        return None
    agents = []
    for item in found:
        if not isinstance(item, Mapping):
            continue
        agent_id = _text(_first(item, "agent_id", "id", "short_name", "name"))
        if not agent_id:
            continue
        agents.append(
            Agent(
                agent_id=agent_id,
                name=_text(_first(item, "display_name", "name")) or agent_id,
                installed=bool(item.get("installed")),
                configured=bool(_first(item, "configured", "ready")),
                command=_text(_first(item, "command", "launch_command", "acp_command")),
                version=_text(item.get("version")),
                hint=_text(_first(item, "install_hint", "install_command", "install", "docs_url")),
            )
        )
    return agents


__all__ = [
    "ACP_DISCOVERY_TIMEOUT_S",
    "LOCAL_DISCOVERY_TIMEOUT_S",
    "Agent",
    "LocalServer",
    "acp_agents",
    "local_servers",
]
