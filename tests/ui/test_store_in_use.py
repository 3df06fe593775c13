"""A second window on a data folder another one holds: it says so and quits with a non-zero code."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.ui.conftest import wait_until
from victor_gui.errors import StoreInUseError
from victor_gui.storage import open_store
from victor_gui.ui.app import App


async def test_second_window_on_the_same_folder_is_told_and_exits_non_zero(
    window: Any, tmp_path: Path
) -> None:
    first, _ = await open_store(tmp_path / "shared", instance=True)
    try:
        with pytest.raises(StoreInUseError) as info:
            await open_store(tmp_path / "shared", instance=True)
        message = str(info.value)
        assert "Another copy of Victor GUI" in message and str(tmp_path / "shared") in message
        closed: list[bool] = []
        window.close = lambda: closed.append(True)  # the real close would end the test's loop
        app = SimpleNamespace(window=window, exit_code=0)
        App._refuse_second_instance(app, message)  # type: ignore[arg-type]
        assert app.exit_code != 0
        box = window.dialogs["notice"]
        assert box.isVisible() and message in box.text()
        assert message in window.chat.status_label.text()
        box.accept()  # the user read it: the window closes, run() returns exit_code
        await wait_until(lambda: closed)
    finally:
        await first.close()
    again, _ = await open_store(tmp_path / "shared", instance=True)  # released on close
    await again.close()


async def test_sending_into_a_read_only_store_says_why(sim: Any, window: Any, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from victor_gui.storage import db, opening

    folder = tmp_path / "kept"
    setup, _ = await open_store(folder)
    await setup.add_message((await setup.create_conversation("old")).id, "user", "hello")
    await setup.close()
    with monkeypatch.context() as patch:  # a read-only file (root ignores chmod): kept, viewable
        patch.setattr(opening, "connect", lambda path, **kw: db.connect(path, uri=db.read_only_uri(path)))
        kept, notice = await open_store(folder)
    try:
        assert notice is not None and notice.read_only
        window.set_store(kept)
        chat = window.chat
        await chat.start()
        await wait_until(lambda: chat.model_combo.currentText().strip())
        chat.input.setPlainText("will not be saved")
        chat.send()
        await wait_until(lambda: "cannot be saved" in chat.status_label.text())
        assert "read-only" in chat.status_label.text()
        assert [c.title for c in await kept.list_conversations()] == ["old"]
    finally:
        await kept.close()
