"""A missing provider SDK fails at connect time with the exact pip command.

The SDKs are installed in the test environment, so the import is blocked in a subprocess by a
`sys.meta_path` finder; nothing in the parent process is patched.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCK_AND_CONNECT = textwrap.dedent(
    """
    import sys

    BLOCKED = sys.argv[2]

    class Blocker:
        def find_spec(self, name, path=None, target=None):
            if name == BLOCKED or name.startswith(BLOCKED + "."):
                raise ImportError(f"No module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, Blocker())

    from rlm_code.core.config import ConfigManager
    from rlm_code.core.exceptions import SDKNotInstalledError
    from rlm_code.models.llm_connector import LLMConnector

    connector = LLMConnector(ConfigManager(project_root=sys.argv[1]))
    try:
        connector.connect_to_model(
            sys.argv[3], model_type=sys.argv[4], api_key=sys.argv[5],
            base_url="http://127.0.0.1:9",
        )
    except SDKNotInstalledError as exc:
        print("SDKNotInstalledError:", exc)
        print("status:", connector.get_connection_status()["connected"])
    else:
        print("connected without the SDK")
    """
)

CASES = [
    (
        "anthropic",
        "claude-sonnet-4-5-20250929",
        "anthropic",
        "sk-ant-test-missing",
        'pip install "rlm-code[anthropic]"',
    ),
    ("openai", "gpt-4o-mini", "openai", "sk-test-missing", 'pip install "rlm-code[openai]"'),
    (
        "google.genai",
        "gemini-2.5-flash",
        "gemini",
        "AIzaTestMissing",
        'pip install "rlm-code[gemini]"',
    ),
]


@pytest.mark.parametrize(
    ("module", "model", "provider", "key", "command"), CASES, ids=[c[2] for c in CASES]
)
def test_missing_sdk_names_the_pip_command(tmp_path: Path, module, model, provider, key, command):
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_AND_CONNECT, str(tmp_path), module, model, provider, key],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("SDKNotInstalledError:"), out + result.stderr
    assert command in out
    assert "status: False" in out
    assert key not in out + result.stderr
