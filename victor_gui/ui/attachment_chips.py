"""The attachments above a chat's input, as chips, and the attachment widgets of the transcript.

* :class:`AttachmentChips` renders an :class:`~victor_gui.services.attachment_draft.AttachmentDraft`
  (the owner of the state): one :class:`AttachmentChip` per item with its name, size, a
  thumbnail for images, the estimated tokens, a progress bar while converting and a remove
  button; an item that failed shows its sentence in the chip (never a dialog).
* :class:`StoredAttachments`: the small chips of a sent message; a click asks the desktop to
  open the store's copy under its own name (``ConversationStore.attachment_file``).
* :class:`SourcesLine`: "Sources" under a reply (file, page/section; the quoted passage in the
  tooltip and on expand).
* :class:`NoImagesBanner`: "this model does not take images" as one sentence with a button per
  model that does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.ui.attachment_icons import ICON_GREY, icon, icon_pixmap
from victor_gui.ui.widgets.flow_layout import FlowLayout
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    from PySide6.QtCore import QUrl

    from victor_gui.services.attachment_draft import AttachmentDraft, DraftEvent, DraftItem
    from victor_gui.services.attachment_types import AttachmentRef

THUMB = 40  # the chip's thumbnail side, pixels
CHIP_TEXT_WIDTH = 260  # the widest a chip's second line gets before it wraps
ERROR_RED = "#c0392b"

# Palette roles, so the chips follow the light and the dark theme alike. An error chip is red
# by its border, tint and icon; its sentence keeps the text colour (red text on the red tint
# read poorly in the dark theme).
CHIP_STYLE = f"""
QFrame#attachmentChip {{ border: 1px solid palette(mid); border-radius: 6px; background: palette(base); }}
QFrame#attachmentChip[state="error"] {{ border: 1px solid {ERROR_RED}; background: rgba(192, 57, 43, 28); }}
QLabel#chipName {{ font-weight: 600; }}
QLabel#chipDetail {{ color: palette(placeholder-text); }}
QLabel#chipError {{ color: palette(text); }}
QLabel#chipIcon {{ font-size: 20px; }}
QToolButton#storedAttachment {{ border: 1px solid palette(mid); border-radius: 4px; padding: 1px 6px; }}
QFrame#noImagesBanner {{ border: 1px solid #d4a017; border-radius: 6px; background: rgba(212, 160, 23, 40); }}
QLabel#sourcesLine {{ color: palette(placeholder-text); }}
"""


def human_size(size: int | None) -> str:
    """``812 B``, ``14 KB``, ``2.4 MB``."""
    if size is None:
        return ""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    if size < 1024 ** 3:
        return f"{size / 1024 / 1024:.1f} MB"
    return f"{size / 1024 ** 3:.1f} GB"


def token_words(tokens: int | None) -> str:
    """``~1,234 tokens`` (an estimate, so the tilde)."""
    return f"~{tokens:,} tokens" if tokens is not None else ""


def _icon_name(kind: str) -> str:
    return "image" if kind == "image" else "document"


class AttachmentChip(QFrame):
    """One waiting attachment: thumbnail or glyph, name, size · tokens, progress, remove."""

    remove_requested = Signal(int)  # the item's id

    def __init__(self, item: DraftItem, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.item_id = item.id
        self.has_thumbnail = False  # the image's own picture is shown (not the generic icon)
        self.setObjectName("attachmentChip")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 4, 4)
        row.setSpacing(6)
        self.icon = QLabel()
        self.icon.setObjectName("chipIcon")
        self.icon.setFixedSize(THUMB, THUMB)
        self.icon.setAlignment(Qt.AlignmentFlag.AlignCenter)
        row.addWidget(self.icon)
        text = QVBoxLayout()
        text.setSpacing(1)
        self.name_label = QLabel()
        self.name_label.setObjectName("chipName")
        self.detail_label = QLabel()
        self.detail_label.setObjectName("chipDetail")
        self.detail_label.setMaximumWidth(CHIP_TEXT_WIDTH)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setFixedHeight(6)
        self.progress.setTextVisible(False)
        self.progress.hide()
        text.addWidget(self.name_label)
        text.addWidget(self.detail_label)
        text.addWidget(self.progress)
        row.addLayout(text)
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setAutoRaise(True)
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.item_id))
        row.addWidget(self.remove_button, 0, Qt.AlignmentFlag.AlignTop)
        self.update_item(item)

    def update_item(self, item: DraftItem) -> None:
        """Show ``item`` as it is now."""
        from victor_gui.services.attachment_types import AttachmentKind

        self.item = item
        name = item.name if len(item.name) <= 28 else item.name[:12] + "…" + item.name[-12:]
        self.name_label.setText(name)
        self.name_label.setToolTip(item.name)
        self.remove_button.setAccessibleName(f"Remove {item.name}")
        self.remove_button.setToolTip(f"Remove {item.name}" + (" (stops converting it)"
                                                              if item.state == "converting" else ""))
        if item.thumbnail and not self.has_thumbnail:
            self.has_thumbnail = True
            pixmap = QPixmap()
            pixmap.loadFromData(item.thumbnail, "PNG")
            self.icon.setPixmap(pixmap.scaled(QSize(THUMB, THUMB), Qt.AspectRatioMode.KeepAspectRatio,
                                              Qt.TransformationMode.SmoothTransformation))
        elif not item.thumbnail:
            name = "alert" if item.state == "error" else _icon_name(item.kind.value)
            self.icon.setPixmap(icon_pixmap(name, 28, ERROR_RED if item.state == "error" else ICON_GREY))
        state = "error" if item.state == "error" else "ok"
        if self.property("state") != state:
            self.setProperty("state", state)
            self.style().unpolish(self)
            self.style().polish(self)
        self.detail_label.setObjectName("chipError" if item.state == "error" else "chipDetail")
        self.detail_label.style().unpolish(self.detail_label)
        self.detail_label.style().polish(self.detail_label)
        # An error sentence wraps inside the chip instead of widening the window (a short
        # figures line does not: a wrapping label's size hint would squeeze it).
        self.detail_label.setWordWrap(item.state == "error")
        self.detail_label.setText(self._detail(item))
        self.detail_label.setToolTip(item.error or "")
        self.progress.setVisible(item.state == "converting")
        if item.progress is not None:
            self.progress.setValue(round(item.progress * 100))
        what = "image" if item.kind is AttachmentKind.IMAGE else "document"
        self.setAccessibleName(f"Attached {what} {item.name}: {self._detail(item)}")
        self.adjustSize()

    @staticmethod
    def _detail(item: DraftItem) -> str:
        if item.state == "error":
            return item.error or "This file cannot be attached."
        size = human_size(item.size)
        if item.state == "adding":
            return "adding…"
        if item.state == "converting":
            percent = f" {round((item.progress or 0) * 100)} %" if item.progress else ""
            return " · ".join(x for x in (size, f"converting{percent}…") if x)
        parts = [size]
        if item.ref is not None and item.ref.pages:
            parts.append(f"{item.ref.pages} pages")
        if item.ref is not None and item.ref.width and item.ref.height:
            parts.append(f"{item.ref.width}×{item.ref.height}")
        parts.append(token_words(item.tokens))
        return " · ".join(x for x in parts if x)


class AttachmentChips(QWidget):
    """The chips above the input, in rows that wrap; hidden while the draft is empty."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("attachmentChips")
        self.setAccessibleName("Attachments")
        self.setStyleSheet(CHIP_STYLE)
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self._row = FlowLayout(self)
        self.chips: dict[int, AttachmentChip] = {}
        self.draft: AttachmentDraft | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.hide()

    def bind(self, draft: AttachmentDraft) -> None:
        """Render ``draft`` from now on (its items now, then each change)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
        self.draft = draft
        self._clear()
        for item in draft.items():
            self._add(item)
        self._unsubscribe = draft.subscribe(self._on_event)

    def detach(self) -> None:
        """Stop following the draft (the pane is closing)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _on_event(self, event: DraftEvent) -> None:
        item = event.item
        if event.kind == "cleared":
            self._clear()
        elif item is None:
            return
        elif event.kind == "added":
            self._add(item)
        elif event.kind == "changed" and item.id in self.chips:
            self.chips[item.id].update_item(item)
        elif event.kind == "removed":
            chip = self.chips.pop(item.id, None)
            if chip is not None:
                self._row.removeWidget(chip)
                chip.deleteLater()
        self.setVisible(bool(self.chips))

    def _add(self, item: DraftItem) -> None:
        chip = AttachmentChip(item)
        chip.remove_requested.connect(self._remove)
        self._row.addWidget(chip)
        self.chips[item.id] = chip
        self.setVisible(True)

    def _remove(self, item_id: int) -> None:
        if self.draft is not None:
            self.draft.remove(item_id)

    def _clear(self) -> None:
        for chip in self.chips.values():
            self._row.removeWidget(chip)
            chip.deleteLater()
        self.chips.clear()
        self.setVisible(False)


def open_path(path: Path) -> QUrl:
    """Ask the desktop to open the attachment at ``path`` (the store's copy under its own name,
    from ``ConversationStore.attachment_file``); returns the URL asked for."""
    from PySide6.QtCore import QUrl  # on a click only: not built before the first paint
    from PySide6.QtGui import QDesktopServices

    url = QUrl.fromLocalFile(str(path))
    QDesktopServices.openUrl(url)
    return url


class StoredAttachments(QWidget):
    """A sent message's attachments as small chips; a click opens the file."""

    open_requested = Signal(object)  # the AttachmentRef

    def __init__(self, refs: Sequence[AttachmentRef], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("storedAttachments")
        self.setStyleSheet(CHIP_STYLE)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 2, 0, 2)
        row.setSpacing(4)
        self.buttons: list[QToolButton] = []
        for ref in refs:
            button = QToolButton()
            button.setObjectName("storedAttachment")
            button.setIcon(icon(_icon_name(ref.kind.value), 16))
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setText(f"{ref.name} · {human_size(ref.size)}")
            button.setToolTip(f"Open {ref.name}")
            button.setAccessibleName(f"Open the attached file {ref.name}")
            button.clicked.connect(lambda _=False, r=ref: self.open_requested.emit(r))
            row.addWidget(button)
            self.buttons.append(button)
        row.addStretch(1)
        self.refs = list(refs)


class SourcesLine(QWidget):
    """"Sources: file · page 3, …" under a reply; each passage in a tooltip, all on expand."""

    def __init__(self, sources: Sequence[dict[str, Any]], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sources")
        self.setStyleSheet(CHIP_STYLE)
        self.sources = [s for s in sources if isinstance(s, dict)]
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 2, 0, 0)
        box.setSpacing(2)
        row = QHBoxLayout()
        row.setSpacing(4)
        title = QLabel("Sources:")
        title.setObjectName("sourcesLine")
        row.addWidget(title)
        self.items: list[QToolButton] = []
        # One button per place: three passages from page 3 are one "page 3" (all quoted).
        places: dict[str, list[dict[str, Any]]] = {}
        for source in self.sources:
            places.setdefault(self.label_of(source), []).append(source)
        for label, group in places.items():
            button = QToolButton()
            button.setObjectName("storedAttachment")
            button.setText(label)
            button.setToolTip("\n\n".join(_quote(s) for s in group))
            button.setAccessibleName(f"Source {label}")
            button.clicked.connect(lambda _=False: self.toggle_passages())
            row.addWidget(button)
            self.items.append(button)
        self.expand_button = QToolButton()
        self.expand_button.setText("Show passages")
        self.expand_button.setAutoRaise(True)
        self.expand_button.setAccessibleName("Show or hide the quoted passages")
        self.expand_button.clicked.connect(self.toggle_passages)
        row.addWidget(self.expand_button)
        row.addStretch(1)
        box.addLayout(row)
        self.passages = WrapLabel("\n\n".join(f"{self.label_of(s)}\n{_quote(s)}" for s in self.sources))
        self.passages.setObjectName("sourcesLine")
        self.passages.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.passages.hide()
        box.addWidget(self.passages)

    @staticmethod
    def label_of(source: dict[str, Any]) -> str:
        """``notes.pdf · page 3``."""
        return " · ".join(str(x) for x in (source.get("name"), source.get("locator")) if x)

    def toggle_passages(self) -> None:
        """Show or hide the quoted passages."""
        shown = self.passages.isHidden()
        self.passages.setVisible(shown)
        self.expand_button.setText("Hide passages" if shown else "Show passages")


def _quote(source: dict[str, Any]) -> str:
    text = " ".join(str(source.get("text") or "").split())
    return f"“{text[:400]}{'…' if len(text) > 400 else ''}”"


class NoImagesBanner(QFrame):
    """Above the input: the model does not take images, and buttons for models that do."""

    chosen = Signal(str)  # a ``provider/model`` label from ``alternatives``

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("noImagesBanner")
        self.setStyleSheet(CHIP_STYLE)
        self.setAccessibleName("This model does not take images")
        box = QVBoxLayout(self)
        box.setContentsMargins(8, 6, 8, 6)
        top = QHBoxLayout()
        self.text_label = WrapLabel()
        self.text_label.setAccessibleName("Why the message was not sent")
        top.addWidget(self.text_label, 1)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setAccessibleName("Dismiss")
        close.clicked.connect(self.hide)
        top.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        box.addLayout(top)
        self._buttons_row = QHBoxLayout()
        self._buttons_row.setSpacing(6)
        box.addLayout(self._buttons_row)
        self.buttons: list[QPushButton] = []
        self.hide()

    def show_refusal(self, sentence: str, alternatives: Sequence[str], names: dict[str, str]) -> None:
        """Say ``sentence``; one button per alternative, labelled with ``names[alt]`` if given."""
        for button in self.buttons:
            self._buttons_row.removeWidget(button)
            button.deleteLater()
        self.buttons = []
        while self._buttons_row.count():
            self._buttons_row.takeAt(0)
        # The refusal's sentence already names the models and what to do; only the kept draft
        # is this view's to say.
        self.text_label.setText(f"{sentence} Your message and attachments are kept.")
        if alternatives:
            self._buttons_row.addWidget(QLabel("Switch to:"))
        for alt in alternatives:
            button = QPushButton(names.get(alt, alt))
            button.setAccessibleName(f"Switch this chat to {names.get(alt, alt)}")
            button.clicked.connect(lambda _=False, a=alt: self._choose(a))
            self._buttons_row.addWidget(button)
            self.buttons.append(button)
        self._buttons_row.addStretch(1)
        self.show()

    def _choose(self, alternative: str) -> None:
        self.hide()
        self.chosen.emit(alternative)
