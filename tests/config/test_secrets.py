"""Keyring-only secrets, lookup order, and a log file that never holds a key."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.config.logging_state import root_logging_restored
from tests.config.memory_keyring import MemoryKeyring, no_backend, use_backend
from victor_gui.config.secrets import SERVICE, KeyringStore, install_keyring_store
from victor_gui.core.logging_setup import setup_logging
from victor_gui.errors import StorageError
from victor_gui.providers import keys
from victor_gui.providers.catalog import ProviderSpec, find_spec


@pytest.fixture
def memory() -> Iterator[MemoryKeyring]:
    with use_backend(MemoryKeyring()) as backend:
        yield backend  # type: ignore[misc]
    keys.set_secret_store(None)


@pytest.fixture
def clean_logging() -> Iterator[None]:
    with root_logging_restored():
        yield


def spec(name: str = "openai") -> ProviderSpec:
    found = find_spec(name)
    assert found is not None
    return found


def test_set_get_has_delete(memory: MemoryKeyring) -> None:
    store = KeyringStore()
    assert store.backend_status()[0] is True
    assert store.get_key("openai") is None and not store.has_key("openai")
    store.set_key("openai", "  sk-test-abcdefghijkl  ")
    assert memory.entries == {(SERVICE, "openai"): "sk-test-abcdefghijkl"}
    assert store.get_key("openai") == "sk-test-abcdefghijkl" and store.has_key("openai")
    assert store.delete_key("openai") is True and store.delete_key("openai") is False
    with pytest.raises(StorageError):
        store.set_key("openai", "   ")


def test_no_backend_is_said_plainly_and_never_falls_back_to_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with use_backend(no_backend()):
        store = KeyringStore()
        ok, message = store.backend_status()
        assert ok is False and "No system keyring" in message and "environment" in message
        with pytest.raises(StorageError, match="No system keyring"):
            store.set_key("openai", "sk-nowhere-1234567890")
        assert store.get_key("openai") is None
        installed = install_keyring_store(store)
        key, source = keys.resolve_api_key(spec(), env={"OPENAI_API_KEY": "sk-env-1234567890"})
        assert (key, source) == ("sk-env-1234567890", "env:OPENAI_API_KEY")
        assert installed is store
    keys.set_secret_store(None)
    assert list(tmp_path.iterdir()) == []


def test_lookup_order_explicit_keyring_profile_env_seed_env(memory: MemoryKeyring) -> None:
    store = install_keyring_store()
    env = {"MY_KEY": "from-profile-env-000", "OPENAI_API_KEY": "from-seed-env-000"}
    s = spec()
    assert keys.resolve_api_key(s, api_key_env="MY_KEY", env=env) == ("from-profile-env-000", "env:MY_KEY")
    assert keys.resolve_api_key(s, env=env) == ("from-seed-env-000", "env:OPENAI_API_KEY")
    store.set_key("openai", "from-keyring-0000")
    assert keys.resolve_api_key(s, api_key_env="MY_KEY", env=env) == ("from-keyring-0000", "keyring")
    assert keys.resolve_api_key(s, "explicit-0000", env=env) == ("explicit-0000", "explicit")


def test_groq_alias_env_var(memory: MemoryKeyring) -> None:
    install_keyring_store()
    s = spec("groqcloud")
    assert keys.resolve_api_key(s, env={"GROQCLOUD_API_KEY": "gsk_abcdefghijk"})[1] == "env:GROQCLOUD_API_KEY"


@pytest.mark.parametrize(
    "level", [logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL]
)
def test_registered_key_never_reaches_the_log_file(
    memory: MemoryKeyring, clean_logging: None, tmp_path: Path, level: int
) -> None:
    secret = "zq-odd-shaped-secret-4242"  # matches no credential pattern: only registration catches it
    KeyringStore().set_key("custom", secret)
    path = setup_logging(tmp_path / "logs", level=logging.DEBUG)
    log = logging.getLogger("victor_gui.some.module")
    log.log(level, "key is " + secret)
    log.log(level, "key is %s, again %r", secret, {"k": secret})
    try:
        raise RuntimeError(f"failed with {secret}")
    except RuntimeError:
        log.log(level, "oops", exc_info=True)
    log.log(level, "stack", stack_info=True)
    for h in logging.getLogger().handlers:
        h.flush()
    text = path.read_text()
    assert "key is ***" in text and "RuntimeError: failed with ***" in text
    assert secret not in text


def test_keyring_is_used_without_a_terminal(tmp_path: Path) -> None:
    """Started from a desktop launcher: no TTY on stdin, no TERM. The keyring is still read."""
    import os
    import subprocess
    import sys

    code = (
        "import keyring, sys\n"
        "from tests.config.memory_keyring import MemoryKeyring\n"
        # On Windows the NUL device reports isatty() True: the point is no TERM and no console.
        "assert not sys.stdin or not sys.stdin.isatty() or sys.platform == 'win32'\n"
        "keyring.set_keyring(MemoryKeyring())\n"
        "from victor_gui.config.secrets import install_keyring_store\n"
        "from victor_gui.providers.keys import resolve_api_key\n"
        "from victor_gui.providers.catalog import find_spec\n"
        "install_keyring_store().set_key('anthropic', 'sk-ant-launcher-000000')\n"
        "print(resolve_api_key(find_spec('anthropic'), env={})[1])\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TERM", "CI")}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=30,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "keyring"
