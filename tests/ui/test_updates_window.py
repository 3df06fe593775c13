"""The window's update path, driven as a person would: Help → Check for updates…, the notice
(Download and install / Later / Skip this version), the progress dialog with Cancel, and
Settings' update rows; against a signed feed on 127.0.0.1 and a stand-in installer."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.services.update_rig import Rig, close_rig, make_rig
from tests.ui.conftest import wait_until
from victor_gui.services.updates import UpdateState

pytestmark = pytest.mark.usefixtures("keep_running_when_closed")


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    (tmp_path / "rig").mkdir()
    rig = await make_rig(tmp_path / "rig", check=False)  # no automatic check unless a test asks
    yield rig
    await close_rig(rig)


def _help_action(window, text: str):  # type: ignore[no-untyped-def]
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return next(a for a in menu.actions() if a.text() == text)


async def _notice(window, rig: Rig):  # type: ignore[no-untyped-def]
    service = rig.service()
    window.use_settings(rig.settings)
    window.updates.start(service, delay_s=3600)
    _help_action(window, "Check for updates…").trigger()
    await wait_until(lambda: window.updates.notice is not None and window.updates.notice.isVisible())
    return service, window.updates.notice


async def test_no_request_before_first_paint_then_one_after_the_delay(qtbot, pool, store, rig: Rig) -> None:
    from victor_gui.ui.main_window import MainWindow

    await rig.settings.update(updates={"check": True, "feed_url": rig.feed.feed_url})
    rig.offer("0.2.0")
    window = MainWindow(pool, store)
    qtbot.addWidget(window)
    window.updates.start(rig.service(), delay_s=0.3)
    await asyncio.sleep(0.8)
    assert rig.feed.requests == []  # not shown, never painted: nothing asked
    window.show()
    await wait_until(lambda: window._painted)
    assert rig.feed.requests == []  # painted, but the delay has not passed
    await wait_until(lambda: window.updates.notice is not None and window.updates.notice.isVisible())
    assert rig.feed.feed_requests() == 1
    assert "0.2.0 is available" in window.updates.notice.title.text()
    window.updates.notice.close()
    await window.updates.aclose()
    await window.chat.aclose()
    await window.conversations.aclose()
    await window.compare.aclose()


async def test_automatic_check_off_asks_nothing(clean_env, window, rig: Rig) -> None:
    rig.offer("0.2.0")
    window.use_settings(rig.settings)
    service = rig.service()
    window.updates.start(service, delay_s=0.05)
    await wait_until(lambda: service.state is UpdateState.DISABLED)
    await asyncio.sleep(0.2)
    assert rig.feed.requests == [] and window.updates.notice is None
    await window.updates.aclose()


async def test_download_and_install_runs_the_installer_and_closes_the_window(
        clean_env, window, store, rig: Rig) -> None:
    release = rig.offer("0.2.0")
    _service, notice = await _notice(window, rig)
    assert "Faster start-up" in notice.notes.toPlainText()
    assert "0.3 MB" in notice.size_label.text() and notice.install_button.text() == "Download and install"
    await store.create_conversation("Kept through the update")
    notice.install_button.click()
    args = await asyncio.to_thread(rig.installer_args)
    installed = await asyncio.to_thread(Path(args[0]).read_bytes)
    assert args[1] == "/S" and installed == release.installer
    await wait_until(lambda: not window.isVisible())  # the app quits for the installer
    backups = list((store.path.parent / "backups").iterdir())
    assert len(backups) == 1 and backups[0].name.startswith("0.1.0-")
    copy = sqlite3.connect(backups[0] / "conversations.sqlite3")
    try:
        titles = [t for (t,) in copy.execute("SELECT title FROM conversations")]
    finally:
        copy.close()
    assert titles == ["Kept through the update"]
    await window.updates.aclose()


async def test_a_failed_update_says_why_in_one_sentence(clean_env, window, store, rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.corrupt = True
    _service, notice = await _notice(window, rig)
    notice.install_button.click()
    await wait_until(lambda: window.updates.message_box is not None
                     and window.updates.message_box.isVisible())
    text = window.updates.message_box.text()
    assert "checksum" in text and "nothing was installed" in text
    assert window.isVisible() and window.updates.progress is None
    backups = store.path.parent / "backups"
    assert not backups.exists() or not any(backups.iterdir())
    assert not rig.marker.exists()
    await window.updates.aclose()


async def test_cancel_stops_the_download_and_leaves_nothing(clean_env, window, store, rig: Rig) -> None:
    rig.offer("0.2.0")
    rig.feed.chunk_pause_s = 0.1  # ~2 s for the whole installer
    service, notice = await _notice(window, rig)
    notice.install_button.click()
    await wait_until(lambda: window.updates.progress is not None and service.progress[0] > 0)
    assert window.updates.progress.cancel_button.isEnabled()
    window.updates.progress.cancel_button.click()
    await wait_until(lambda: service.state is UpdateState.AVAILABLE)
    assert "cancelled" in service.message and window.updates.progress is None
    downloads = store.path.parent / "updates"
    assert not downloads.exists() or not any(downloads.rglob("*"))
    assert window.isVisible() and not rig.marker.exists()
    await window.updates.aclose()


async def test_skip_this_version_is_remembered_and_later_just_closes(clean_env, window, store,
                                                                     rig: Rig) -> None:
    rig.offer("0.2.0")
    service, notice = await _notice(window, rig)
    notice.later_button.click()
    assert window.updates.notice is None and service.state is UpdateState.IDLE
    _help_action(window, "Check for updates…").trigger()
    await wait_until(lambda: window.updates.notice is not None and window.updates.notice.isVisible())
    window.updates.notice.skip_button.click()
    await wait_until(lambda: service.state is UpdateState.UP_TO_DATE)
    remembered = json.loads((rig.data / "updates.json").read_text(encoding="utf-8"))
    assert remembered["skipped"] == "0.2.0"
    await window.updates.aclose()


async def test_up_to_date_is_said_when_asked(clean_env, window, rig: Rig) -> None:
    rig.offer("0.1.0")
    window.use_settings(rig.settings)
    window.updates.start(rig.service(current="0.1.0"), delay_s=3600)
    _help_action(window, "Check for updates…").trigger()
    await wait_until(lambda: window.updates.message_box is not None
                     and window.updates.message_box.isVisible())
    assert "0.1.0 is up to date" in window.updates.message_box.text()
    assert window.updates.notice is None
    await window.updates.aclose()


async def test_without_an_installer_the_notice_offers_the_release_page(clean_env, window,
                                                                       rig: Rig) -> None:
    rig.offer("0.2.0")
    window.use_settings(rig.settings)
    service = rig.service(installs=False)
    if service.can_install:
        pytest.skip("Windows installs by itself")
    window.updates.start(service, delay_s=3600)
    _help_action(window, "Check for updates…").trigger()
    await wait_until(lambda: window.updates.notice is not None and window.updates.notice.isVisible())
    assert window.updates.notice.install_button.text() == "Open the release page"
    window.updates.notice.close()
    await window.updates.aclose()


async def test_settings_turn_checking_off_and_change_the_feed(clean_env, window, rig: Rig) -> None:
    await rig.settings.update(updates={"check": True, "feed_url": rig.feed.feed_url})
    window.use_settings(rig.settings)
    dialog = window.open_settings()
    rows = dialog.update_rows
    from PySide6.QtWidgets import QPushButton

    save_feed = next(b for b in dialog.findChildren(QPushButton)
                     if b.accessibleName() == "Save the update feed URL")
    await wait_until(lambda: rows.feed_edit.text() == rig.feed.feed_url)
    assert rows.check_box.isChecked()
    rows.check_box.click()
    await wait_until(lambda: not rig.settings.settings.updates.check)
    rows.feed_edit.setText("ftp://nowhere")
    save_feed.click()
    await wait_until(lambda: "could not be saved" in dialog.message.text())
    assert rig.settings.settings.updates.feed_url == rig.feed.feed_url
    rows.feed_edit.setText("https://mirror.example/latest.json")
    save_feed.click()
    await wait_until(lambda: rig.settings.settings.updates.feed_url == "https://mirror.example/latest.json")
    text = (rig.root / "config" / "settings.yaml").read_text(encoding="utf-8")
    assert "check: false" in text and "https://mirror.example/latest.json" in text
    dialog.close()


async def test_the_app_starts_the_update_service_on_its_data_folder(clean_env, window, store,
                                                                    rig: Rig) -> None:
    """App._start_updates (run after the store opened): the service backs up the store in use and
    keeps its files in that folder; the automatic check waits for its delay."""
    from types import SimpleNamespace

    from victor_gui import __version__
    from victor_gui.ui.app import App

    app = SimpleNamespace(window=window, store=store, client=rig.client, settings=rig.settings)
    App._start_updates(app)  # type: ignore[arg-type]
    service = window.updates.service
    assert service is not None and service.db_path == store.path and service.data_dir == store.path.parent
    assert service.current_version == __version__ and rig.feed.requests == []
    await window.updates.aclose()
