"""`rlm-code providers` and `rlm-code models`, run as the real CLI in a subprocess.

Every run gets its own working directory (so no `.env` of the repo is read), its own config
dir, and an environment without any provider key or colour setting.
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from cli_process import run_cli, run_in_pty

from rlm_code.cli import _output
from rlm_code.models.providers.registry import PROVIDERS

ANSI = re.compile(r"\x1b\[[0-9;]*m")
FAKE_OPENAI_KEY = "sk-test-cli0123456789abcdefFAKE"
FAKE_ANTHROPIC_KEY = "sk-ant-test-cli0123456789abcdefFAKE"
LOCAL_IDS = sorted(s.provider_id for s in PROVIDERS if s.connection_type == "local")
ALL_IDS = sorted(s.provider_id for s in PROVIDERS)
ANTHROPIC_MODELS = [
    "claude-opus-4-6",
    "claude-opus-4-5-20251101",
    "claude-sonnet-4-5-20250929",
    "claude-haiku-4-5-20251001",
    "claude-sonnet-4-20250514",
    "claude-opus-4-20250514",
    "claude-haiku-4-20250514",
]
JSON_FIELDS = {
    "id", "name", "mode", "category", "configured", "default_url", "aliases", "adapter_type",
    "api_key_env_vars", "base_url_env_var", "docs_url", "requires_api_key",
}  # fmt: skip


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for spec in PROVIDERS:
        for var in (*spec.api_key_env_vars, spec.base_url_env_var):
            if var:
                env.pop(var, None)
    for var in ("NO_COLOR", "FORCE_COLOR", "RLM_CODE_MODEL", "XDG_CONFIG_HOME"):
        env.pop(var, None)
    env["RLM_CODE_CONFIG_DIR"] = str(tmp_path / "config")
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=tmp_path, base=clean_env(tmp_path, **env))


def table_rows(stdout: str) -> list[list[str]]:
    """Body rows of a plain table, split on runs of 2+ spaces."""
    lines = stdout.rstrip("\n").splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]


# -- providers -----------------------------------------------------------------------------


def test_providers_table(tmp_path: Path) -> None:
    result = cli(tmp_path, "providers")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert re.split(r"\s{2,}", lines[0]) == [
        "id", "name", "mode", "category", "configured", "default URL",
    ]  # fmt: skip
    rows = table_rows(result.stdout)
    assert len(rows) == 24
    assert [row[0] for row in rows] == ALL_IDS  # the registry's list_providers() order
    by_id = {row[0]: row for row in rows}
    assert by_id["ollama"] == [
        "ollama", "Ollama", "local", "Local", "yes (no key needed)", "http://localhost:11434",
    ]  # fmt: skip
    assert by_id["anthropic"][1:5] == ["Anthropic", "byok", "US Labs", "no"]
    assert by_id["opencode"][4].startswith("yes"), "keyless mode needs no key"
    for row in rows:  # no key is set in this environment
        if row[2] == "local" or row[0] == "opencode":
            assert row[4] == "yes (no key needed)", row
        else:
            assert row[4] == "no", row
    # columns are aligned: every row's cells start at the header's offsets
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=  ))\S", lines[0])]
    for line in lines[1:]:
        for col in starts[1:]:
            assert line[col - 2 : col] == "  " and line[col] != " ", line


def test_providers_local_and_byok(tmp_path: Path) -> None:
    local = cli(tmp_path, "providers", "--local")
    assert local.returncode == 0
    assert [row[0] for row in table_rows(local.stdout)] == LOCAL_IDS
    assert len(LOCAL_IDS) == 8
    byok = cli(tmp_path, "providers", "--byok")
    assert byok.returncode == 0
    rows = table_rows(byok.stdout)
    assert len(rows) == 16
    assert {row[2] for row in rows} == {"byok"}


def test_providers_local_and_byok_are_exclusive(tmp_path: Path) -> None:
    result = cli(tmp_path, "providers", "--local", "--byok")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "not allowed" in result.stderr


def test_providers_json(tmp_path: Path) -> None:
    result = cli(tmp_path, "providers", "--json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert isinstance(records, list) and len(records) == 24
    assert [r["id"] for r in records] == ALL_IDS
    for record in records:
        assert set(record) == JSON_FIELDS
        assert isinstance(record["configured"], bool)
    gemini = next(r for r in records if r["id"] == "gemini")
    assert gemini["aliases"] == ["google"]
    assert gemini["api_key_env_vars"] == ["GEMINI_API_KEY", "GOOGLE_API_KEY"]
    assert gemini["adapter_type"] == "gemini"
    assert gemini["configured"] is False and gemini["requires_api_key"] is True
    ollama = next(r for r in records if r["id"] == "ollama")
    assert ollama["configured"] is True
    assert ollama["default_url"] == "http://localhost:11434"
    assert ollama["base_url_env_var"] == "OLLAMA_HOST"
    local = json.loads(cli(tmp_path, "providers", "--json", "--local").stdout)
    assert [r["id"] for r in local] == LOCAL_IDS


def test_fake_key_marks_only_its_provider_and_is_never_printed(tmp_path: Path) -> None:
    # one key in the environment, another in the project's .env
    (tmp_path / ".env").write_text(f"export ANTHROPIC_API_KEY='{FAKE_ANTHROPIC_KEY}'\n")
    outputs = []
    for args in (("providers",), ("providers", "--json"), ("providers", "--byok")):
        result = cli(tmp_path, *args, OPENAI_API_KEY=FAKE_OPENAI_KEY)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        outputs.append(result.stdout)
    for text in outputs:
        assert FAKE_OPENAI_KEY not in text
        assert FAKE_ANTHROPIC_KEY not in text
        assert "cli0123456789" not in text
    configured = {r["id"]: r["configured"] for r in json.loads(outputs[1])}
    assert configured["openai"] is True
    assert configured["anthropic"] is True
    assert configured["gemini"] is False
    assert configured["groq"] is False
    rows = {row[0]: row for row in table_rows(outputs[0])}
    assert rows["openai"][4] == "yes"
    assert rows["anthropic"][4] == "yes"
    assert rows["mistral"][4] == "no"


def test_second_key_env_var_counts(tmp_path: Path) -> None:
    result = cli(tmp_path, "providers", "--json", GOOGLE_API_KEY="AIzaTestCli0123456789")
    configured = {r["id"]: r["configured"] for r in json.loads(result.stdout)}
    assert configured["gemini"] is True
    assert "AIzaTestCli0123456789" not in result.stdout


def test_blank_key_is_not_configured(tmp_path: Path) -> None:
    result = cli(tmp_path, "providers", "--json", OPENAI_API_KEY="   ")
    configured = {r["id"]: r["configured"] for r in json.loads(result.stdout)}
    assert configured["openai"] is False


def test_malformed_dotenv_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(f"OK=1\nOPENAI_API_KEY {FAKE_OPENAI_KEY}\n")
    result = cli(tmp_path, "providers")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("rlm-code: ")
    assert f"{tmp_path / '.env'}:2:" in result.stderr
    assert FAKE_OPENAI_KEY not in result.stderr


# -- models --------------------------------------------------------------------------------


def test_models_prints_the_curated_list(tmp_path: Path) -> None:
    result = cli(tmp_path, "models", "anthropic")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ANTHROPIC_MODELS
    assert result.stderr == ""


def test_models_alias_any_case_json(tmp_path: Path) -> None:
    result = cli(tmp_path, "models", "CLAUDE", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"provider": "anthropic", "models": ANTHROPIC_MODELS}
    spaced = cli(tmp_path, "models", " Kimi ", "--json")
    assert json.loads(spaced.stdout) == {
        "provider": "moonshot",
        "models": ["moonshot-v1-128k", "moonshot-v1-32k", "moonshot-v1-8k", "kimi-k2"],
    }


def test_models_fall_back_to_example_models(tmp_path: Path) -> None:
    # SiliconFlow has no curated list in the spec: its ProviderSpec.example_models are shown.
    spec = next(s for s in PROVIDERS if s.provider_id == "siliconflow")
    assert spec.example_models
    result = cli(tmp_path, "models", "silicon-flow")
    assert result.returncode == 0
    assert result.stdout.splitlines() == list(dict.fromkeys(spec.example_models))


def test_models_none_known(tmp_path: Path) -> None:
    result = cli(tmp_path, "models", "openai-compatible", "--json")
    assert result.returncode == 0
    assert json.loads(result.stdout) == {"provider": "openai-compatible", "models": []}
    text = cli(tmp_path, "models", "compatible")
    assert text.returncode == 0
    assert text.stdout == ""
    assert "no curated models" in text.stderr


@pytest.mark.parametrize(
    ("name", "suggested"),
    [("anthropc", "anthropic"), ("OPENAI-COMPAT", "openai-compatible"), ("lmstudi", "lmstudio"),
     ("claud", "claude")],
)  # fmt: skip
def test_unknown_provider_suggests_close_matches(tmp_path: Path, name: str, suggested: str) -> None:
    result = cli(tmp_path, "models", name)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    match = re.fullmatch(
        r"rlm-code: unknown provider '(.*)'; did you mean: (.+)\?\n", result.stderr
    )
    assert match, result.stderr
    assert match.group(1) == name
    assert suggested in match.group(2).split(", ")


def test_unknown_provider_without_close_match_lists_ids(tmp_path: Path) -> None:
    result = cli(tmp_path, "models", "xyz")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("rlm-code: unknown provider 'xyz'; ")
    assert "did you mean" not in result.stderr
    listed = result.stderr.rstrip("\n").split(": ", 2)[2].split(", ")
    assert listed == ALL_IDS


def test_models_needs_a_provider(tmp_path: Path) -> None:
    result = cli(tmp_path, "models")
    assert result.returncode == 2
    assert "PROVIDER" in result.stderr or "provider" in result.stderr


# -- help and colour -----------------------------------------------------------------------


@pytest.mark.parametrize("args", [("--help",), ("providers", "--help"), ("models", "--help")])
def test_help_exits_zero(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = cli(tmp_path, *args)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: rlm-code")


def test_top_level_help_lists_both_commands(tmp_path: Path) -> None:
    out = cli(tmp_path, "--help").stdout
    assert re.search(r"^\s+providers\s", out, re.M)
    assert re.search(r"^\s+models\s", out, re.M)


@pytest.mark.parametrize(
    "args", [("providers",), ("providers", "--json"), ("models", "gemini"), ("models", "xx")]
)
def test_no_ansi_when_not_a_tty(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = cli(tmp_path, *args)
    assert not ANSI.search(result.stdout)
    assert not ANSI.search(result.stderr)


@pytest.mark.skipif(not hasattr(pty, "openpty"), reason="needs a pseudo-terminal")
def test_colour_only_on_a_tty_without_no_color(tmp_path: Path) -> None:
    coloured, _ = run_in_pty("providers", cwd=tmp_path, env=clean_env(tmp_path))
    assert ANSI.search(coloured), "a terminal gets colour"
    assert "id" in ANSI.sub("", coloured)
    plain, _ = run_in_pty("providers", cwd=tmp_path, env=clean_env(tmp_path, NO_COLOR="1"))
    assert not ANSI.search(plain)
    assert ANSI.sub("", coloured).replace("\r", "") == plain.replace("\r", "")


# -- _output helpers (in process) ----------------------------------------------------------


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_use_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert _output.use_color(FakeTTY()) is True
    assert _output.use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert _output.use_color(FakeTTY()) is False
    monkeypatch.setenv("NO_COLOR", "")  # no-color.org: an empty value does not disable colour
    assert _output.use_color(FakeTTY()) is True


def test_format_table_aligns_plain_and_coloured() -> None:
    rows = [("a", "long value", "x"), ("bbbb", "v", "")]
    plain = _output.format_table(("h1", "h2", "h3"), rows)
    assert plain.splitlines() == ["h1    h2          h3", "a     long value  x", "bbbb  v"]
    coloured = _output.format_table(("h1", "h2", "h3"), rows, color=True, styles=("green",) * 3)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == plain
    with pytest.raises(ValueError):
        _output.format_table(("a", "b"), [("only one",)])


def test_print_json_and_fail(capsys: pytest.CaptureFixture[str]) -> None:
    _output.print_json({"b": [1, "ü"]})
    assert json.loads(capsys.readouterr().out) == {"b": [1, "ü"]}
    assert _output.fail("bad\n thing with sk-test-output0123456789", 3) == 3
    err = capsys.readouterr().err
    assert err == "rlm-code: bad thing with [REDACTED]\n"


def test_close_matches() -> None:
    names = ["anthropic", "claude", "openai", "gpt", "Anthropic"]
    assert _output.close_matches("anthropc", names)[0] == "anthropic"
    assert _output.close_matches("ANTHROPC", names) == ["anthropic"]
    assert _output.close_matches("zzzz", names) == []
    message = _output.unknown_name_message("provider", "zzzz", names, ["a", "b"])
    assert message == "unknown provider 'zzzz'; known providers: a, b"
