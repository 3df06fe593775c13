"""The update path end to end against a signed feed on 127.0.0.1: real HTTP, real files, a real
SQLite backup, and a stand-in installer started as a detached process (on Linux; the Wine run
of the real installer is the packaging tier's)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.services.update_rig import Rig, close_rig, make_db, make_rig
from tests.support.app_env import isolated_dirs_env
from victor_gui.errors import UpdateError
from victor_gui.services.update_feed import is_newer, verify_signature, version_key
from victor_gui.services.updates import CHECK_INTERVAL_S, UpdateChanged, UpdateState
from victor_gui.storage import open_store
from victor_gui.storage.schema import SCHEMA_VERSION, user_version


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    rig = await make_rig(tmp_path)
    yield rig
    await close_rig(rig)


def _untouched(rig: Rig) -> None:
    """Nothing an attempt adds is left behind, and no installer ran."""
    assert not (rig.data / "updates").exists() or not any((rig.data / "updates").rglob("*"))
    assert not (rig.data / "backups").exists() or not any((rig.data / "backups").iterdir())
    assert not rig.marker.exists()


async def test_a_good_update_is_downloaded_verified_backed_up_and_started(rig: Rig) -> None:
    release = rig.offer("0.2.0")
    service = rig.service(current="0.1.0")
    seen: list[UpdateChanged] = []
    service.subscribe(seen.append)
    offered = await service.check()
    assert offered is not None and offered.version == "0.2.0" and offered.size == len(release.installer)
    assert offered.notes.startswith("Faster start-up") and service.state is UpdateState.AVAILABLE

    command = await service.install()

    installer = rig.data / "updates" / "0.2.0" / release.name
    assert installer.read_bytes() == release.installer
    assert command[-2:] == [str(installer), "/S"]
    assert rig.installer_args() == [str(installer), "/S"]  # the silent upgrade really started
    assert service.state is UpdateState.LAUNCHED and service.last_command == command
    # The backup: <data>/backups/<old version>-<time>/ with a readable DB copy and the settings.
    backup = service.last_backup
    assert backup is not None and backup.parent == rig.data / "backups" and backup.name.startswith("0.1.0-")
    copy = sqlite3.connect(backup / "conversations.sqlite3")
    try:
        assert copy.execute("SELECT title FROM conversations").fetchall() == [("Trip plans",)]
    finally:
        copy.close()
    assert "theme: dark" in (backup / "settings.yaml").read_text(encoding="utf-8")
    states = [c.state for c in seen]
    assert states.index(UpdateState.DOWNLOADING) < states.index(UpdateState.BACKING_UP) \
        < states.index(UpdateState.INSTALLING) < states.index(UpdateState.LAUNCHED)
    progress = [c.done for c in seen if c.state is UpdateState.DOWNLOADING and c.done]
    assert progress == sorted(progress) and progress[-1] == len(release.installer)


async def test_a_corrupt_download_is_deleted_and_nothing_runs(rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.corrupt = True
    service = rig.service()
    assert await service.check() is not None
    with pytest.raises(UpdateError) as caught:
        await service.install()
    assert caught.value.reason == "checksum"
    assert service.state is UpdateState.FAILED and "checksum" in service.message
    _untouched(rig)


async def test_a_bad_signature_is_refused_before_any_download(rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.bad_signature = True
    service = rig.service()
    assert await service.check() is None
    assert service.state is UpdateState.FAILED and service.error is not None
    assert service.error.reason == "signature" and "signature" in service.message
    assert rig.feed.installer_requests() == []
    with pytest.raises(UpdateError):
        await service.install()
    _untouched(rig)


async def test_a_feed_that_lies_about_the_version_is_refused(rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.lie_version = "9.0.0"  # the outer version, not the signed one
    service = rig.service()
    assert await service.check() is None
    assert service.error is not None and service.error.reason == "version"
    assert "9.0.0" in service.message and "0.2.0" in service.message
    assert rig.feed.installer_requests() == []
    _untouched(rig)


async def test_the_network_dropping_mid_download_is_resumed_by_range(rig: Rig) -> None:
    release = rig.offer("0.2.0")
    rig.feed.drop_next(100_000)
    service = rig.service()
    assert await service.check() is not None
    await service.install()
    ranges = rig.feed.installer_requests()
    assert ranges[0] is None and len(ranges) == 2
    assert ranges[1] is not None and ranges[1].startswith("bytes=") and ranges[1] != "bytes=0-"
    resumed_at = int(ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= 100_000
    # Only the missing bytes came again, and the file is whole.
    assert rig.feed.bytes_served == 100_000 + len(release.installer) - resumed_at
    assert (rig.data / "updates" / "0.2.0" / release.name).read_bytes() == release.installer
    assert rig.installer_args()[-1] == "/S"


async def test_an_idle_server_is_given_up_on_after_a_few_tries(rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.chunk_pause_s = 2.0  # 16 kB, then silence longer than the idle deadline
    service = rig.service(idle_timeout_s=0.2)
    assert await service.check() is not None
    with pytest.raises(UpdateError) as caught:
        await service.install()
    assert caught.value.reason == "network" and "tries" in service.message
    assert len(rig.feed.installer_requests()) > 1  # resumed before giving up
    _untouched(rig)


async def test_more_bytes_than_the_signed_size_stop_the_download(rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.signed_size = 100_000  # the server then sends 300 kB
    service = rig.service()
    assert await service.check() is not None
    with pytest.raises(UpdateError) as caught:
        await service.install()
    assert caught.value.reason == "too_large"
    _untouched(rig)


@pytest.mark.parametrize(("body", "words"), [
    (b"{" + b" " * (300 << 10) + b"}", "larger than a feed"),
    (b'{"version": 2, "release_url": "x"}', "not valid"),
    (b"<html>GitHub is down</html>", "not valid"),
])
async def test_a_feed_that_is_not_a_feed_is_refused_with_one_sentence(rig: Rig, body: bytes,
                                                                      words: str) -> None:
    rig.feed.feed_override = body
    service = rig.service()
    assert await service.check() is None
    assert service.state is UpdateState.FAILED and words in service.message
    assert service.error is not None and service.error.reason == "feed"


async def test_an_unreachable_feed_is_said_plainly(rig: Rig) -> None:
    from tests.servers.base import free_port

    await rig.settings.update(updates={"check": True, "feed_url": f"http://127.0.0.1:{free_port()}/latest.json"})
    service = rig.service()
    assert await service.check() is None
    assert service.error is not None and service.error.reason == "network"
    assert "could not be reached" in service.message


async def test_a_backup_that_fails_stops_the_update(rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.db_path.write_bytes(b"not a database, " * 512)  # SQLite refuses to copy it
    service = rig.service()
    assert await service.check() is not None
    with pytest.raises(UpdateError) as caught:
        await service.install()
    assert caught.value.reason == "backup" and "not installed" in service.message
    _untouched(rig)


async def test_an_installer_that_cannot_start_leaves_everything_as_it_was(rig: Rig) -> None:
    from victor_gui.services.updates import UpdateService

    rig.offer("0.2.0")
    service = UpdateService(rig.client, rig.settings, rig.data, db_path=rig.db_path, current_version="0.1.0",
                            public_key=rig.key.public_pem, launcher=[str(rig.root / "no-such-program")])
    assert await service.check() is not None
    with pytest.raises(UpdateError) as caught:
        await service.install()
    assert caught.value.reason == "launch" and "could not be started" in service.message
    _untouched(rig)


async def test_a_downgrade_is_refused(rig: Rig) -> None:
    rig.offer("0.1.0")
    service = rig.service(current="0.2.0")
    assert await service.check() is None
    assert service.state is UpdateState.UP_TO_DATE and "older" in service.message
    with pytest.raises(UpdateError):
        await service.install()
    assert rig.feed.installer_requests() == []
    _untouched(rig)


async def test_the_same_version_is_up_to_date(rig: Rig) -> None:
    rig.offer("0.2.0")
    service = rig.service(current="0.2.0")
    assert await service.check() is None
    assert service.state is UpdateState.UP_TO_DATE and "up to date" in service.message


async def test_a_build_whose_version_cannot_be_compared_is_offered_nothing(rig: Rig) -> None:
    rig.offer("0.2.0")
    service = rig.service(current="0.1.0+dirty")
    assert await service.check() is None
    assert service.error is not None and service.error.reason == "version"
    assert "0.1.0+dirty" in service.message


async def test_checking_disabled_makes_no_request(tmp_path: Path) -> None:
    rig = await make_rig(tmp_path, check=False)
    try:
        rig.offer("0.2.0")
        service = rig.service()
        assert await service.check_if_due() is None
        assert service.state is UpdateState.DISABLED
        assert rig.feed.requests == [] and service.requests == 0
    finally:
        await close_rig(rig)


async def test_the_automatic_check_runs_at_most_once_a_day_and_remembers_it(rig: Rig) -> None:
    rig.offer("0.2.0")
    now = [1_000_000.0]
    service = rig.service(clock=lambda: now[0])
    assert await service.check_if_due() is not None
    assert rig.feed.feed_requests() == 1
    # A new start the same day (a new service reads the data folder): no request.
    later = rig.service(clock=lambda: now[0] + 3600)
    assert await later.check_if_due() is None and rig.feed.feed_requests() == 1
    now[0] += CHECK_INTERVAL_S + 1
    assert await rig.service(clock=lambda: now[0]).check_if_due() is not None
    assert rig.feed.feed_requests() == 2


async def test_installers_of_the_running_version_or_older_are_swept(rig: Rig) -> None:
    rig.offer("0.2.0")
    downloads = rig.data / "updates"
    for name in ("0.1.0", "0.2.0", "0.3.0", "notes"):
        (downloads / name).mkdir(parents=True)
        (downloads / name / "Victor-GUI-setup.exe").write_bytes(b"MZ")
    await rig.service(current="0.2.0").check_if_due()
    assert sorted(p.name for p in downloads.iterdir()) == ["0.3.0", "notes"]


async def test_a_skipped_version_is_not_offered_again_automatically(rig: Rig) -> None:
    rig.offer("0.2.0")
    now = [1_000_000.0]
    service = rig.service(clock=lambda: now[0])
    assert await service.check() is not None
    await service.skip()
    now[0] += CHECK_INTERVAL_S + 1
    fresh = rig.service(clock=lambda: now[0])
    assert await fresh.check_if_due() is None and "skipped" in fresh.message
    assert rig.feed.feed_requests() == 2
    assert await fresh.check() is not None  # asked by hand, it is shown
    rig.offer("0.3.0")
    now[0] += CHECK_INTERVAL_S + 1
    newer = await rig.service(clock=lambda: now[0]).check_if_due()
    assert newer is not None and newer.version == "0.3.0"


async def test_an_update_whose_migration_runs_on_the_old_database(tmp_path: Path) -> None:
    """The installed version's database is one schema behind the new version's: the backup keeps
    it as it was, and the new code opening that copy migrates it without losing anything."""
    rig = await make_rig(tmp_path)
    try:
        rig.db_path.unlink()
        make_db(rig.db_path, version=SCHEMA_VERSION - 1, titles=("Old chat", "Another"))
        rig.offer("0.2.0")
        service = rig.service(current="0.1.0")
        assert await service.check() is not None
        await service.install()
        backup = service.last_backup
        assert backup is not None
        copy = sqlite3.connect(backup / "conversations.sqlite3")
        try:
            assert user_version(copy) == SCHEMA_VERSION - 1
        finally:
            copy.close()
        store, _notice = await open_store(backup)
        try:
            titles = sorted(c.title for c in await store.list_conversations())
        finally:
            await store.close()
        assert titles == ["Another", "Old chat"]
        migrated = sqlite3.connect(backup / "conversations.sqlite3")
        try:
            assert user_version(migrated) == SCHEMA_VERSION
        finally:
            migrated.close()
    finally:
        await close_rig(rig)


async def test_cancel_mid_download_removes_the_part_file(rig: Rig) -> None:
    rig.offer("0.2.0")
    service = rig.service()
    assert await service.check() is not None
    started = asyncio.Event()
    service.subscribe(lambda c: started.set() if c.state is UpdateState.DOWNLOADING and c.done else None)
    rig.feed.drop_next(50_000)  # the resume adds a pause we cancel into
    task = asyncio.ensure_future(service.install())
    await asyncio.wait_for(started.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert service.state is UpdateState.AVAILABLE and "cancelled" in service.message
    _untouched(rig)


async def test_a_platform_without_the_installer_only_offers_the_release_page(rig: Rig) -> None:
    rig.offer("0.2.0")
    service = rig.service(installs=False)
    if service.can_install:
        pytest.skip("Windows installs by itself")
    release = await service.check()
    assert release is not None and release.release_url.endswith("/releases/tag/v0.2.0")
    with pytest.raises(UpdateError) as caught:
        await service.install()
    assert caught.value.reason == "launch" and rig.feed.installer_requests() == []


def test_versions_are_ordered_as_pep_440_says() -> None:
    order = ["0.9", "1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1", "1.0.1", "1.10"]
    assert sorted(order, key=version_key) == order
    assert version_key("1.0") == version_key("1.0.0") == version_key("v1.0")
    assert is_newer("0.2.0", "0.1.9") and not is_newer("0.1.0", "0.1.0")
    with pytest.raises(ValueError):
        version_key("1.0; rm -rf")


def test_the_shipped_key_is_an_ed25519_public_key() -> None:
    """The app's own key loads; a signature it did not make is refused (not "cannot check"); and
    the package data ships it (``victor_gui.resources`` of an editable install may point at
    another checkout, so the file is read from this one)."""
    import tomllib

    root = Path(__file__).resolve().parents[2]
    with pytest.raises(UpdateError) as caught:
        verify_signature((root / "resources" / "update_key.pub").read_bytes(), b"manifest", b"\0" * 64)
    assert caught.value.reason == "signature"
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    assert "*.pub" in pyproject["tool"]["setuptools"]["package-data"]["victor_gui.resources"]


def test_without_a_readable_key_nothing_is_trusted() -> None:
    with pytest.raises(UpdateError) as caught:
        verify_signature(b"-----BEGIN PUBLIC KEY-----\nbroken\n-----END PUBLIC KEY-----\n", b"m", b"s")
    assert caught.value.reason == "no_key"


async def test_the_cli_says_what_is_new_and_refuses_what_it_cannot_trust(
        rig: Rig, monkeypatch: pytest.MonkeyPatch) -> None:
    """``victor-gui update`` through its argument parser, against the feed in settings.yaml."""
    import io
    import json

    from victor_gui.__main__ import build_parser
    from victor_gui.cli.update import update_command

    # The settings folder on every OS (Windows reads %LOCALAPPDATA%, never XDG_CONFIG_HOME).
    for name, value in isolated_dirs_env(rig.root / "home", rig.root / "config", rig.data).items():
        monkeypatch.setenv(name, value)
    settings_dir = rig.root / "config" / "victor_gui"
    settings_dir.mkdir(parents=True)
    (rig.root / "config" / "settings.yaml").rename(settings_dir / "settings.yaml")
    rig.offer("0.9.0")

    async def run(*words: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        args = build_parser().parse_args(["update", *words])
        code = await update_command(args, out, err, public_key=rig.key.public_pem, data_dir=rig.data)
        return code, out.getvalue(), err.getvalue()

    code, out, _err = await run()
    assert code == 0 and "0.9.0 is available" in out and "Faster start-up" in out
    assert "/releases/tag/v0.9.0" in out
    code, out, _err = await run("--json")
    answer = json.loads(out)
    assert code == 0 and answer["status"] == "available" and answer["version"] == "0.9.0"
    rig.feed.bad_signature = True
    code, out, err = await run()
    assert code == 1 and out == "" and "signature" in err
    assert rig.feed.installer_requests() == []
