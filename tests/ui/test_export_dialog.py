"""Export from the window suggests a file (issue 14: the dialog opened in the working folder
with no name)."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QStandardPaths

from tests.ui.conftest import wait_until
from victor_gui.storage.export import export_file_name


def test_file_names_are_safe_on_every_os() -> None:
    assert export_file_name("Zoo trip", "md") == "Zoo trip.md"
    assert export_file_name('a/b\\c:d*e?"f<g>h|', "json") == "a b c d e f g h.json"
    assert export_file_name("  ...  ", "md") == "chat.md"
    assert export_file_name("CON", "md") == "CON chat.md"
    assert len(export_file_name("x" * 500, "md")) == 83


async def test_export_suggests_the_title_in_documents(clean_env, window, store, tmp_path,  # type: ignore[no-untyped-def]
                                                      monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no user-dirs.dirs there
    (tmp_path / "Documents").mkdir()
    conv = await store.create_conversation("Trip: Zoo / Day 1")
    await store.add_message(conv.id, "user", "hello")
    window.conversations.refresh()
    await wait_until(lambda: window.conversation_list.count() == 1
                     and window.conversation_list.item(0).data(0x0100) == conv.id)
    dialog = window.conversations.ask_export(conv.id, "md")
    try:
        documents = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation))
        if sys.platform == "win32":
            # Windows' Documents is the shell's known folder, which no variable moves: the
            # profile's own, there in every profile.
            assert documents.is_dir() and documents.name == "Documents"  # noqa: ASYNC240
        else:
            assert documents == tmp_path / "Documents"
        assert Path(dialog.directory().absolutePath()) == documents
        chosen = Path(dialog.selectedFiles()[0])
        assert chosen.name == "Trip Zoo Day 1.md"
    finally:
        dialog.reject()
        dialog.deleteLater()
