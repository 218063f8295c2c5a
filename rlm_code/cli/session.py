"""How the CLI picks and opens a connection, shared by `ask` and the interactive shell.

Order: an explicit `--model provider/model`, then the default connection (`RLM_CODE_MODEL`,
else `default_model` in the config files). With neither, a quick bounded discovery
(`rlm_code.cli.first_model`) picks a model a local server is running (Ollama, LM Studio,
llama.cpp, vLLM, ...), and a one-line note says which and how to keep it. Only when no local
server answers (or the one found fails to connect) is the built-in local protocol server
(`rlm_code.testing`) started on a free loopback port and used: it answers with a
deterministic echo, so a fresh machine with no provider shows a streamed reply and the user
is told how to configure a real one.
"""

from __future__ import annotations

import contextlib
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from rlm_code.cli.first_model import FirstModel
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

BUILTIN_MODEL = "rlm-code-local"
BUILTIN_NOTE = (
    "rlm-code: no provider configured; using the built-in local server (it echoes your "
    "prompt; no local model server answered). Set one with `rlm-code config set "
    "default-model provider/model` or RLM_CODE_MODEL, or pass --model."
)


@contextlib.contextmanager
def builtin_server() -> Iterator[str]:
    """Run the built-in local server for the duration of a command; yields its /v1 URL."""
    from rlm_code.testing import run_local_server

    with run_local_server(models=[BUILTIN_MODEL]) as server:
        yield server.openai_base_url


def connect_first_model(connector: LLMConnector) -> FirstModel | None:
    """Connect `connector` to the model of a running local server (`first_model`); None when
    no server answers, or when the one found fails to connect (it may have stopped since)."""
    from rlm_code.cli.first_model import pick_first_model
    from rlm_code.core.exceptions import ModelError

    pick = pick_first_model(connector.config_manager, connector.provider_registry)
    if pick is None:
        return None
    try:
        connector.connect_to_model(pick.model, model_type=pick.provider_id, base_url=pick.base_url)
    except ModelError:
        return None
    return pick


@contextlib.contextmanager
def open_session(
    model: str | None,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    config: ConfigManager | None = None,
    quiet: bool = False,
) -> Iterator[LLMConnector]:
    """A connected `LLMConnector` for the command's lifetime (closed afterwards)."""
    from rlm_code.cli.first_model import first_model_note
    from rlm_code.core.config import ConfigManager
    from rlm_code.models.llm_connector import LLMConnector

    config = config or ConfigManager()
    chosen = model or config.default_model
    connector = LLMConnector(config_manager=config)
    with contextlib.ExitStack() as stack:
        stack.callback(connector.close)
        if chosen:
            connector.connect_to_model(chosen, api_key=api_key, base_url=base_url)
        elif (pick := connect_first_model(connector)) is not None:
            if not quiet:
                print(first_model_note(pick), file=sys.stderr, flush=True)
        else:
            if not quiet:
                print(BUILTIN_NOTE, file=sys.stderr, flush=True)
            url = stack.enter_context(builtin_server())
            connector.connect_to_model(BUILTIN_MODEL, model_type="openai-compatible", base_url=url)
        yield connector
