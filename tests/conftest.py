"""Shared fixtures: an isolated environment and the local protocol server.

Tests must never read the developer's real config or keys, nor reach a real provider: the
autouse `_isolated_environment` points the config directories at a temp dir and removes every
provider key and base-URL variable for the whole session (subprocesses inherit that). The data
directory (`XDG_DATA_HOME`) is a temp dir too, so the usage ledger of every test's calls lands
there, never in the developer's own ledger.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rlm_code.testing import LocalProtocolServer

# Variables that would point a test at a real account or service.
_REMOVED_SUFFIXES = ("_API_KEY", "_API_TOKEN", "_BASE_URL", "_API_BASE")
_REMOVED_NAMES = frozenset(
    {
        "OLLAMA_HOST",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "ANTHROPIC_AUTH_TOKEN",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_API_VERSION",
        "AZURE_OPENAI_ENDPOINT",
    }
)
_LOOPBACK = "127.0.0.1,localhost,::1"


def _removed(name: str) -> bool:
    upper = name.upper()
    return (
        upper in _REMOVED_NAMES
        or upper.endswith(_REMOVED_SUFFIXES)
        or upper.startswith("RLM_CODE_")
    )


@pytest.fixture(scope="session", autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Temp config dirs, no provider keys, no proxy for loopback: for every test."""
    saved = dict(os.environ)
    config_root = tmp_path_factory.mktemp("config")
    for name in list(os.environ):
        if _removed(name):
            del os.environ[name]
    os.environ["RLM_CODE_CONFIG_DIR"] = str(config_root / "rlm-code")
    os.environ["XDG_CONFIG_HOME"] = str(config_root)
    os.environ["XDG_DATA_HOME"] = str(tmp_path_factory.mktemp("data"))
    for name in ("NO_PROXY", "no_proxy"):
        current = os.environ.get(name)
        os.environ[name] = f"{current},{_LOOPBACK}" if current else _LOOPBACK
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(scope="session")
def local_server() -> Iterator[LocalProtocolServer]:
    """One server (all protocols, free port) shared by the session.

    Other tests use it too: do not rely on its recorded requests or scripted faults being
    yours; use `fresh_server` for that.
    """
    from rlm_code.testing import run_local_server

    with run_local_server() as server:
        yield server


@pytest.fixture
def fresh_server() -> Iterator[LocalProtocolServer]:
    """A new server (all protocols, free port) for one test."""
    from rlm_code.testing import run_local_server

    with run_local_server() as server:
        yield server
