"""`rlm-code config set`: nothing stored can break a later command; errors are one line naming
the user config file (issue 10 item 13, the CLI part; the rules are `ConfigManager`'s)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from cli_process import run_cli

pytestmark = pytest.mark.timeout(60)


def user_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "config.yaml"


def assert_one_line_naming(result: subprocess.CompletedProcess[str], path: Path) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rlm-code: ")
    assert str(path) in lines[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("timeout-read", "abc"),
        ("timeout-read", "inf"),
        ("timeout-read", "nan"),
        ("timeout-connect", "0"),
        ("timeout-connect", "-5"),
        ("max-attempts", "0"),
        ("max-attempts", "2.5"),
        ("default-model", "gpt-4o"),
        ("default-model", "nope/some-model"),
        ("default-model", "openai/gpt 4o"),
        ("ollama-endpoint", "not a url"),
        ("ollama-endpoint", "ftp://host:11434"),
    ],
)
def test_bad_values_are_refused_and_nothing_breaks_later(
    tmp_path: Path, key: str, value: str
) -> None:
    result = run_cli("config", "set", key, value, cwd=tmp_path)
    assert_one_line_naming(result, user_file(tmp_path))
    assert not user_file(tmp_path).exists()  # nothing was written
    shown = run_cli("config", "show", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    json.loads(shown.stdout)


def test_a_bad_value_leaves_the_file_as_it_was(tmp_path: Path) -> None:
    assert run_cli("config", "set", "timeout-read", "30", cwd=tmp_path).returncode == 0
    before = user_file(tmp_path).read_text()
    result = run_cli("config", "set", "timeout-read", "inf", cwd=tmp_path)
    assert_one_line_naming(result, user_file(tmp_path))
    assert user_file(tmp_path).read_text() == before


def test_good_values_are_stored_and_shown(tmp_path: Path) -> None:
    for key, value in (
        ("timeout-read", "30"),
        ("timeout-connect", "2.5"),
        ("max-attempts", "5"),
        ("default-model", "ollama/llama3.2"),
        ("ollama-endpoint", "http://gpu-box:11434"),
    ):
        result = run_cli("config", "set", key, value, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{key} set in {user_file(tmp_path)}\n"
    shown = json.loads(run_cli("config", "show", "--json", cwd=tmp_path).stdout)
    assert shown["timeouts"] == {"connect": 2.5, "read": 30.0}
    assert shown["retries"]["max_attempts"] == 5
    assert shown["default_model"] == "ollama/llama3.2"
    assert shown["base_urls"]["ollama"]["url"] == "http://gpu-box:11434"


def test_a_broken_project_file_is_named_as_the_project_file(tmp_path: Path) -> None:
    project = tmp_path / "rlm_config.yaml"
    project.write_text("timeouts: {read: -1}\n")
    # Setting a user value works: only the user file is read and written.
    result = run_cli("config", "set", "timeout-read", "30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # Reading the merged settings fails, and says which file to fix.
    shown = run_cli("config", "show", cwd=tmp_path)
    assert_one_line_naming(shown, project)


def test_a_broken_user_file_is_named_as_the_user_file(tmp_path: Path) -> None:
    user_file(tmp_path).parent.mkdir(parents=True)
    user_file(tmp_path).write_text("retries: [unclosed\n")
    result = run_cli("config", "set", "timeout-read", "30", cwd=tmp_path)
    assert_one_line_naming(result, user_file(tmp_path))
