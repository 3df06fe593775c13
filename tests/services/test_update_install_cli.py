"""``victor-gui update --install`` through its argument parser: the whole update path headless,
against the signed feed on 127.0.0.1, with the real settings.yaml and SQLite files, and the
stand-in installer started as the platform would start the real one (the Wine tier runs the
installed app's real installer the same way)."""

from __future__ import annotations

import io
import json
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.services.update_rig import Rig, close_rig, make_db, make_rig
from victor_gui.storage.schema import SCHEMA_VERSION, user_version


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    rig = await make_rig(tmp_path)
    # The command reads the user's settings.yaml: point the config folder at the rig's.
    monkeypatch.setenv("XDG_CONFIG_HOME", str(rig.root / "config"))
    settings_dir = rig.root / "config" / "victor_gui"
    settings_dir.mkdir(parents=True)
    (rig.root / "config" / "settings.yaml").rename(settings_dir / "settings.yaml")
    yield rig
    await close_rig(rig)


async def _run(rig: Rig, *words: str) -> tuple[int, str, str]:
    from victor_gui.__main__ import build_parser
    from victor_gui.cli.update import update_command

    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(["update", *words])
    launcher = [sys.executable, str(rig.script), str(rig.marker)]
    code = await update_command(args, out, err, public_key=rig.key.public_pem, data_dir=rig.data,
                                launcher=launcher)
    return code, out.getvalue(), err.getvalue()


def _nothing_changed(rig: Rig) -> None:
    """No installer ran, and the attempt left no download and no backup behind."""
    assert not rig.marker.exists()
    assert not (rig.data / "updates").exists()
    assert not (rig.data / "backups").exists() or not any((rig.data / "backups").iterdir())


async def test_install_downloads_verifies_backs_up_and_starts_the_silent_installer(rig: Rig) -> None:
    """The old database (one schema behind) is backed up as it is, with the settings, before the
    installer starts; the progress goes to stderr; the exit code is 0."""
    rig.db_path.unlink()
    make_db(rig.db_path, version=SCHEMA_VERSION - 1, titles=("Old chat", "Another"))
    release = rig.offer("0.2.0")
    rig.feed.drop_next(100_000)  # and the network drops once mid-download: resumed by Range

    code, out, err = await _run(rig, "--install")

    installer = rig.data / "updates" / "0.2.0" / release.name
    assert code == 0, err
    assert rig.installer_args() == [str(installer), "/S"]
    assert installer.read_bytes() == release.installer
    assert rig.feed.installer_requests() == [None, "bytes=100000-"]
    assert "Installing 0.2.0" in out and "A backup is in" in out
    assert "Downloading" in err and f"{len(release.installer) / 1e6:.1f} of" in err
    backup = next((rig.data / "backups").iterdir())
    copy = sqlite3.connect(backup / "conversations.sqlite3")
    try:
        assert user_version(copy) == SCHEMA_VERSION - 1
        titles = sorted(t for (t,) in copy.execute("SELECT title FROM conversations"))
        assert titles == ["Another", "Old chat"]
    finally:
        copy.close()
    assert "theme: dark" in (backup / "settings.yaml").read_text(encoding="utf-8")


async def test_install_json_names_the_installer_and_the_backup(rig: Rig) -> None:
    rig.offer("0.2.0")
    code, out, _err = await _run(rig, "--install", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["status"] == "launched" and answer["version"] == "0.2.0"
    assert Path(answer["backup"]).parent == rig.data / "backups"
    assert rig.installer_args() == [answer["installer_path"], "/S"]


@pytest.mark.parametrize(("fault", "reason", "code", "words"), [
    ("corrupt", "checksum", 1, "does not match its signed checksum"),
    ("bad_signature", "signature", 1, "signature does not match"),
    ("lie_version", "version", 1, "the feed was changed"),
    ("down_after_drop", "network", 4, "kept failing"),
])
async def test_install_refuses_every_fault_and_changes_nothing(
        rig: Rig, fault: str, reason: str, code: int, words: str) -> None:
    """A corrupt download, a bad signature, a feed lying about the version, the network going
    down mid-download: a non-zero exit, one sentence on stderr (and in --json), nothing run,
    nothing left behind."""
    release = rig.offer("0.2.0")
    if fault == "lie_version":
        rig.feed.lie_version = "0.3.0"
    elif fault == "down_after_drop":
        rig.feed.down_after_drop = True
        rig.feed.drop_next(len(release.installer) // 2)
    else:
        setattr(rig.feed, fault, True)

    got, out, err = await _run(rig, "--install")
    assert (got, out) == (code, "") and words in err
    _nothing_changed(rig)

    got, out, _err = await _run(rig, "--install", "--json")
    answer = json.loads(out)
    assert got == code and answer["status"] == "failed" and answer["reason"] == reason
    assert words in answer["message"] and "backup" not in answer and "installer_path" not in answer
    _nothing_changed(rig)


async def test_install_with_nothing_newer_installs_nothing(rig: Rig) -> None:
    rig.offer("0.1.0")
    code, out, _err = await _run(rig, "--install")
    assert code == 0 and "is up to date" in out
    assert rig.feed.installer_requests() == [] and not rig.marker.exists()


async def test_without_install_the_check_says_how_to_install(rig: Rig) -> None:
    rig.offer("0.2.0")
    code, out, _err = await _run(rig)
    assert code == 0 and "victor-gui update --install" in out
    assert rig.feed.installer_requests() == []
