"""Canary: a whole session handles a key, then not one byte of it is on disk anywhere we wrote.

The key is stored in the keyring, resolved for a request, logged at every level, carried in a
provider error that ends up in a chat, exported, and reported in a crash log. Afterwards the
data folder, config folder, logs, exports and stderr are searched byte for byte.
"""

from __future__ import annotations

import logging
import secrets
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.config.logging_state import root_logging_restored
from tests.config.memory_keyring import MemoryKeyring, use_backend
from victor_gui.config.profiles import Profile, load_profiles, save_app_profiles
from victor_gui.config.secrets import install_keyring_store
from victor_gui.config.settings import Settings, load_settings, save_settings
from victor_gui.core.logging_setup import install_excepthook, log_crash, setup_logging
from victor_gui.errors import ConfigError, ProviderAuthError, ProviderError
from victor_gui.providers import keys
from victor_gui.providers.catalog import find_spec
from victor_gui.storage import open_store
from victor_gui.storage.export import export_json, export_markdown


@pytest.fixture
def session_env() -> Iterator[MemoryKeyring]:
    hook = sys.excepthook
    with root_logging_restored():
        with use_backend(MemoryKeyring()) as backend:
            yield backend  # type: ignore[misc]
        keys.set_secret_store(None)
        sys.excepthook = hook


def _all_bytes(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


async def test_canary_key_never_lands_on_disk(
    session_env: MemoryKeyring, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = "sk-canary-" + secrets.token_hex(16)
    tail = canary[-16:]
    data_dir, config_dir, log_dir, export_dir = (tmp_path / n for n in ("data", "config", "logs", "exports"))
    log_file = setup_logging(log_dir, level=logging.DEBUG)
    install_excepthook()
    log = logging.getLogger("victor_gui.session")

    # The user saves the key in Settings → API keys; the app resolves it for a request.
    store_keys = install_keyring_store()
    store_keys.set_key("openai", canary)
    spec = find_spec("openai")
    assert spec is not None
    key, source = keys.resolve_api_key(spec, env={})
    assert (key, source) == (canary, "keyring")
    log.debug("request headers: %s", {"Authorization": f"Bearer {key}"})
    for level in (logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR, logging.CRITICAL):
        log.log(level, "using key %s for openai", key)

    # Settings and profiles are written; trying to put the key in them is refused.
    await save_settings(
        Settings(default_provider="openai", default_model="gpt-4o"), config_dir / "settings.yaml"
    )
    with pytest.raises(ConfigError):
        await save_settings(Settings(proxy=f"http://x:{canary}@p:1"), config_dir / "settings.yaml")
    await save_app_profiles(
        {"cloud": Profile(provider="openai", model="gpt-4o", api_key_env="OPENAI_API_KEY")},
        path=config_dir / "profiles.yaml",
    )
    assert (await load_settings(config_dir / "settings.yaml")).error is None
    assert (await load_profiles(tmp_path / "none.yaml", config_dir / "profiles.yaml")).errors == []

    # A chat whose reply fails with a provider error quoting the key.
    store, _ = await open_store(data_dir)
    conv = await store.create_conversation("Canary chat", params={"provider": "openai"})
    await store.add_message(conv.id, "user", "Say hello")
    mid = await store.begin_assistant_message(
        conv.id, provider="openai", model="gpt-4o", endpoint="https://api.openai.com/v1"
    )
    await store.append_partial(mid, "Hel")
    err: ProviderError = ProviderAuthError(
        f"Incorrect API key provided: {canary}", provider="openai", status_code=401, partial_content="Hel"
    )
    assert canary not in str(err)
    log.error("request failed: %s", err, exc_info=(type(err), err, None))
    await store.finish_message(mid, "error", error=f"{err} (raw: {canary})")
    await store.add_message(conv.id, "assistant", "ok", provider="openai", error=None)

    # Export everything.
    export_dir.mkdir()
    (export_dir / "all.json").write_text(await export_json(store))
    (export_dir / "all.md").write_text(await export_markdown(store))
    await store.close()

    # Something crashes with the key in its message and in a local variable's repr.
    try:
        api_key = canary
        raise RuntimeError(f"unexpected response for {api_key}")
    except RuntimeError:
        exc_type, exc, tb = sys.exc_info()
        assert exc_type is not None and exc is not None
        log_crash(exc_type, exc, tb)
        sys.excepthook(exc_type, exc, tb)
    for h in logging.getLogger().handlers:
        h.flush()

    files = _all_bytes(tmp_path)
    assert log_file in files and any(p.suffix == ".sqlite3" for p in files) and len(files) >= 6
    assert b"unexpected response for ***" in files[log_file]
    for path, blob in files.items():
        for needle in (canary, tail):
            assert needle.encode() not in blob, f"{needle} found in {path}"
            assert needle.encode("utf-16-le") not in blob, f"{needle} (utf-16) found in {path}"
    captured = capsys.readouterr()
    assert "unexpected response for ***" in captured.err
    assert tail not in captured.err and tail not in captured.out
