"""The Windows tier's update step (issue 15 part 4): the INSTALLED app's own update path under
Wine, driven by ``victor-gui-cli update --install`` against the release feed simulator
(tests/servers/release_feed.py) on the Linux host's 127.0.0.1.

The signing key: the tier makes an Ed25519 key pair once and keeps it beside its other
downloads (``<wine cache>/update-test-key/``); the bundle build is told to ship its public half
(``VICTOR_BUNDLE_UPDATE_KEY``, read only by packaging/update_key.py at build time) and the
bundle cache is keyed on it. Release builds ship resources/update_key.pub; the app itself reads
no variable, so there is no run-time way to make a released app trust another key.

The update offered is the installed bundle again in an installer one version above the tier's
``newer.exe`` (zlib, cached per bundle). The cases, in order, each from a fresh run of the
installed CLI (the feed URL is written into the installed app's settings.yaml):

1. a corrupt download, 2. a bad signature, 3. a feed that lies about the version, 4. the
network dropping mid-download and staying down: exit code non-zero, one sentence, no download
or backup left, the installed version, files and database unchanged, no installer started;
5. a good update whose download drops once (resumed with ``Range``) over a database one schema
version behind: exit 0, the backup holds the old database and settings, the silent installer
installs the new version, and the new install opens the old database (a chat through the
installed CLI against a local llama-server simulator), migrates it and keeps every chat.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import psutil
import yaml

from tests.packaging.wine_tier import (
    UNINSTALL_KEY,
    Report,
    TierError,
    WineTier,
    _cached,
    _next_version,
    _prune,
    _store,
    _wait_for,
    cache_root,
)
from tests.servers.release_feed import FeedRelease, FeedServer, ReleaseKey
from tests.services.update_rig import make_db
from victor_gui.storage.schema import SCHEMA_VERSION, user_version

KEY_ENV = "VICTOR_BUNDLE_UPDATE_KEY"
OLD_CHATS = ("Trip plans", "Recipes from grandma")
#: Every fault: (name, expected exit code, expected reason, words of the sentence).
FAULTS = (
    ("corrupt download", 1, "checksum", "does not match its signed checksum"),
    ("bad signature", 1, "signature", "signature does not match"),
    ("lying feed", 1, "version", "the feed was changed"),
    ("network drops mid-download", 4, "network", "kept failing"),
)
# httpx honours proxy variables (trust_env); the feed is on this machine.
_NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def update_key_pair() -> ReleaseKey:
    """The tier's update signing key, made once and kept in the Wine cache (never in the repo)."""
    folder = cache_root() / "update-test-key"
    private = folder / "private.pem"
    if not private.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        key = ReleaseKey()
        partial = private.with_suffix(".partial")
        partial.write_bytes(key.private_pem)
        os.chmod(partial, 0o600)
        partial.replace(private)
        (folder / "public.pem").write_bytes(key.public_pem)
        return key
    return ReleaseKey(private.read_bytes())


def trust_test_key(wine: WineTier) -> str:
    """Make the bundle build (under ``wine``) ship the tier's test key; returns the key's hash,
    part of the bundle cache key (a cached bundle trusting another key is never reused)."""
    key = update_key_pair()
    public = cache_root() / "update-test-key" / "public.pem"
    if public.read_bytes() != key.public_pem:
        public.write_bytes(key.public_pem)
    wine.env[KEY_ENV] = wine.win(public)
    return hashlib.sha256(key.public_pem).hexdigest()[:8]


def update_installer(build: Any, work: Path) -> tuple[Path, str]:
    """The update's installer (the bundle, one version above ``newer.exe``), built once per
    bundle and kept in the cache; returns it and its version."""
    bundle: Path = build.DEFAULT_BUNDLE
    version = _next_version(_next_version(build.app_version()))
    digest = hashlib.sha256((bundle / "victor-gui.exe").read_bytes() + version.encode()).hexdigest()[:16]
    stored = cache_root() / f"updater-{digest}"
    name = build.installer_name(version)
    if not _cached(stored):
        out = work / "updater"
        build.installer(bundle, out / name, version=version, compressor="zlib")
        _prune(stored)
        _store(out, stored)
    return stored / name, version


def point_settings_at(settings_file: Path, feed_url: str) -> None:
    """Write ``updates.feed_url`` (and no automatic checks) into the installed app's settings,
    keeping everything else the file holds."""
    from victor_gui.config.settings import CONFIG_VERSION

    data: dict[str, Any] = {}
    if settings_file.is_file():
        data = yaml.safe_load(settings_file.read_text(encoding="utf-8")) or {}
    # With its version, so the app has no migration to do: that first copies the file with
    # shutil.copy2, whose kernel32!CopyFile2 Wine 8 lacks (an abort, not an exception).
    data.setdefault("config_version", CONFIG_VERSION)
    data["updates"] = {**(data.get("updates") or {}), "check": False, "feed_url": feed_url}
    settings_file.parent.mkdir(parents=True, exist_ok=True)
    settings_file.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _json_line(out: str) -> dict[str, Any]:
    """The one JSON object ``--json`` prints (stderr shares the pipe: log lines may surround it)."""
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise TierError(f"no JSON in the output:\n{out[-3000:]}")


def _db_state(db: Path) -> tuple[int, list[str]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return user_version(conn), sorted(t for (t,) in conn.execute("SELECT title FROM conversations"))
    finally:
        conn.close()


def _installed_state(wine: WineTier, target: Path, local: Path) -> dict[str, Any]:
    """What a failed update must leave exactly as it was."""
    exe = (target / "victor-gui.exe").stat()
    db = local / "conversations.sqlite3"
    return {"version": (wine.hkcu(UNINSTALL_KEY) or {}).get("DisplayVersion"),
            "exe": (exe.st_size, exe.st_ctime_ns),
            "db": hashlib.sha256(db.read_bytes()).hexdigest(),
            "backups": sorted(p.name for p in (local / "backups").glob("*")),
            "updates": sorted(str(p.relative_to(local)) for p in (local / "updates").rglob("*"))}


def _installer_processes(wine: WineTier, name: str) -> list[psutil.Process]:
    """This prefix's running processes of the installer ``name`` (Wine shows a Windows program's
    command line as the Linux process's)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if not any(name in part for part in proc.info["cmdline"] or ()):
            continue
        try:
            if proc.environ().get("WINEPREFIX") == str(wine.prefix):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def update_cases(wine: WineTier, build: Any, target_win: str, work: Path, report: Report) -> None:
    """Every update case against the installed app (see the module docstring); the outcome of
    each goes into the report's ``updates``."""
    from tests.servers import llamacpp

    target = wine.unix_path(target_win)
    local = wine.user_dir / "AppData" / "Local" / "victor_gui"
    cli = wine.win(target / "victor-gui-cli.exe")
    results: dict[str, Any] = {}
    report.data["updates"] = results
    with report.step("update installer"):
        installer, version = update_installer(build, work)
        results["installer_bytes"] = installer.stat().st_size
    feed = FeedServer(update_key_pair()).start()
    try:
        release = feed.offer(FeedRelease(version, installer.read_bytes(), name=installer.name))
        with report.step("update: old database and feed in settings"):
            db = local / "conversations.sqlite3"
            for old in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
                old.unlink(missing_ok=True)
            make_db(db, version=SCHEMA_VERSION - 1, titles=OLD_CHATS)
            point_settings_at(local / "settings.yaml", feed.feed_url)
        for name, code, reason, words in FAULTS:
            with report.step(f"update: {name}"):
                results[name] = _refused(wine, cli, feed, release, name, (code, reason, words), target, local)
        with report.step("update: good update over the old database"):
            results["good update"] = _good_update(wine, cli, feed, release, target, local)
        with report.step("update: the new version opens the old database"):
            sim = llamacpp.make_server().start()
            try:
                t = time.monotonic()
                _, out = wine.call([cli, "chat", "Hello after the update", "--endpoint", sim.url,
                                    "--model", "sim-model", "--no-scan", "--json"], 300, env=_NO_PROXY)
                answer = _json_line(out)
            finally:
                sim.stop()
            schema, titles = _db_state(db)
            added = [t for t in titles if t not in OLD_CHATS]
            if schema != SCHEMA_VERSION or len(added) != 1 or len(titles) != len(OLD_CHATS) + 1:
                raise TierError(f"after the update the database is v{schema} with {titles}")
            migration_backups = sorted(p.name for p in local.glob(f"{db.name}.bak-v{SCHEMA_VERSION - 1}-*"))
            if not migration_backups:
                raise TierError("the migration took no backup of the old database")
            results["after"] = {"chat_s": round(time.monotonic() - t, 1), "schema": schema, "titles": titles,
                                "conversation_id": answer.get("conversation_id"),
                                "migration_backups": migration_backups}
    finally:
        feed.stop()


def _refused(wine: WineTier, cli: str, feed: FeedServer, release: FeedRelease, name: str,
             expected: tuple[int, str, str], target: Path, local: Path) -> dict[str, Any]:
    """One fault: the installed CLI must refuse it and leave everything as it was."""
    code, reason, words = expected
    feed.corrupt = feed.bad_signature = feed.down_after_drop = feed.down = False
    feed.lie_version = None
    if name == "corrupt download":
        feed.corrupt = True
    elif name == "bad signature":
        feed.bad_signature = True
    elif name == "lying feed":
        feed.lie_version = "9.9.9"
    else:
        feed.down_after_drop = True
        feed.drop_next(len(release.installer) // 2)
    before = _installed_state(wine, target, local)
    requests = len(feed.installer_requests())
    t = time.monotonic()
    rc, out = wine.call([cli, "update", "--install", "--json"], 300, env=_NO_PROXY, ok=False)
    relaunched = None
    if not out.strip() and not feed.installer_requests()[requests:]:
        # Once in a CI run the installed CLI came back in 0.1 s with no output at all and no
        # request made: Wine did not start it (the same case passed in every other run). That
        # says nothing about the update path, so it is started once more, and the report says so.
        relaunched = {"exit_code": rc, "seconds": round(time.monotonic() - t, 1)}
        rc, out = wine.call([cli, "update", "--install", "--json"], 300, env=_NO_PROXY, ok=False)
    seconds = round(time.monotonic() - t, 1)
    if not any(line.startswith("{") for line in out.splitlines()):
        raise TierError(f"{name}: exit {rc} after {seconds} s with no JSON answer:\n{out[-3000:]}")
    answer = _json_line(out)
    after = _installed_state(wine, target, local)
    got = (rc, answer.get("status"), answer.get("reason"))
    if got != (code, "failed", reason) or words not in answer["message"]:
        raise TierError(f"{name}: exit {rc}, {answer}")
    if after != before:
        raise TierError(f"{name} changed the installed app: before {before}, after {after}")
    if _installer_processes(wine, release.name):
        raise TierError(f"{name}: an installer was started")
    feed.down = feed.corrupt = False
    return {"exit_code": rc, "reason": reason, "message": answer["message"], "seconds": seconds,
            "installer_requests": feed.installer_requests()[requests:], "version_after": after["version"],
            "relaunched": relaunched}


def _good_update(wine: WineTier, cli: str, feed: FeedServer, release: FeedRelease, target: Path,
                 local: Path) -> dict[str, Any]:
    """The good update: downloaded (one drop, resumed), verified, backed up, installed."""
    feed.corrupt = feed.bad_signature = feed.down_after_drop = feed.down = False
    feed.lie_version = None
    requests = len(feed.installer_requests())
    drop = len(release.installer) // 3
    feed.drop_next(drop)
    # ctime, not mtime: NSIS gives the files it writes their build-time mtime.
    exe_before = (target / "victor-gui.exe").stat().st_ctime_ns
    t = time.monotonic()
    rc, out = wine.call([cli, "update", "--install", "--json"], 300, env=_NO_PROXY, ok=False)
    cli_s = round(time.monotonic() - t, 1)
    answer = _json_line(out)
    if rc != 0 or answer.get("status") != "launched":
        raise TierError(f"the good update: exit {rc}, {answer}\n{out[-3000:]}")
    ranges = feed.installer_requests()[requests:]
    if len(ranges) != 2 or ranges[0] is not None or not (ranges[1] or "").startswith("bytes="):
        raise TierError(f"the dropped download was not resumed: {ranges}")

    def installed() -> bool:
        entry = wine.hkcu(UNINSTALL_KEY) or {}
        return entry.get("DisplayVersion") == release.version and not _installer_processes(wine, release.name)

    _wait_for(installed, 300, f"installed {release.version}")
    install_s = round(time.monotonic() - t - cli_s, 1)
    if (target / "victor-gui.exe").stat().st_ctime_ns == exe_before:
        raise TierError(f"{release.version} is in the uninstall entry but its files were not written")
    backup = wine.unix_path(answer["backup"])  # C:\users\...\AppData\Local\victor_gui\backups\...
    schema, titles = _db_state(backup / "conversations.sqlite3")
    if schema != SCHEMA_VERSION - 1 or titles != sorted(OLD_CHATS):
        raise TierError(f"the backup holds v{schema} {titles}")
    if "feed_url" not in (backup / "settings.yaml").read_text(encoding="utf-8"):
        raise TierError("the backup has no copy of settings.yaml")
    return {"exit_code": rc, "cli_s": cli_s, "install_s": install_s, "installer_requests": ranges,
            "backup": str(backup.relative_to(local)), "backup_schema": schema,
            "version_after": release.version, "message": answer["message"]}
