"""Layered configuration: defaults < user file < project file < .env < environment.

Every `ConfigManager` here gets an explicit `environ` mapping and a temp project root, so the
real environment, home directory and working directory are never read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rlm_code.core.config import (
    KEY_STORE_NAME,
    PROJECT_FILE_NAME,
    USER_FILE_NAME,
    ConfigManager,
    user_config_dir,
)
from rlm_code.core.dotenv import parse_dotenv
from rlm_code.core.exceptions import ConfigError
from rlm_code.core.urls import normalize_host_url
from rlm_code.models.providers.registry import ProviderRegistry, ProviderSpec
from rlm_code.models.resolve import configured_base_url, read_timeout

_OLLAMA = ProviderRegistry.default().get("ollama")
assert _OLLAMA is not None
OLLAMA: ProviderSpec = _OLLAMA
DEFAULT_OLLAMA_ENDPOINT = OLLAMA.default_base_url


def ollama_endpoint(cfg: ConfigManager) -> str:
    """Ollama's URL as the resolver picks it (OLLAMA_HOST, the files, the row default)."""
    return configured_base_url(cfg, OLLAMA)[0]


def ollama_timeout(cfg: ConfigManager) -> float:
    """Ollama's read timeout as the resolver picks it (its own variable, else the read one)."""
    return read_timeout(cfg, OLLAMA)


FAKE_KEY = "sk-test-config0123456789abcdef"


class Layout:
    """A temp project root and user config dir, plus helpers to write each layer."""

    def __init__(self, root: Path) -> None:
        self.project = root / "project"
        self.user_dir = root / "user-config"
        self.project.mkdir()
        self.environ: dict[str, str] = {"RLM_CODE_CONFIG_DIR": str(self.user_dir)}

    @property
    def user_file(self) -> Path:
        return self.user_dir / USER_FILE_NAME

    @property
    def project_file(self) -> Path:
        return self.project / PROJECT_FILE_NAME

    def write_user(self, text: str) -> Path:
        self.user_dir.mkdir(exist_ok=True)
        self.user_file.write_text(text, encoding="utf-8")
        return self.user_file

    def write_project(self, text: str) -> Path:
        self.project_file.write_text(text, encoding="utf-8")
        return self.project_file

    def write_dotenv(self, text: str) -> Path:
        path = self.project / ".env"
        path.write_text(text, encoding="utf-8")
        return path

    def manager(self, **env: str) -> ConfigManager:
        return ConfigManager(self.project, environ={**self.environ, **env})


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path)


# -- precedence ----------------------------------------------------------------------------


def test_defaults_when_nothing_is_set(layout: Layout) -> None:
    cfg = layout.manager()
    assert cfg.default_model is None
    assert ollama_endpoint(cfg) == DEFAULT_OLLAMA_ENDPOINT == "http://localhost:11434"
    assert (cfg.timeouts.connect, cfg.timeouts.read) == (10.0, 120.0)
    assert cfg.retries.max_attempts == 3
    assert ollama_timeout(cfg) == 120.0
    assert cfg.get("timeouts.read") is None
    assert cfg.get("nothing.here", "fallback") == "fallback"


def test_precedence_default_model(layout: Layout) -> None:
    assert layout.manager().default_model is None
    layout.write_user("default_model: ollama/from-user\n")
    assert layout.manager().default_model == "ollama/from-user"
    layout.write_project("default_model: ollama/from-project\n")
    assert layout.manager().default_model == "ollama/from-project"
    layout.write_dotenv("RLM_CODE_MODEL=ollama/from-dotenv\n")
    assert layout.manager().default_model == "ollama/from-dotenv"
    assert layout.manager(RLM_CODE_MODEL="ollama/from-env").default_model == "ollama/from-env"


def test_precedence_read_timeout(layout: Layout) -> None:
    assert layout.manager().timeouts.read == 120.0
    layout.write_user("timeouts:\n  read: 30\n  connect: 3\n")
    assert layout.manager().timeouts.read == 30.0
    layout.write_project("timeouts:\n  read: 40\n")
    cfg = layout.manager()
    assert cfg.timeouts.read == 40.0
    assert cfg.timeouts.connect == 3.0, "a project file overrides keys, not whole sections"
    layout.write_dotenv("RLM_CODE_READ_TIMEOUT=50\n")
    assert layout.manager().timeouts.read == 50.0
    assert layout.manager(RLM_CODE_READ_TIMEOUT="60").timeouts.read == 60.0


def test_precedence_ollama_endpoint(layout: Layout) -> None:
    layout.write_user("ollama_endpoint: http://user-box:11434\n")
    assert ollama_endpoint(layout.manager()) == "http://user-box:11434"
    layout.write_project("providers:\n  ollama:\n    base_url: http://project-box:11434\n")
    assert ollama_endpoint(layout.manager()) == "http://project-box:11434"
    layout.write_dotenv("OLLAMA_HOST=dotenv-box\n")
    assert ollama_endpoint(layout.manager()) == "http://dotenv-box:11434"
    assert ollama_endpoint(layout.manager(OLLAMA_HOST="env-box:9999")) == "http://env-box:9999"


def test_retries_from_files_and_env(layout: Layout) -> None:
    layout.write_user("retries:\n  max_attempts: 5\n  backoff_base: 0.25\n  backoff_max: 4\n")
    retries = layout.manager().retries
    assert (retries.max_attempts, retries.backoff_base, retries.backoff_max) == (5, 0.25, 4.0)
    assert layout.manager(RLM_CODE_MAX_ATTEMPTS="2").retries.max_attempts == 2


def test_provider_base_url_from_files(layout: Layout) -> None:
    layout.write_user("providers:\n  vllm:\n    base_url: http://user:8000/v1\n")
    layout.write_project("providers:\n  lmstudio:\n    base_url: http://proj:1234/v1\n")
    cfg = layout.manager()
    assert cfg.provider_base_url("vllm") == "http://user:8000/v1"
    assert cfg.provider_base_url("lmstudio") == "http://proj:1234/v1"
    assert cfg.provider_base_url("sglang") is None


def test_files_are_read_lazily_and_reload_sees_changes(layout: Layout) -> None:
    layout.write_project("default_model: [broken\n")
    cfg = layout.manager()  # constructing never parses
    layout.write_project("default_model: ollama/a\n")
    assert cfg.default_model == "ollama/a"
    layout.write_project("default_model: ollama/b\n")
    assert cfg.default_model == "ollama/a", "cached until reload()"
    cfg.reload()
    assert cfg.default_model == "ollama/b"


def test_repr_names_the_project_only(layout: Layout) -> None:
    assert str(layout.project) in repr(layout.manager())


# -- locations -----------------------------------------------------------------------------


def test_config_dir_env_wins(tmp_path: Path) -> None:
    env = {"RLM_CODE_CONFIG_DIR": str(tmp_path / "explicit"), "XDG_CONFIG_HOME": str(tmp_path)}
    assert user_config_dir(env) == tmp_path / "explicit"
    cfg = ConfigManager(tmp_path, environ=env)
    assert cfg.user_config_file == tmp_path / "explicit" / USER_FILE_NAME
    assert cfg.key_store.path == tmp_path / "explicit" / KEY_STORE_NAME


def test_xdg_config_home(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert user_config_dir(env) == tmp_path / "xdg" / "rlm-code"
    (tmp_path / "xdg" / "rlm-code").mkdir(parents=True)
    (tmp_path / "xdg" / "rlm-code" / USER_FILE_NAME).write_text("default_model: ollama/xdg\n")
    assert ConfigManager(tmp_path, environ=env).default_model == "ollama/xdg"


def test_home_fallback_and_tilde(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert user_config_dir({}) == tmp_path / "home" / ".config" / "rlm-code"
    assert user_config_dir({"RLM_CODE_CONFIG_DIR": "~/cfg"}) == tmp_path / "home" / "cfg"
    # an empty value counts as unset
    assert user_config_dir({"RLM_CODE_CONFIG_DIR": "", "XDG_CONFIG_HOME": ""}) == (
        tmp_path / "home" / ".config" / "rlm-code"
    )


def test_default_project_root_is_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = ConfigManager(environ={"RLM_CODE_CONFIG_DIR": str(tmp_path / "u")})
    assert cfg.project_file == tmp_path / PROJECT_FILE_NAME
    assert cfg.dotenv_file == tmp_path / ".env"


def test_environ_defaults_to_os_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RLM_CODE_CONFIG_DIR", str(tmp_path / "u"))
    monkeypatch.setenv("RLM_CODE_MODEL", "ollama/from-os-environ")
    cfg = ConfigManager(tmp_path)
    assert cfg.default_model == "ollama/from-os-environ"
    assert cfg.user_config_dir == tmp_path / "u"


# -- malformed and invalid files -----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("default_model: x\ntimeouts:\n  read: 30\n\tconnect: 10\n", 4),  # tab indentation
        ("default_model: x\nretries:\n  max_attempts: 3\n bad: [1\n", 4),
        ("default_model: 'unterminated\nother: 1\n", 3),
        ("# comment\n\ndefault_model: x\ntimeouts: {read: 30\nretries: {}\n", 5),
    ],
)
@pytest.mark.parametrize("which", ["user", "project"])
def test_malformed_yaml_names_file_and_line(
    layout: Layout, text: str, line: int, which: str
) -> None:
    path = layout.write_user(text) if which == "user" else layout.write_project(text)
    with pytest.raises(ConfigError) as info:
        layout.manager().get("default_model")
    assert f"{path}:{line}:" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line", "name"),
    [
        ("# c\ndefault_model: x\nmodle: y\n", 3, "modle"),
        ("timeouts:\n  read: 30\n  raed: 3\n", 3, "timeouts.raed"),
        ("providers:\n  vllm:\n    url: http://x\n", 3, "providers.vllm.url"),
        ("retries:\n\n  attempts: 3\n", 3, "retries.attempts"),
    ],
)
def test_unknown_setting_names_file_line_and_key(
    layout: Layout, text: str, line: int, name: str
) -> None:
    path = layout.write_project(text)
    with pytest.raises(ConfigError, match="unknown setting") as info:
        layout.manager().get("default_model")
    assert f"{path}:{line}:" in str(info.value)
    assert f"'{name}'" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("timeouts:\n  read: fast\n", 2),
        ("timeouts:\n  read: -1\n", 2),
        ("timeouts:\n  read: .inf\n", 2),
        ("timeouts:\n  connect: true\n", 2),
        ("timeouts: 5\n", 1),
        ("retries:\n  max_attempts: 0\n", 2),
        ("retries:\n  max_attempts: true\n", 2),
        ("retries:\n  max_attempts: 2.5\n", 2),
        ("default_model: 5\n", 1),
        ("default_model: '   '\n", 1),
        ("default_model: [a, b]\n", 1),
        ("providers:\n  vllm:\n    base_url: 3\n", 3),
        ("providers:\n  vllm: http://x\n", 2),
        ("- just\n- a list\n", 1),
        ("plain text\n", 1),
    ],
)
def test_wrong_types_are_refused_with_file_and_line(layout: Layout, text: str, line: int) -> None:
    path = layout.write_user(text)
    with pytest.raises(ConfigError) as info:
        layout.manager().get("timeouts")
    assert f"{path}:{line}:" in str(info.value)


def test_empty_files_are_fine(layout: Layout) -> None:
    layout.write_user("")
    layout.write_project("# only a comment\n")
    assert layout.manager().timeouts.read == 120.0


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (f"providers:\n  openai:\n    api_key: {FAKE_KEY}\n", 3),
        (f"default_model: openai/gpt-4o\nOPENAI_API_KEY: {FAKE_KEY}\n", 2),
        (f"api-key: {FAKE_KEY}\n", 1),
    ],
)
def test_api_key_in_project_file_is_refused(layout: Layout, text: str, line: int) -> None:
    path = layout.write_project(text)
    with pytest.raises(ConfigError, match="API keys do not belong") as info:
        layout.manager().default_model  # noqa: B018
    message = str(info.value)
    assert f"{path}:{line}:" in message
    assert "env var" in message and "key store" in message  # the next step
    assert FAKE_KEY not in message and FAKE_KEY not in repr(info.value)


def test_unreadable_file_is_a_config_error(layout: Layout) -> None:
    layout.project_file.write_bytes(b"default_model: \xff\xfe\n")
    with pytest.raises(ConfigError, match="cannot read"):
        layout.manager().default_model  # noqa: B018


def test_unknown_provider_under_providers_is_refused(layout: Layout) -> None:
    layout.write_project("providers:\n  vlm:\n    base_url: http://gpu:8000/v1\n")
    with pytest.raises(ConfigError, match="vlm"):
        layout.manager().get("providers")


# -- .env ----------------------------------------------------------------------------------

DOTENV = """\
# a comment line

PLAIN=value
export EXPORTED=exported-value
  SPACED  =  spaced value
DOUBLE="quoted # not a comment"
SINGLE='single $NOT_EXPANDED \\n raw'
ESCAPED="line1\\nline2\\t\\"q\\""
INLINE=value # trailing comment
HASHED=abc#def
EMPTY=
BLANK_QUOTED="   "
URL=http://localhost:8000/v1?x=1&y=2
"""


def test_dotenv_parsing(layout: Layout) -> None:
    path = layout.write_dotenv(DOTENV)
    values = parse_dotenv(path)
    assert values == {
        "PLAIN": "value",
        "EXPORTED": "exported-value",
        "SPACED": "spaced value",
        "DOUBLE": "quoted # not a comment",
        "SINGLE": "single $NOT_EXPANDED \\n raw",
        "ESCAPED": 'line1\nline2\t"q"',
        "INLINE": "value",
        "HASHED": "abc#def",
        "EMPTY": "",
        "BLANK_QUOTED": "   ",
        "URL": "http://localhost:8000/v1?x=1&y=2",
    }


def test_get_env_reads_dotenv_after_environment(layout: Layout) -> None:
    layout.write_dotenv(DOTENV)
    cfg = layout.manager(PLAIN="from-env", EMPTY="from-env-too", BLANK_ENV="  ")
    assert cfg.get_env("PLAIN") == "from-env"
    assert cfg.get_env("EXPORTED") == "exported-value"
    assert cfg.get_env("EMPTY") == "from-env-too"
    assert cfg.get_env("BLANK_QUOTED") is None, "blank counts as unset"
    assert cfg.get_env("BLANK_ENV") is None
    assert cfg.get_env("MISSING") is None
    # a blank environment value falls through to .env
    assert layout.manager(PLAIN="   ").get_env("PLAIN") == "value"


def test_dotenv_is_never_copied_into_os_environ(layout: Layout) -> None:
    layout.write_dotenv("RLM_TEST_ONLY_IN_DOTENV=secret-ish\n")
    assert layout.manager().get_env("RLM_TEST_ONLY_IN_DOTENV") == "secret-ish"
    assert "RLM_TEST_ONLY_IN_DOTENV" not in os.environ


def test_missing_dotenv_is_empty(layout: Layout) -> None:
    assert parse_dotenv(layout.project / ".env") == {}
    assert layout.manager().get_env("ANYTHING") is None


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("OK=1\n# fine\n\nthis line is not valid\n", 4),
        ("OK=1\n1BAD=x\n", 2),
        ('OK=1\nQ="unterminated\n', 2),
        ("OK=1\nS='unterminated\n", 2),
        ("export\n", 1),
    ],
)
def test_malformed_dotenv_line_is_a_config_error_with_line(
    layout: Layout, text: str, line: int
) -> None:
    path = layout.write_dotenv(text)
    with pytest.raises(ConfigError) as info:
        parse_dotenv(path)
    assert f"{path}:{line}:" in str(info.value)
    with pytest.raises(ConfigError):
        layout.manager().get_env("OK")


def test_malformed_dotenv_never_echoes_the_value(layout: Layout) -> None:
    path = layout.write_dotenv(f'OPENAI_API_KEY="{FAKE_KEY}\n')
    with pytest.raises(ConfigError) as info:
        parse_dotenv(path)
    assert FAKE_KEY not in str(info.value) and FAKE_KEY not in repr(info.value)


# -- OLLAMA_HOST and OLLAMA_HTTP_TIMEOUT ---------------------------------------------------

# Expected values follow the ollama client's own OLLAMA_HOST parsing (its `_parse_host`
# doctests), except that the bind-all address 0.0.0.0 is mapped to loopback on purpose.
OLLAMA_HOSTS = [
    ("localhost", "http://localhost:11434"),
    ("localhost:11434", "http://localhost:11434"),
    ("1.2.3.4", "http://1.2.3.4:11434"),
    ("1.2.3.4:56789", "http://1.2.3.4:56789"),
    ("example.com", "http://example.com:11434"),
    ("example.com/", "http://example.com:11434"),
    ("example.com:56789/", "http://example.com:56789"),
    ("example.com/path", "http://example.com:11434/path"),
    ("http://localhost:11434", "http://localhost:11434"),
    ("http://localhost:11434/", "http://localhost:11434"),
    ("https://example.com:56789/path", "https://example.com:56789/path"),
    ("[0001:002:003:0004::1]", "http://[0001:002:003:0004::1]:11434"),
    ("[0001:002:003:0004::1]:56789", "http://[0001:002:003:0004::1]:56789"),
    ("  gpu-box:11434  ", "http://gpu-box:11434"),
    ("0.0.0.0", "http://127.0.0.1:11434"),
    ("0.0.0.0:11434", "http://127.0.0.1:11434"),
    ("0.0.0.0:9000", "http://127.0.0.1:9000"),
]
# An explicit scheme without a port defaults to 80/443 as in Ollama's client; ':PORT' is local.
OLLAMA_HOSTS_DIVERGENT = [
    ("http://1.2.3.4", "http://1.2.3.4:80"),
    ("https://example.com", "https://example.com:443"),
    (":56789", "http://127.0.0.1:56789"),
]


@pytest.mark.parametrize(("value", "expected"), OLLAMA_HOSTS + OLLAMA_HOSTS_DIVERGENT)
def test_ollama_host_forms(layout: Layout, value: str, expected: str) -> None:
    assert normalize_host_url(value, 11434, "$OLLAMA_HOST") == expected
    assert ollama_endpoint(layout.manager(OLLAMA_HOST=value)) == expected


def test_ollama_endpoint_from_dotenv_and_file(layout: Layout) -> None:
    layout.write_project("ollama_endpoint: 0.0.0.0:11434\n")
    assert ollama_endpoint(layout.manager()) == "http://127.0.0.1:11434"
    layout.write_dotenv("OLLAMA_HOST=gpu-box\n")
    assert ollama_endpoint(layout.manager()) == "http://gpu-box:11434"


def test_ollama_timeout_default_and_override(layout: Layout) -> None:
    assert ollama_timeout(layout.manager()) == 120.0
    assert ollama_timeout(layout.manager(OLLAMA_HTTP_TIMEOUT="300")) == 300.0
    assert ollama_timeout(layout.manager(OLLAMA_HTTP_TIMEOUT=" 2.5 ")) == 2.5
    layout.write_dotenv("OLLAMA_HTTP_TIMEOUT=45\n")
    assert ollama_timeout(layout.manager()) == 45.0
    assert ollama_timeout(layout.manager(OLLAMA_HTTP_TIMEOUT="")) == 45.0


def test_ollama_timeout_falls_back_to_a_configured_read_timeout(layout: Layout) -> None:
    layout.write_project("timeouts:\n  read: 7\n")
    assert ollama_timeout(layout.manager()) == 7.0
    assert ollama_timeout(layout.manager(RLM_CODE_READ_TIMEOUT="9")) == 9.0
    assert ollama_timeout(layout.manager(OLLAMA_HTTP_TIMEOUT="300")) == 300.0


@pytest.mark.parametrize("bad", ["abc", "0", "-5", "nan", "inf", "10s"])
def test_ollama_timeout_invalid_value(layout: Layout, bad: str) -> None:
    with pytest.raises(ConfigError, match="OLLAMA_HTTP_TIMEOUT") as info:
        ollama_timeout(layout.manager(OLLAMA_HTTP_TIMEOUT=bad))
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("name", ["RLM_CODE_READ_TIMEOUT", "RLM_CODE_CONNECT_TIMEOUT"])
def test_timeout_env_invalid_value(layout: Layout, name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        layout.manager(**{name: "soon"}).timeouts  # noqa: B018


# -- writing -------------------------------------------------------------------------------


def test_set_user_setting_writes_user_file_only(layout: Layout) -> None:
    project_text = "default_model: ollama/project\n"
    layout.write_project(project_text)
    layout.write_user("retries:\n  max_attempts: 4\n")
    cfg = layout.manager()
    assert cfg.timeouts.read == 120.0  # loads (and caches) before the write
    path = cfg.set_user_setting("timeouts.read", 45)
    assert path == layout.user_file
    assert layout.project_file.read_text() == project_text
    assert sorted(p.name for p in layout.project.iterdir()) == [PROJECT_FILE_NAME]
    assert cfg.timeouts.read == 45.0, "the manager reloads after writing"
    assert cfg.retries.max_attempts == 4, "other user settings are kept"
    assert cfg.default_model == "ollama/project"
    fresh = layout.manager()
    assert fresh.timeouts.read == 45.0
    assert sorted(p.name for p in layout.user_dir.iterdir()) == [USER_FILE_NAME]


def test_set_user_setting_creates_the_directory(layout: Layout) -> None:
    cfg = layout.manager()
    cfg.set_user_setting("default_model", "ollama/llama3.2")
    assert layout.user_file.is_file()
    assert layout.manager().default_model == "ollama/llama3.2"
    assert not layout.project_file.exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("api_key", FAKE_KEY),
        ("providers.openai.api_key", FAKE_KEY),
        ("timeouts.raed", 3),
        ("timeouts.read", "fast"),
        ("nonsense", 1),
    ],
)
def test_set_user_setting_validates_before_writing(layout: Layout, key: str, value: object) -> None:
    layout.write_user("timeouts:\n  connect: 5\n")
    before = layout.user_file.read_text()
    with pytest.raises(ConfigError) as info:
        layout.manager().set_user_setting(key, value)
    assert layout.user_file.read_text() == before
    assert FAKE_KEY not in str(info.value)
    assert not layout.project_file.exists()


def test_set_user_setting_leaves_no_temp_file(layout: Layout) -> None:
    layout.manager().set_user_setting("timeouts.connect", 7)
    assert [p.name for p in layout.user_dir.iterdir()] == [USER_FILE_NAME]


# -- hostile and invalid values (issue 10.12, 10.13) ---------------------------------------

ALIAS_BOMB = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize("which", ["user", "project"])
def test_yaml_alias_bomb_is_refused_naming_the_file(layout: Layout, which: str) -> None:
    path = layout.write_user(ALIAS_BOMB) if which == "user" else layout.write_project(ALIAS_BOMB)
    with pytest.raises(ConfigError, match="anchors and aliases") as info:
        layout.manager().get("default_model")
    assert f"{path}:1:" in str(info.value)


def test_a_single_alias_is_refused_too(layout: Layout) -> None:
    path = layout.write_project("timeouts: &t {read: 5}\nretries: {max_attempts: 2}\n")
    with pytest.raises(ConfigError, match="anchors and aliases") as info:
        layout.manager().timeouts  # noqa: B018
    assert f"{path}:1:" in str(info.value)


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("ollama_endpoint", "http://[bad", "ollama_endpoint"),
        ("ollama_endpoint", "gpu box:11434", "ollama_endpoint"),
        ("providers.vllm.base_url", "http://gpu:99999/v1", "providers.vllm.base_url"),
        ("providers.vllm.base_url", "gpu-box:8000", "providers.vllm.base_url"),
        ("default_model", "nope/model", "unknown provider"),
        ("default_model", "ollama/two words", "spaces"),
        ("default_model", "ollama/", "provider/model"),
        ("timeouts.read", float("inf"), "timeouts.read"),
        ("trust_project_base_urls", "yes", "true or false"),
    ],
)
def test_set_user_setting_refuses_what_a_later_read_would_refuse(
    layout: Layout, key: str, value: object, words: str
) -> None:
    layout.write_user("timeouts:\n  connect: 5\n")
    before = layout.user_file.read_text()
    with pytest.raises(ConfigError) as info:
        layout.manager().set_user_setting(key, value)
    message = str(info.value)
    assert words in message
    assert message.startswith(str(layout.user_file)), "the error names the user config file"
    assert layout.user_file.read_text() == before


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("ollama_endpoint: 'http://[bad'\n", 1),
        ("providers:\n  lmstudio:\n    base_url: http://h:70000/v1\n", 3),
        ("default_model: nope/model\n", 1),
    ],
)
def test_bad_values_on_read_name_the_file_they_are_in(layout: Layout, text: str, line: int) -> None:
    path = layout.write_user(text)  # the user file, not the project file
    with pytest.raises(ConfigError) as info:
        layout.manager().get("default_model")
    assert str(info.value).startswith(f"{path}:{line}:")


def test_set_user_setting_round_trips_valid_values(layout: Layout) -> None:
    cfg = layout.manager()
    cfg.set_user_setting("ollama_endpoint", "gpu-box:11434")
    cfg.set_user_setting("providers.vllm.base_url", "http://gpu:8000/v1")
    cfg.set_user_setting("trust_project_base_urls", True)
    fresh = layout.manager()
    assert ollama_endpoint(fresh) == "http://gpu-box:11434"
    assert fresh.provider_base_url("vllm") == "http://gpu:8000/v1"
    assert fresh.trusts_project_urls


def test_config_module_names_no_provider() -> None:
    import rlm_code.core.config as config_module

    source = Path(config_module.__file__).read_text(encoding="utf-8").lower()
    for spec in ProviderRegistry.default().list_providers():
        if spec.provider_id in ("openai-compatible",):
            continue
        assert f'"{spec.provider_id}"' not in source, spec.provider_id
    assert "ollama" not in source
