"""What an update costs the running app: the feed check, the download and sha256 of an installer,
the database backup and the installer's start, each with the longest event-loop pause while it
ran. The signed feed runs in a child process (tests/servers/release_feed.py), so its own Python
threads do not share this process's GIL; the database holds ``--chats`` conversations.

    python -m bench.bench_update [--mb 50] [--chats 2000]

Run it under a memory bound (``prlimit --as=3000000000``). Only for people; nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SERVER = """
import os, sys, time
from tests.servers.release_feed import FeedRelease, FeedServer, ReleaseKey
key = ReleaseKey()
server = FeedServer(key).start()
server.offer(FeedRelease("0.2.0", os.urandom(int(sys.argv[1]) << 20)))
print(server.feed_url)
print(key.public_pem.decode() + "END", flush=True)
time.sleep(600)
"""


def start_feed(mb: int) -> tuple[subprocess.Popen[str], str, str]:
    """The feed server child, its feed URL and its public key."""
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", SERVER, str(mb)], cwd=root, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    pem = ""
    while (line := proc.stdout.readline()) and line.strip() != "END":
        pem += line
    return proc, url, pem


async def run(url: str, pem: str, folder: Path) -> tuple[dict[str, float], dict[str, float], float, float]:
    """Check and install once; (state → longest loop pause, state → time entered, start, end)."""
    import httpx

    from victor_gui.services.settings_service import SettingsService
    from victor_gui.services.updates import UpdateService

    settings = SettingsService(folder / "settings.yaml")
    await settings.load()
    await settings.update(updates={"check": True, "feed_url": url})
    data = folder / "data"
    gaps: dict[str, float] = {}
    marks: dict[str, float] = {}
    async with httpx.AsyncClient() as client:
        service = UpdateService(client, settings, data, db_path=data / "conversations.sqlite3",
                                current_version="0.1.0", public_key=pem.encode(),
                                launcher=[sys.executable, "-c", "pass"])
        done = False

        async def tick() -> None:
            while not done:
                start = time.perf_counter()
                await asyncio.sleep(0.005)
                gap = time.perf_counter() - start - 0.005
                gaps[service.state.value] = max(gaps.get(service.state.value, 0.0), gap)

        # In the app the shared client has served discovery and health checks long before the
        # check (8 s after start): its first-request imports (httpcore/anyio) are not the update's.
        await client.get(url.replace("latest.json", "warm-up"))
        ticker = asyncio.ensure_future(tick())
        service.subscribe(lambda c: marks.setdefault(c.state.value, time.perf_counter()))
        t0 = time.perf_counter()
        await service.check()
        await service.install()
        t1 = time.perf_counter()
        done = True
        await ticker
    settings.close()
    return gaps, marks, t0, t1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=50, help="installer size in MiB")
    parser.add_argument("--chats", type=int, default=2000, help="conversations in the database")
    args = parser.parse_args()
    from tests.services.update_rig import make_db

    proc, url, pem = start_feed(args.mb)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "data").mkdir()
            make_db(folder / "data" / "conversations.sqlite3",
                    titles=tuple(f"chat {i}" for i in range(args.chats)))
            gaps, marks, t0, t1 = asyncio.run(run(url, pem, folder))
    finally:
        proc.kill()
        proc.wait()
    mb, chats = args.mb, args.chats
    print(f"check {1000 * (marks['available'] - t0):.0f} ms "
          f"(longest loop pause {1000 * gaps['checking']:.0f} ms)")
    print(f"download + sha256 of {mb} MB {marks['backing_up'] - marks['downloading']:.2f} s "
          f"(longest pause {1000 * gaps['downloading']:.0f} ms)")
    print(f"backup of {chats} chats {1000 * (marks['installing'] - marks['backing_up']):.0f} ms "
          f"(longest pause {1000 * gaps.get('backing_up', 0.0):.0f} ms)")
    print(f"installer started {1000 * (t1 - marks['installing']):.0f} ms")


if __name__ == "__main__":
    main()
