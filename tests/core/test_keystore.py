"""The user's key store: 0600 from the first byte, refused when others can read it."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from rlm_code.core.config import ConfigManager
from rlm_code.core.exceptions import ConfigError
from rlm_code.core.keystore import KeyStore
from rlm_code.core.redact import MASK, redact

pytestmark = pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")

OPENAI_KEY = "sk-test-keystore0123456789"
ANTHROPIC_KEY = "sk-ant-test-keystore0123456789"
# Shaped like no known provider key, so only registration can mask it.
ODD_KEY = "zq7-keystore-odd-secret-6f1c2b9e"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def store(tmp_path: Path) -> KeyStore:
    return KeyStore(tmp_path / "cfg" / "keys.json")


def test_set_creates_a_0600_file_in_a_0700_dir(store: KeyStore) -> None:
    store.set("openai", OPENAI_KEY)
    assert mode(store.path) == 0o600
    assert mode(store.path.parent) == 0o700
    store.set("anthropic", ANTHROPIC_KEY)
    assert mode(store.path) == 0o600, "still 0600 after a rewrite"


def test_set_is_0600_whatever_the_umask(store: KeyStore) -> None:
    old = os.umask(0)
    try:
        store.set("openai", OPENAI_KEY)
    finally:
        os.umask(old)
    assert mode(store.path) == 0o600


def test_round_trip(store: KeyStore) -> None:
    assert store.get("openai") is None
    assert store.providers() == []
    store.set("openai", OPENAI_KEY)
    store.set("anthropic", ANTHROPIC_KEY)
    assert store.get("openai") == OPENAI_KEY
    assert store.get("anthropic") == ANTHROPIC_KEY
    assert store.providers() == ["anthropic", "openai"]
    assert KeyStore(store.path).get("openai") == OPENAI_KEY, "persisted on disk"
    assert json.loads(store.path.read_text()) == {"anthropic": ANTHROPIC_KEY, "openai": OPENAI_KEY}
    store.set("openai", OPENAI_KEY + "v2")
    assert store.get("openai") == OPENAI_KEY + "v2"
    assert store.delete("openai") is True
    assert store.get("openai") is None
    assert store.delete("openai") is False
    assert store.providers() == ["anthropic"]


def test_writes_leave_no_temp_files(store: KeyStore) -> None:
    store.set("openai", OPENAI_KEY)
    store.delete("openai")
    store.set("gemini", "AIzaTestKeystore0123456789")
    assert [p.name for p in store.path.parent.iterdir()] == ["keys.json"]


@pytest.mark.parametrize("bad_mode", [0o644, 0o640, 0o604, 0o660, 0o666])
def test_store_readable_by_others_is_refused(store: KeyStore, bad_mode: int) -> None:
    store.set("openai", OPENAI_KEY)
    store.path.chmod(bad_mode)
    for action in (lambda: store.get("openai"), store.providers,
                   lambda: store.set("x", OPENAI_KEY), lambda: store.delete("openai")):  # fmt: skip
        with pytest.raises(ConfigError, match="chmod 600") as info:
            action()
        assert str(store.path) in str(info.value)
        assert OPENAI_KEY not in str(info.value)
    store.path.chmod(0o600)
    assert store.get("openai") == OPENAI_KEY


def test_malformed_json_names_file_and_line(store: KeyStore) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text('{\n  "openai": "' + OPENAI_KEY + '",\n  "anthropic": \n}\n')
    store.path.chmod(0o600)
    with pytest.raises(ConfigError, match="not valid JSON") as info:
        store.get("openai")
    message = str(info.value)
    assert f"{store.path}:4" in message
    assert OPENAI_KEY not in message and OPENAI_KEY not in repr(info.value)


@pytest.mark.parametrize("content", ['["sk-test-0123456789"]', '{"openai": 123}', '"text"'])
def test_wrong_json_shape_is_refused(store: KeyStore, content: str) -> None:
    store.path.parent.mkdir(parents=True)
    store.path.write_text(content)
    store.path.chmod(0o600)
    with pytest.raises(ConfigError, match="JSON object of strings") as info:
        store.providers()
    assert "sk-test-0123456789" not in str(info.value)


def test_key_never_appears_in_repr(store: KeyStore) -> None:
    store.set("openai", OPENAI_KEY)
    assert OPENAI_KEY not in repr(store)
    assert str(store.path) in repr(store)
    cfg = ConfigManager(store.path.parent, environ={"RLM_CODE_CONFIG_DIR": str(store.path.parent)})
    assert OPENAI_KEY not in repr(cfg)
    assert OPENAI_KEY not in repr(cfg.key_store)


def test_stored_keys_are_registered_for_redaction(store: KeyStore) -> None:
    store.set("custom", ODD_KEY)
    assert redact(f"calling with {ODD_KEY} now") == f"calling with {MASK} now"


def test_keys_read_from_disk_are_registered_for_redaction(store: KeyStore) -> None:
    secret = "zq7-keystore-read-from-disk-91ad"
    store.path.parent.mkdir(parents=True)
    store.path.write_text(json.dumps({"custom": secret}))
    store.path.chmod(0o600)
    assert redact(secret) == secret, "not registered before the store is read"
    assert KeyStore(store.path).get("custom") == secret
    assert redact(f"x {secret} y") == f"x {MASK} y"


def test_config_manager_key_store_lives_in_user_config_dir(tmp_path: Path) -> None:
    cfg = ConfigManager(tmp_path / "project", environ={"RLM_CODE_CONFIG_DIR": str(tmp_path / "u")})
    cfg.key_store.set("openai", OPENAI_KEY)
    assert (tmp_path / "u" / "keys.json").is_file()
    assert not (tmp_path / "project").exists()
    assert cfg.key_store.get("openai") == OPENAI_KEY


# -- a hostile file system (issue 10.10, 10.23) --------------------------------------------


def test_symlinked_store_is_refused_not_followed(store: KeyStore, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.json"
    target.write_text(json.dumps({"openai": OPENAI_KEY}))
    target.chmod(0o600)
    store.path.parent.mkdir(mode=0o700)
    store.path.symlink_to(target)
    actions: list[Callable[[], object]] = [
        lambda: store.get("openai"),
        lambda: store.set("groq", OPENAI_KEY),
    ]
    for action in actions:
        with pytest.raises(ConfigError, match="symlink") as info:
            action()
        assert str(store.path) in str(info.value)
    assert json.loads(target.read_text()) == {"openai": OPENAI_KEY}, "the target is untouched"


def test_fifo_store_is_refused_without_blocking(store: KeyStore) -> None:
    store.path.parent.mkdir(mode=0o700)
    os.mkfifo(store.path, 0o600)
    # A blocking open of a FIFO with no writer would hang this test forever.
    with pytest.raises(ConfigError, match="not a regular file"):
        store.get("openai")
    with pytest.raises(ConfigError, match="not a regular file"):
        store.set("openai", OPENAI_KEY)


def test_directory_in_place_of_the_store_is_refused(store: KeyStore) -> None:
    store.path.mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a regular file"):
        store.providers()


def test_world_writable_config_dir_is_refused(store: KeyStore) -> None:
    store.set("openai", OPENAI_KEY)
    store.path.parent.chmod(0o777)
    try:
        actions: list[Callable[[], object]] = [
            lambda: store.get("openai"),
            lambda: store.set("x", OPENAI_KEY),
        ]
        for action in actions:
            with pytest.raises(ConfigError, match="writable by every user") as info:
                action()
            assert "chmod 700" in str(info.value)
    finally:
        store.path.parent.chmod(0o700)
    assert store.get("openai") == OPENAI_KEY


_SET_KEY = """
import sys
from pathlib import Path
from rlm_code.core.keystore import KeyStore
KeyStore(Path(sys.argv[1])).set(sys.argv[2], sys.argv[3])
"""


def test_concurrent_writers_lose_no_key(store: KeyStore) -> None:
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _SET_KEY,
                str(store.path),
                f"p{i}",
                f"sk-test-conc{i:02d}-abcdef",
            ]
        )
        for i in range(10)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0] * 10
    assert store.providers() == sorted(f"p{i}" for i in range(10))
    assert all(store.get(f"p{i}") == f"sk-test-conc{i:02d}-abcdef" for i in range(10))
    assert [p.name for p in store.path.parent.iterdir()] == ["keys.json"]
