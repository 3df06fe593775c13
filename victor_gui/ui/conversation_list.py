"""The conversation list (left side): stored chats newest first, full-text search, and the
actions on a chat (rename, delete, export).

The list only renders what the store returns; the store owns the data. Search runs a moment
after typing stops (FTS5 through :meth:`ConversationStore.search`) and shows each hit with its
snippet; choosing a hit asks the window to open that chat at that message. Dialogs are opened
with ``open()`` (not ``exec()``) so no nested event loop runs under qasync.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QPoint, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QPainter, QTextDocument
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.ui.icons import add_field_icon, set_icon

if TYPE_CHECKING:
    # Dialog classes are looked up when first used: each PySide class touched at import time
    # costs first paint.
    from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

    from victor_gui.storage.models import Conversation, SearchHit
    from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

ROLE_CONV = Qt.ItemDataRole.UserRole
ROLE_MESSAGE = Qt.ItemDataRole.UserRole + 1
ROLE_SNIPPET_HTML = Qt.ItemDataRole.UserRole + 2  # a hit's title and snippet, match highlighted
SEARCH_DELAY_MS = 200
# The export format of a JSON file with every version of every message (see storage.export).
TREE = "tree"


def hit_html(title: str, snippet: str) -> str:
    """A search hit as rich text: the chat's title, then the snippet with each match
    highlighted (escaped: a message's own markup is shown as typed)."""
    from html import escape

    from victor_gui.storage.search import snippet_parts

    mark = '<span style="background-color: rgba(255, 196, 0, 110); font-weight: 600;">'
    pieces = [f"{mark}{escape(text)}</span>" if match else escape(text)
              for text, match in snippet_parts(snippet)]
    return f"<b>{escape(title)}</b><br>{''.join(pieces)}"


class HitDelegate(QStyledItemDelegate):
    """Paints search hits from their rich text (``ROLE_SNIPPET_HTML``); other rows as usual."""

    def _document(self, option: QStyleOptionViewItem, html: str) -> QTextDocument:
        doc = QTextDocument()
        doc.setDefaultFont(option.font)
        doc.setDocumentMargin(2)
        doc.setHtml(html)
        doc.setTextWidth(max(40, option.rect.width() - 4))
        return doc

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Any) -> None:
        html = index.data(ROLE_SNIPPET_HTML)
        if not html:
            super().paint(painter, option, index)
            return
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""
        style = opt.widget.style() if opt.widget is not None else None
        if style is not None:  # selection and hover background, without the plain text
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, opt.widget)
        doc = self._document(option, html)
        painter.save()
        painter.translate(option.rect.topLeft())
        doc.drawContents(painter)
        painter.restore()

    def sizeHint(self, option: QStyleOptionViewItem, index: Any) -> QSize:
        html = index.data(ROLE_SNIPPET_HTML)
        if not html:
            return super().sizeHint(option, index)
        view = option.widget
        width = view.viewport().width() if isinstance(view, QListWidget) else 240
        opt = QStyleOptionViewItem(option)
        opt.rect.setWidth(width)
        doc = self._document(opt, html)
        return QSize(width, int(doc.size().height()) + 6)


def _when(ts: float) -> str:
    import datetime as dt

    then = dt.datetime.fromtimestamp(ts)
    return then.strftime("%H:%M") if then.date() == dt.date.today() else then.strftime("%d %b %Y")


class ConversationList(QWidget):
    """Stored chats and search. ``open_requested(conversation_id, message_id or -1)``."""

    open_requested = Signal(int, int)
    new_requested = Signal()
    deleted = Signal(int)  # a chat was deleted (the window leaves it if it is on screen)
    status = Signal(str)  # a sentence for the status line (export done, failures)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store: ConversationStore | None = None
        self._tasks = TaskSet("conversation list")
        self._current: int | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 0, 6)
        self.side_layout = layout  # the window adds its version line at the bottom
        top = QHBoxLayout()
        self.new_button = QPushButton("New chat")
        self.new_button.setAccessibleName("New chat")
        self.new_button.setToolTip("New chat (Ctrl+N)")
        set_icon(self.new_button, "new-chat")
        self.new_button.clicked.connect(self.new_requested)
        top.addWidget(self.new_button)
        layout.addLayout(top)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats (Ctrl+F)")
        self.search.setAccessibleName("Search conversations")
        add_field_icon(self.search, "search")
        layout.addWidget(self.search)
        self.list = QListWidget()
        self.list.setAccessibleName("Conversations")
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setStyleSheet("QListWidget::item { padding: 4px 2px; }")
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        self.list.itemActivated.connect(self._activated)
        self.list.itemClicked.connect(self._activated)
        layout.addWidget(self.list, 1)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DELAY_MS)
        self._timer.timeout.connect(self.refresh)
        self.search.textChanged.connect(lambda _t: self._timer.start())
        self._placeholder("Opening your conversations…")
        self._finished = False

    def _finish_setup(self) -> None:
        """What the first paint does not need (the clear button's icon, key actions), done
        when the store arrives, after the first paint."""
        if self._finished:
            return
        self._finished = True
        self.search.setClearButtonEnabled(True)
        keyed = (("Rename…", self._rename_current, "F2"), ("Delete…", self._delete_current, "Del"))
        for text, slot, key in keyed:
            action = QAction(text, self.list)
            action.setShortcut(key)
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(slot)
            self.list.addAction(action)

    # -- data ------------------------------------------------------------------------------------


    def set_store(self, store: ConversationStore | None) -> asyncio.Task[None]:
        self._finish_setup()
        self.store = store
        return self.refresh()

    def set_current(self, conversation_id: int | None) -> None:
        """Mark the chat on screen (selected in the list when shown; during a search its first
        hit). When the list does not hold it, nothing is marked: keeping the old selection
        showed another chat as the one on screen."""
        self._current = conversation_id
        for i in range(self.list.count()):
            item = self.list.item(i)
            if conversation_id is not None and item.data(ROLE_CONV) == conversation_id:
                self.list.setCurrentItem(item)
                return
        self.list.setCurrentRow(-1)
        self.list.clearSelection()

    def refresh(self) -> asyncio.Task[None]:
        """Reload the list (or the search results when there is a query)."""
        return self._tasks.spawn(self._reload())

    async def _reload(self) -> None:
        if self.store is None:
            return
        query = self.search.text().strip()
        try:
            if query:
                self._show_hits(await self.store.search(query, limit=100), query)
            else:
                self._show_conversations(await self.store.list_conversations(limit=500))
        except Exception as exc:  # a store failure is shown, the window keeps working
            log.exception("conversation list failed")
            self._placeholder(f"Could not read the conversations: {exc}")

    def _placeholder(self, text: str) -> None:
        self.list.clear()
        item = QListWidgetItem(text)
        item.setFlags(Qt.ItemFlag.NoItemFlags)
        self.list.addItem(item)

    def _show_conversations(self, convs: list[Conversation]) -> None:
        if not convs:
            self._placeholder("No saved chats yet. Your chats are kept here.")
            return
        self.list.clear()
        for conv in convs:  # the store lists newest (last updated) first
            # (list_conversations does not count messages: a count per row would cost a query)
            item = QListWidgetItem(f"{conv.title or 'Untitled chat'}\n{_when(conv.updated)}")
            item.setData(ROLE_CONV, conv.id)
            item.setToolTip(conv.title)
            self.list.addItem(item)
            if conv.id == self._current:
                self.list.setCurrentItem(item)

    def _show_hits(self, hits: list[SearchHit], query: str) -> None:
        from victor_gui.storage.search import plain_snippet

        if not hits:
            self._placeholder(f"Nothing matches “{query}”.")
            return
        self.list.clear()
        self._use_hit_delegate()
        for hit in hits:
            snippet = hit.snippet.replace("\n", " ")
            title = hit.conversation_title or "Untitled chat"
            item = QListWidgetItem(f"{title}\n{plain_snippet(snippet)}")
            item.setData(ROLE_CONV, hit.conversation_id)
            item.setData(ROLE_MESSAGE, hit.message_id)
            item.setData(ROLE_SNIPPET_HTML, hit_html(title, snippet))
            item.setToolTip(plain_snippet(snippet))
            self.list.addItem(item)
            if hit.conversation_id == self._current and self.list.currentItem() is None:
                self.list.setCurrentItem(item)

    def _use_hit_delegate(self) -> None:
        if not isinstance(self.list.itemDelegate(), HitDelegate):
            self.list.setItemDelegate(HitDelegate(self.list))

    def _activated(self, item: QListWidgetItem) -> None:
        cid = item.data(ROLE_CONV)
        if cid is None:
            return
        mid = item.data(ROLE_MESSAGE)
        self._current = int(cid)
        self.open_requested.emit(int(cid), int(mid) if mid is not None else -1)

    # -- actions ---------------------------------------------------------------------------------

    def _selected(self) -> int | None:
        item = self.list.currentItem()
        cid = item.data(ROLE_CONV) if item is not None else None
        return int(cid) if cid is not None else None

    def _menu(self, pos: QPoint) -> None:
        item = self.list.itemAt(pos)
        if item is None or item.data(ROLE_CONV) is None:
            return
        cid = int(item.data(ROLE_CONV))
        from PySide6.QtWidgets import QMenu

        menu = QMenu(self)
        menu.addAction("Rename…", lambda: self.ask_rename(cid))
        menu.addAction("Export as Markdown…", lambda: self.ask_export(cid, "md"))
        menu.addAction("Export as JSON…", lambda: self.ask_export(cid, "json"))
        # Issue 14: every version of every message (Markdown and JSON write the shown branch).
        menu.addAction("Export as JSON with every version…", lambda: self.ask_export(cid, TREE))
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self.ask_delete(cid))
        menu.popup(self.list.viewport().mapToGlobal(pos))

    def _rename_current(self) -> None:
        if (cid := self._selected()) is not None:
            self.ask_rename(cid)

    def _delete_current(self) -> None:
        if (cid := self._selected()) is not None:
            self.ask_delete(cid)

    def ask_rename(self, cid: int) -> QInputDialog:
        from PySide6.QtWidgets import QInputDialog

        dialog = QInputDialog(self)
        dialog.setWindowTitle("Rename chat")
        dialog.setLabelText("New name:")
        item = self.list.currentItem()
        if item is not None and item.data(ROLE_CONV) == cid:
            dialog.setTextValue(item.toolTip())
        dialog.textValueSelected.connect(lambda text: self.rename(cid, text))
        dialog.open()
        return dialog

    def ask_delete(self, cid: int) -> QMessageBox:
        from PySide6.QtWidgets import QMessageBox

        box = QMessageBox(QMessageBox.Icon.Question, "Delete chat",
                          "Delete this chat and all its messages? This cannot be undone.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, self)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.accepted.connect(lambda: self.delete(cid))
        box.open()
        return box

    def ask_export(self, cid: int, fmt: str) -> QFileDialog:
        from PySide6.QtCore import QStandardPaths
        from PySide6.QtWidgets import QFileDialog

        from victor_gui.storage.export import export_file_name

        dialog = QFileDialog(self, "Export chat")
        dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        dialog.setNameFilter("Markdown (*.md)" if fmt == "md" else "JSON (*.json)")
        suffix = "md" if fmt == "md" else "json"
        dialog.setDefaultSuffix(suffix)
        # Not the process's working folder (wherever the app was started from): the user's
        # Documents, with the chat's title as the name.
        documents = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
        dialog.setDirectory(documents if documents and Path(documents).is_dir() else str(Path.home()))
        dialog.selectFile(export_file_name(self._title_of(cid), suffix))
        dialog.fileSelected.connect(lambda path: self.export(cid, Path(path), fmt))
        dialog.open()
        return dialog

    def _title_of(self, cid: int) -> str:
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(ROLE_CONV) == cid and item.data(ROLE_MESSAGE) is None:
                return item.toolTip() or item.text()
        return ""

    def rename(self, cid: int, title: str) -> asyncio.Task[None]:
        return self._tasks.spawn(self._do(self._rename(cid, title.strip())))

    def delete(self, cid: int) -> asyncio.Task[None]:
        return self._tasks.spawn(self._do(self._delete(cid)))

    def export(self, cid: int, path: Path, fmt: str) -> asyncio.Task[None]:
        return self._tasks.spawn(self._do(self._export(cid, path, fmt)))

    async def _do(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception as exc:  # shown to the user; the list stays usable
            log.exception("conversation action failed")
            self.status.emit(f"That did not work: {exc}")
        await self._reload()

    async def _rename(self, cid: int, title: str) -> None:
        if self.store is not None and title:
            await self.store.update_conversation(cid, title=title)

    async def _delete(self, cid: int) -> None:
        if self.store is not None:
            await self.store.delete_conversation(cid)
            self.deleted.emit(cid)

    async def _export(self, cid: int, path: Path, fmt: str) -> None:
        from victor_gui.storage.export import export_json, export_markdown

        if self.store is None:
            return
        if fmt == "md":
            text = await export_markdown(self.store, [cid])
        else:
            text = await export_json(self.store, [cid], tree=fmt == TREE)
        await asyncio.to_thread(path.write_text, text, encoding="utf-8")
        self.status.emit(f"Exported to {path}")

    async def aclose(self) -> None:
        await self._tasks.aclose()
