"""Importing the registry and the config must not pull in an HTTP stack, YAML or any SDK."""

from __future__ import annotations

import json

from cli_process import run_python

HEAVY = ("httpx", "httpx2", "aiohttp", "yaml", "openai", "anthropic", "google.genai", "requests")

PROBE = f"""
import json, sys
import rlm_code.models.providers.registry
import rlm_code.core.config
loaded = [name for name in {HEAVY!r} if name in sys.modules]
print(json.dumps(loaded))
"""


def test_registry_and_config_import_nothing_heavy() -> None:
    stdout = run_python(PROBE)
    assert json.loads(stdout) == []


def test_probe_detects_a_heavy_import() -> None:
    # The same probe must notice a heavy module, or the test above proves nothing.
    probe = PROBE.replace("import rlm_code.core.config", "import rlm_code.core.config\nimport yaml")
    stdout = run_python(probe)
    assert json.loads(stdout) == ["yaml"]


def test_cli_command_modules_import_only_argparse() -> None:
    # `rlm-code --help` imports every command module to call `register`; those of
    # `providers` and `models` must not drag in the registry, the config or even `typing`.
    probe = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import rlm_code.cli.commands.providers, rlm_code.cli.commands.models\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print('\\n'.join(new))\n"
    )
    stdout = run_python(probe)
    new = set(stdout.split())
    assert "argparse" in new, "the probe sees what the import loads"
    ours = {m for m in new if m.startswith("rlm_code")}
    assert ours == {"rlm_code", "rlm_code.cli", "rlm_code.cli.commands",
                    "rlm_code.cli.commands.providers", "rlm_code.cli.commands.models",
                    "rlm_code.cli.exit_codes"}  # fmt: skip
    assert "typing" not in new
