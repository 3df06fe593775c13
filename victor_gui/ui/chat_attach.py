# mypy: disable-error-code="attr-defined,no-any-return,arg-type"
"""The part of the chat pane that attaches files: the paper-clip button and its file dialog,
files dropped on the pane, images and file URLs pasted into the input, the chips above the
input, the attachments of sent messages (a click opens the file), the "Sources" line under a
reply, and the "this model does not take images" message with the models that do.

A mixin of :class:`~victor_gui.ui.chat_pane.ChatPane` (same object), like
:mod:`~victor_gui.ui.chat_reply`. The attachments' state is the pane's
:class:`~victor_gui.services.attachment_draft.AttachmentDraft`; this part renders it and
forwards what the person does.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize
from PySide6.QtWidgets import QBoxLayout, QToolButton, QVBoxLayout

from victor_gui.ui.icons import set_icon

if TYPE_CHECKING:
    # Used after the first paint only (a drop, a paste, the file dialog): imported where used,
    # since each Qt class with enums built before the window shows costs its first paint.
    import asyncio

    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent, QImage

    from victor_gui.errors import ModelTakesNoImagesError
    from victor_gui.services.attachment_draft import AttachmentDraft, DraftItem
    from victor_gui.services.attachment_types import AttachmentRef
    from victor_gui.ui.attachment_chips import AttachmentChips, NoImagesBanner
    from victor_gui.ui.message_view import MessageView

FILE_FILTER = ("Images and documents (*.png *.jpg *.jpeg *.webp *.gif *.heic *.pdf *.docx *.pptx *.xlsx "
               "*.csv *.html *.htm *.md *.txt *.py *.js *.ts *.json *.yaml *.yml);;All files (*)")


def local_paths(mime: QMimeData) -> list[Path]:
    """The local files a drop or a paste carries (a file manager's copy gives file URLs)."""
    return [Path(url.toLocalFile()) for url in mime.urls() if url.isLocalFile()] if mime.hasUrls() else []


def png_bytes(image: QImage) -> bytes:
    """A clipboard image encoded as PNG."""
    from PySide6.QtCore import QBuffer, QIODevice

    # A QBuffer that owns its bytes: one wrapping a Python-made QByteArray crashed PySide6 6.x.
    buffer = QBuffer()
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    image.save(buffer, "PNG")  # type: ignore[call-overload]  # the stubs want bytes; str is what works
    buffer.close()
    return bytes(buffer.data().data())


def message_insert(view: MessageView, widget: Any, *, after_body: bool) -> None:
    """Place ``widget`` in a message view: after the header (a user's attachments) or after
    the body (a reply's sources), without changing MessageView itself."""
    layout = view.layout()
    if not isinstance(layout, QBoxLayout):
        return
    index = layout.indexOf(view.stats_slot) if after_body else 1
    layout.insertWidget(index if index >= 0 else layout.count(), widget)


class AttachMixin:
    """Attaching files in the chat pane; see the module doc. Mixed into ChatPane, whose widgets
    and methods it uses (mypy is told not to look for them here: see the file's first line)."""

    _draft: AttachmentDraft | None = None
    _pending_model: str | None = None
    _no_images: NoImagesBanner | None = None
    _chips: AttachmentChips | None = None

    def _build_attach(self, layout: QBoxLayout) -> QToolButton:
        """The place of the banner and the chips (in ``layout``, above the input row; both are
        made when first needed: nothing shows there until a file is attached, and their module
        and widgets cost the first paint) and the paper-clip button (returned, for the input row)."""
        self._attach_slot = QVBoxLayout()
        self._attach_slot.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self._attach_slot)
        button = QToolButton()
        button.setIconSize(QSize(20, 20))
        set_icon(button, "paperclip", "muted")
        button.setAutoRaise(True)
        button.setObjectName("attachButton")
        button.setToolTip("Attach images or documents (or drop them here, or paste)")
        button.setAccessibleName("Attach files")
        button.clicked.connect(self.choose_files)
        self.attach_button = button
        self.setAcceptDrops(True)
        return button

    @property
    def no_images(self) -> NoImagesBanner:
        """"This model does not take images", with a button per model that does (made on first use)."""
        if self._no_images is None:
            from victor_gui.ui.attachment_chips import NoImagesBanner

            self._no_images = NoImagesBanner()
            self._no_images.chosen.connect(self._switch_to)
            self._attach_slot.insertWidget(0, self._no_images)  # above the chips
        return self._no_images

    @property
    def chips(self) -> AttachmentChips:
        """The attachments waiting above the input (made on first use)."""
        if self._chips is None:
            from victor_gui.ui.attachment_chips import AttachmentChips

            self._chips = AttachmentChips()
            self._attach_slot.addWidget(self._chips)
        return self._chips

    def hide_no_images(self) -> None:
        """Take the "no images" banner away (if it was ever shown)."""
        if self._no_images is not None:
            self._no_images.hide()

    # -- the draft ----------------------------------------------------------------------------------

    @property
    def draft(self) -> AttachmentDraft:
        """The attachments waiting above the input (made on first use; it follows a store opened
        or moved later, and the chosen provider's protocol for image estimates)."""
        if self._draft is None:
            from victor_gui.services.attachment_draft import AttachmentDraft

            self._draft = AttachmentDraft(self.store)
            self.chips.bind(self._draft)
        elif self.store is not None and self._draft.store is not self.store:
            self._draft.store = self.store
        self._draft.set_protocol(self._protocol())
        return self._draft

    def _protocol(self) -> str:
        """The wire protocol of the chosen provider (the key of the image estimates)."""
        from victor_gui.services.image_limits import protocol_of

        choice = self.current_choice()
        if choice is None:
            return protocol_of("")
        return protocol_of(choice.target.kind if choice.target is not None else choice.name)

    def attach_paths(self, paths: Sequence[Path | str]) -> list[asyncio.Task[Any]]:
        """Attach files (each converts in the background; its chip shows how it goes)."""
        self.hide_no_images()
        draft = self.draft
        return [self.tasks.spawn(draft.add_path(Path(p))) for p in paths]

    def attach_image(self, image: QImage, name: str | None = None) -> asyncio.Task[Any] | None:
        """Attach a pasted image (encoded as PNG)."""
        if image.isNull():
            return None
        self.hide_no_images()
        raw = png_bytes(image)
        name = name or time.strftime("Pasted image %H-%M-%S.png")
        return self.tasks.spawn(self.draft.add_bytes(name, raw, "image/png"))

    def attach_mime(self, mime: QMimeData) -> bool:
        """Attach what a drop or a paste carries: local files, else an image. False: nothing to
        attach (the input pastes the text as usual)."""
        paths = local_paths(mime)
        if paths:
            self.attach_paths(paths)
            return True
        if mime.hasImage():
            from PySide6.QtGui import QImage

            image = mime.imageData()
            if isinstance(image, QImage):
                self.attach_image(image)
                return True
        return False

    def choose_files(self) -> None:
        """The paper-clip button: pick files in the platform's dialog."""
        from PySide6.QtWidgets import QFileDialog

        paths, _filter = QFileDialog.getOpenFileNames(self, "Attach files", "", FILE_FILTER)
        if paths:
            self.attach_paths(paths)

    def _take_attachments(self) -> list[DraftItem] | None:
        """The ready items for a send (the chips clear); None: one is still being added."""
        if self._draft is None:
            return []
        converting = [i.name for i in self._draft.items() if i.state in ("adding", "converting")]
        if converting:
            self.status_label.setText(f"{converting[0]} is still being read; send when its chip is ready.")
            return None
        self.hide_no_images()
        return self._draft.take()

    def _restore_attachments(self, items: Sequence[DraftItem]) -> None:
        if items:
            self.draft.restore(items)

    # -- drag and drop ------------------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if local_paths(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if local_paths(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        if self.attach_mime(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    # -- the transcript -----------------------------------------------------------------------------

    def _show_message_attachments(self, view: MessageView, refs: Sequence[AttachmentRef]) -> None:
        """A sent message's attachments as chips that open the file."""
        if not refs:
            return
        from victor_gui.ui.attachment_chips import StoredAttachments

        chips = StoredAttachments(refs)
        chips.open_requested.connect(self.open_attachment)
        view.attachments = chips
        message_insert(view, chips, after_body=False)

    def _show_stored_attachments(self, view: MessageView, refs: Sequence[AttachmentRef]) -> None:
        """A stored user message's attachments (``StoredMessage.attachments``) as chips."""
        self._show_message_attachments(view, refs)

    def open_attachment(self, ref: AttachmentRef) -> asyncio.Task[Any] | None:
        """Open an attached file with the desktop's program (the store's copy under its name)."""
        if self.store is None:
            return None
        return self.tasks.spawn(self._open_attachment(self.store, ref))

    async def _open_attachment(self, store: Any, ref: AttachmentRef) -> None:
        from victor_gui.errors import StorageError
        from victor_gui.ui.attachment_chips import open_path

        try:
            open_path(await store.attachment_file(ref))
        except (StorageError, OSError) as exc:
            self.status_label.setText(f"{ref.name} cannot be opened: {exc}")

    def _show_sources(self, view: MessageView, meta: dict[str, Any] | None) -> None:
        """The reply's ``meta["sources"]`` as a "Sources" line under it."""
        sources = (meta or {}).get("sources")
        if not isinstance(sources, list) or not sources or getattr(view, "sources", None) is not None:
            return
        from victor_gui.ui.attachment_chips import SourcesLine

        line = SourcesLine(sources)
        view.sources = line
        message_insert(view, line, after_body=True)

    # -- a model that takes no images ---------------------------------------------------------------

    def _refused_images(self, exc: ModelTakesNoImagesError, text: str, items: Sequence[DraftItem],
                        view: MessageView, user: MessageView | None) -> None:
        """Nothing was sent: the message and the chips come back, and the banner offers the
        models that take images."""
        self._abandon_reply(view, user)
        self._restore_attachments(items)
        if not self.input.toPlainText().strip():
            self.input.setPlainText(text)
        alternatives = list(exc.alternatives)
        choice = self.current_choice()
        names = {}
        for alt in alternatives:
            found = self._split_label(alt)
            if found is None:
                names[alt] = alt
                continue
            name, model = found
            shown = next((c.display_name for c in self.picker.choices if c.name == name), name)
            names[alt] = model if choice is not None and name == choice.name else f"{shown} · {model}"
        self.no_images.show_refusal(exc.message, alternatives, names)

    async def _forget_empty_chat(self) -> None:
        """A new chat whose first message was refused has no message: its row goes (it was
        made when the session was bound), so the list does not show an empty chat."""
        cid, store = self.conversation_id, self.store
        if cid is None or store is None or await store.get_messages(cid, limit=1):
            return
        await store.delete_conversation(cid)
        self.controller.leave()
        self.conversation_changed.emit(cid)

    def _switch_to(self, label: str) -> None:
        """Switch the chat to ``label`` (``provider/model``, the provider by its shown name) the
        way the drop-downs do; the draft stays."""
        found = self._split_label(label)
        if found is None:
            self.status_label.setText(f"{label} is no longer in the provider list.")
            return
        name, model = found
        choice = self.current_choice()
        if choice is not None and choice.name == name:
            self.model_combo.setEditText(model)
            self._model_activated(self.model_combo.findText(model))
        else:
            self._pending_model = model
            self.select_provider(name)
            self._provider_activated(self.provider_combo.currentIndex())
        self.status_label.setText(f"Switched to {model}; press Send to send your message.")
        self.send_button.setFocus()

    def _split_label(self, label: str) -> tuple[str, str] | None:
        """(choice name, model) of a ``provider/model`` label; the longest provider name that
        matches wins (a model id may hold a ``/`` too)."""
        best: tuple[str, str] | None = None
        size = -1
        for choice in self.picker.choices:
            for shown in (choice.display_name, choice.name):
                if label.startswith(shown + "/") and len(shown) > size:
                    best, size = (choice.name, label[len(shown) + 1:]), len(shown)
        return best
