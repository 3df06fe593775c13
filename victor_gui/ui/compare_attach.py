"""Attachments in the compare view: the same chips, paper clip, drop and paste as the chat, and
the same files sent to every pane, each prepared for that pane's provider (an image downscaled
to its protocol's limits). A pane whose model takes no images is told so and left out; the
others go on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QMimeData, QSize
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QFileDialog, QToolButton, QWidget

from victor_gui.ui.attachment_chips import AttachmentChips, StoredAttachments
from victor_gui.ui.chat_attach import FILE_FILTER, local_paths, png_bytes
from victor_gui.ui.icons import set_icon

if TYPE_CHECKING:
    from victor_gui.services.attachment_draft import AttachmentDraft, DraftItem
    from victor_gui.services.attachment_types import AttachmentRef
    from victor_gui.storage.store import ConversationStore
    from victor_gui.ui.message_view import MessageView


class CompareAttachments:
    """The compare view's draft, chips and paper-clip button (``store``: the chat's conversation
    store, whose data folder keeps the files; None while it is opening)."""

    def __init__(self, owner: QWidget, store: Callable[[], ConversationStore | None],
                 spawn: Callable[[Any], asyncio.Task[Any]]) -> None:
        self._owner = owner
        self._store = store
        self._spawn = spawn
        self._draft: AttachmentDraft | None = None
        self.chips = AttachmentChips()
        self.button = QToolButton()
        self.button.setIconSize(QSize(20, 20))
        set_icon(self.button, "paperclip", "muted")
        self.button.setAutoRaise(True)
        self.button.setObjectName("attachButton")
        self.button.setAccessibleName("Attach files for every pane")
        self.button.setToolTip("Attach images or documents; every pane gets them")
        self.button.clicked.connect(self.choose_files)

    @property
    def draft(self) -> AttachmentDraft:
        """The attachments waiting above the compare input."""
        store = self._store()
        if self._draft is None:
            from victor_gui.services.attachment_draft import AttachmentDraft

            self._draft = AttachmentDraft(store)
            self.chips.bind(self._draft)
        elif store is not None:
            self._draft.store = store
        return self._draft

    def attach_paths(self, paths: list[Path]) -> list[asyncio.Task[Any]]:
        """Attach files (converted in the background)."""
        draft = self.draft
        return [self._spawn(draft.add_path(p)) for p in paths]

    def attach_mime(self, mime: QMimeData) -> bool:
        """Attach the files or the image a drop or paste carries (False: nothing to attach)."""
        import time

        paths = local_paths(mime)
        if paths:
            self.attach_paths(paths)
            return True
        image = mime.imageData() if mime.hasImage() else None
        if isinstance(image, QImage) and not image.isNull():
            raw = png_bytes(image)
            self._spawn(self.draft.add_bytes(time.strftime("Pasted image %H-%M-%S.png"), raw, "image/png"))
            return True
        return False

    def choose_files(self) -> None:
        """The paper-clip button: pick files in the platform's dialog."""
        paths, _filter = QFileDialog.getOpenFileNames(self._owner, "Attach files", "", FILE_FILTER)
        if paths:
            self.attach_paths([Path(p) for p in paths])

    def take(self) -> list[DraftItem] | None:
        """The ready items for a send (the chips clear); None: one is still being read."""
        if self._draft is None:
            return []
        if self._draft.busy:
            return None
        return self._draft.take()

    def show_on(self, view: MessageView, refs: list[AttachmentRef]) -> None:
        """A sent turn's attachments as chips that open the stored copy."""
        from victor_gui.ui.chat_attach import message_insert

        chips = StoredAttachments(refs)
        store = self._store()
        if store is not None:
            chips.open_requested.connect(lambda ref: self._spawn(_open(store, ref)))
        view.attachments = chips  # type: ignore[attr-defined]
        message_insert(view, chips, after_body=False)

    def detach(self) -> None:
        """Stop following the draft, and stop adding what is still being added (closing)."""
        self.chips.detach()
        if self._draft is not None:
            self._draft.clear()


async def _open(store: ConversationStore, ref: AttachmentRef) -> None:
    from victor_gui.ui.attachment_chips import open_path

    open_path(await store.attachment_file(ref))
