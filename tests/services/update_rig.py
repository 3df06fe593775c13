"""What the update tests share: a signed feed on 127.0.0.1, real settings.yaml and SQLite files
in a scratch data folder, and a stand-in "installer" (a Python script started through the
service's launcher prefix, as Wine or the .exe itself would be) that records how it was run."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.servers.release_feed import FeedRelease, FeedServer, ReleaseKey
from victor_gui.services.settings_service import SettingsService
from victor_gui.services.updates import UpdateService
from victor_gui.storage.schema import SCHEMA_VERSION, migrate

# Written whole, then renamed: the test polls for the marker and must never read half of it.
STAND_IN = """\
import json, os, sys
from pathlib import Path
tmp = Path(sys.argv[1] + ".tmp")
tmp.write_text(json.dumps(sys.argv[2:]), encoding="utf-8")
os.replace(tmp, sys.argv[1])
"""


def make_db(path: Path, *, version: int = SCHEMA_VERSION, titles: tuple[str, ...] = ("Trip plans",)) -> None:
    """A real conversation database at schema ``version`` holding conversations ``titles``."""
    conn = sqlite3.connect(path)
    try:
        migrate(conn, None, target=version)
        now = time.time()
        for title in titles:
            conn.execute("INSERT INTO conversations (title, created, updated) VALUES (?, ?, ?)",
                         (title, now, now))
        conn.commit()
    finally:
        conn.close()


def installer_bytes(size: int = 300_000) -> bytes:
    """Bytes standing in for an installer (not compressible into nothing, not all zeros)."""
    return bytes((i * 131 + i // 7) % 256 for i in range(size))


@dataclass
class Rig:
    root: Path
    feed: FeedServer
    key: ReleaseKey
    client: httpx.AsyncClient
    settings: SettingsService
    data: Path
    marker: Path
    script: Path
    services: list[UpdateService] = field(default_factory=list)

    @property
    def db_path(self) -> Path:
        return self.data / "conversations.sqlite3"

    def service(self, *, current: str = "0.1.0", installs: bool = True, **kwargs: object) -> UpdateService:
        launcher = [sys.executable, str(self.script), str(self.marker)] if installs else None
        service = UpdateService(self.client, self.settings, self.data, db_path=self.db_path,
                                current_version=current, public_key=self.key.public_pem,
                                launcher=launcher, **kwargs)  # type: ignore[arg-type]
        self.services.append(service)
        return service

    def offer(self, version: str = "0.2.0", **kwargs: object) -> FeedRelease:
        return self.feed.offer(FeedRelease(version, installer_bytes(), **kwargs))  # type: ignore[arg-type]

    def installer_args(self, timeout: float = 10.0) -> list[str]:
        """What the stand-in installer was started with (waits for it to write its marker)."""
        deadline = time.monotonic() + timeout
        while not self.marker.exists():
            if time.monotonic() > deadline:
                raise AssertionError("the installer was not started")
            time.sleep(0.02)
        return list(json.loads(self.marker.read_text(encoding="utf-8")))


async def make_rig(root: Path, *, check: bool = True) -> Rig:
    """A started feed, the settings file pointing at it, a data folder with a database."""
    key = ReleaseKey()
    feed = FeedServer(key).start()
    settings_file = root / "config" / "settings.yaml"
    settings = SettingsService(settings_file)
    await settings.load()
    await settings.update(updates={"check": check, "feed_url": feed.feed_url}, theme="dark")
    data = root / "data"
    data.mkdir()
    script = root / "stand_in_installer.py"
    script.write_text(STAND_IN, encoding="utf-8")
    rig = Rig(root, feed, key, httpx.AsyncClient(), settings, data, root / "installer-ran.json", script)
    make_db(rig.db_path)
    return rig


async def close_rig(rig: Rig) -> None:
    await rig.client.aclose()
    rig.settings.close()
    rig.feed.stop()
