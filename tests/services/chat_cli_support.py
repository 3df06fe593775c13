"""Running ``victor-gui chat`` as a real subprocess with HOME and the app's folders in a temp dir
(tests/support/app_env.py: the XDG folders, or %LOCALAPPDATA% on Windows), and reading back what
it stored."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.support.app_env import SHARED_CONFIG_AND_DATA, isolated_dirs_env
from victor_gui.storage.models import Conversation, StoredMessage
from victor_gui.storage.store import DB_NAME, ConversationStore

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Home:
    """A user's folders inside a test's tmp_path."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def data(self) -> Path:
        return self.config if SHARED_CONFIG_AND_DATA else self.root / "data"

    @property
    def settings_file(self) -> Path:
        return self.config / "victor_gui" / "settings.yaml"

    @property
    def victor_profiles(self) -> Path:
        return self.home / ".victor" / "profiles.yaml"

    @property
    def db(self) -> Path:
        return self.data / "victor_gui" / DB_NAME

    def env(self) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items()
                if not k.endswith(("_API_KEY", "_HOST", "_ENDPOINTS", "_TOKEN"))}
        base.update({**isolated_dirs_env(self.home, self.config, self.data),
                     # Never touch the developer's real keyring from a test.
                     "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"})
        return base

    def write_settings(self, data: dict[str, Any]) -> None:
        self.settings_file.parent.mkdir(parents=True, exist_ok=True)
        self.settings_file.write_text(yaml.safe_dump({"config_version": 3, **data}), encoding="utf-8")

    def write_victor_profiles(self, text: str) -> None:
        self.victor_profiles.parent.mkdir(parents=True, exist_ok=True)
        self.victor_profiles.write_text(text, encoding="utf-8")

    def run(self, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        self.home.mkdir(parents=True, exist_ok=True)
        return subprocess.run([sys.executable, "-m", "victor_gui", *args], cwd=ROOT,
                              env={**self.env(), **(env or {})}, input=stdin if stdin is not None else "",
                              capture_output=True, text=True, timeout=timeout, check=False)

    def stored(self) -> list[tuple[Conversation, list[StoredMessage]]]:
        """Every conversation in the app's default store, with its messages."""
        if not self.db.exists():
            return []

        async def read() -> list[tuple[Conversation, list[StoredMessage]]]:
            store = ConversationStore(self.db)
            try:
                out = []
                for conv in await store.list_conversations():
                    out.append((conv, await store.get_messages(conv.id)))
                return out
            finally:
                await store.close()
        return asyncio.run(read())
