"""Side-by-side compare: 2–4 panes, each with its own provider, model and history, one input.

The view renders a Qt-free :class:`~victor_gui.services.compare.CompareSession`, which owns the
histories and the scheduling (one request at a time per local endpoint, cloud in parallel).
Each pane reuses the chat pane's widgets: a :class:`~victor_gui.ui.model_picker.ModelPicker`, a
:class:`~victor_gui.ui.transcript.Transcript` and a
:class:`~victor_gui.ui.reply_stream.ReplyStreamer` per reply. Keys: Ctrl+Enter sends to every
pane, Esc stops them all, Ctrl+\\ adds a pane, Ctrl+K opens the focused pane's model list.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.ui.chat_pane import ChatInput
from victor_gui.ui.icons import set_icon
from victor_gui.ui.model_picker import ModelPicker
from victor_gui.ui.reply_stream import ReplyStreamer, format_stats
from victor_gui.ui.shortcut_keys import SPLIT_KEY
from victor_gui.ui.transcript import Transcript

if TYPE_CHECKING:
    from victor_gui.services.compare import CompareSession, CompareSlot
    from victor_gui.services.generation import ReplyState
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.ui.message_view import MessageView

MAX_PANES = 4  # victor_gui.services.compare.MAX_SLOTS (not imported: keeps httpx off first paint)
def format_cost(cost: float | None) -> str:
    """``$0.0012``, ``free`` for 0, ``cost unknown`` for None."""
    if cost is None:
        return "cost unknown"
    if cost == 0:
        return "free"
    return f"${cost:.4f}" if cost < 1 else f"${cost:.2f}"


class ComparePane(QFrame):
    """One column: pickers and a close button on top, the transcript, then the result line."""

    close_requested = Signal(object)  # this pane
    continue_requested = Signal(object)  # this pane

    def __init__(self, slot: CompareSlot, number: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.slot = slot
        self.setObjectName("comparePane")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setAccessibleName(f"Compare pane {number}")
        self.streamer: ReplyStreamer | None = None
        self.view: MessageView | None = None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        top = QHBoxLayout()
        self.picker = ModelPicker(labels=False, name_suffix=f" for pane {number}", stacked=True)
        top.addWidget(self.picker, 1)
        self.picker.install_shortcuts(self)  # F5 reloads this pane's model list
        self.close_button = QToolButton()
        set_icon(self.close_button, "x", "muted")
        self.close_button.setAutoRaise(True)
        self.close_button.setAccessibleName(f"Close pane {number}")
        self.close_button.setToolTip("Close this pane")
        self.close_button.clicked.connect(lambda: self.close_requested.emit(self))
        top.addWidget(self.close_button)
        layout.addLayout(top)
        self.transcript = Transcript()
        self.transcript.setAccessibleName(f"Conversation in pane {number}")
        self.transcript.set_empty_text("Same prompt, this model.")
        layout.addWidget(self.transcript, 1)
        self.result_label = QLabel("")
        self.result_label.setObjectName("compareResult")
        self.result_label.setWordWrap(True)
        self.result_label.setAccessibleName(f"Result of pane {number}")
        layout.addWidget(self.result_label)
        bottom = QHBoxLayout()
        bottom.addStretch(1)
        self.continue_button = QPushButton("Continue with this one")
        self.continue_button.setAccessibleName(f"Continue with pane {number} as the main chat")
        self.continue_button.setToolTip("Make this pane's conversation the main chat")
        self.continue_button.setEnabled(False)
        self.continue_button.clicked.connect(lambda: self.continue_requested.emit(self))
        bottom.addWidget(self.continue_button)
        layout.addLayout(bottom)

    def title(self) -> str:
        choice = self.picker.current_choice()
        name = choice.display_name if choice is not None else "?"
        return f"{name} · {self.picker.current_model()}"

    def stats_text(self, state: ReplyState) -> str:
        """The reply's stats line; the cost joins once the reply ended (it is priced then)."""
        if not state.status.finished or self.slot.running:
            return format_stats(state)
        return f"{format_stats(state)} · {format_cost(self.slot.cost)}"

    def result_text(self, state: ReplyState) -> str:
        """The pane's bold summary line: the stats without the model (the header names it)."""
        return " · ".join(self.stats_text(state).split(" · ")[1:])


class CompareView(QWidget):
    """The compare screen. ``pool`` is asked for on use (the app builds it after first paint)."""

    continue_with = Signal(object)  # the CompareSlot whose conversation becomes the main chat
    leave_requested = Signal()

    def __init__(self, pool: Callable[[], ProviderPool | None], parent: QWidget | None = None,
                 store: Callable[[], Any] | None = None,
                 attachment_settings: Callable[[], Any] | None = None) -> None:
        super().__init__(parent)
        self._pool = pool
        self._session: CompareSession | None = None
        self._tasks = TaskSet("compare view")  # final Markdown renders, awaited at close
        self.panes: list[ComparePane] = []
        self.choices: list[ProviderChoice] = []
        self.models_cache: dict[str, Any] = {}
        # Model lists the registry already knows (the chat's source), tried before a request.
        self.models_source: Any = None
        self._numbers = 0
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        bar = QHBoxLayout()
        title = QLabel("<b>Compare</b> — one prompt, each pane its own model and history")
        bar.addWidget(title, 1)
        self.add_button = QPushButton("Add pane")
        self.add_button.setAccessibleName("Add a compare pane")
        set_icon(self.add_button, "plus")
        self.add_button.setToolTip(f"Add a pane ({SPLIT_KEY}), up to {MAX_PANES}")
        self.add_button.clicked.connect(self.add_pane)
        self.back_button = QPushButton("Back to chat")
        self.back_button.setAccessibleName("Leave compare and go back to the chat")
        self.back_button.clicked.connect(self.leave_requested)
        bar.addWidget(self.add_button)
        bar.addWidget(self.back_button)
        layout.addLayout(bar)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        layout.addWidget(self.splitter, 1)
        self.status_label = QLabel("")
        self.status_label.setObjectName("statusLine")
        self.status_label.setWordWrap(True)
        self.status_label.setAccessibleName("Compare status")
        layout.addWidget(self.status_label)
        # Issue 13: the same attachments go to every pane (chips above the input, paper clip).
        from victor_gui.ui.compare_attach import CompareAttachments

        self._store = store or (lambda: None)
        self._attachment_settings = attachment_settings or (lambda: None)
        self.attachments = CompareAttachments(self, self._store, self._tasks.spawn)
        layout.addWidget(self.attachments.chips)
        self.setAcceptDrops(True)
        row = QHBoxLayout()
        row.addWidget(self.attachments.button, 0, Qt.AlignmentFlag.AlignTop)
        self.input = ChatInput()
        self.input.attach = self.attachments.attach_mime
        self.input.setAccessibleName("Message to every pane")
        self.input.setAccessibleDescription("Ctrl+Enter sends to every pane, Esc stops them all")
        self.input.setPlaceholderText("Message to every pane  (Ctrl+Enter to send, Esc to stop all)")
        self.input.setFixedHeight(60)
        self.input.setTabChangesFocus(True)
        self.input.submitted.connect(self.send)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send to all")
        self.send_button.setAccessibleName("Send to every pane")
        set_icon(self.send_button, "send")
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop all")
        set_icon(self.stop_button, "stop")
        self.stop_button.setAccessibleName("Stop every reply")
        self.stop_button.setToolTip("Stop (Esc)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop_all)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addWidget(self.input, 1)
        row.addLayout(buttons)
        layout.addLayout(row)
        context = Qt.ShortcutContext.WidgetWithChildrenShortcut
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop_all, context=context)

    @property
    def session(self) -> CompareSession:
        """The compare session, made on first use (its imports are not needed for first paint)."""
        if self._session is None:
            from victor_gui.services.compare import CompareSession

            self._session = CompareSession()
            self._session.add_listener(self._on_slot)
        return self._session

    # -- panes ------------------------------------------------------------------------------------

    def set_choices(self, choices: list[ProviderChoice], models: dict[str, Any]) -> None:
        """The provider list and model cache to share with every pane (the chat pane's)."""
        self.choices = list(choices)
        self.models_cache = models
        for pane in self.panes:
            pane.picker.set_choices(self.choices)
            pane.picker.models = models
            pane.picker.models_source = self.models_source

    def add_pane(self, provider: str | None = None, model: str | None = None) -> ComparePane | None:
        """Add a pane (None at :data:`MAX_PANES`); it starts on ``provider``/``model`` or on
        the previous pane's choice."""
        if len(self.panes) >= MAX_PANES:
            self.status_label.setText(f"At most {MAX_PANES} panes side by side.")
            return None
        slot = self.session.add_slot()
        self._numbers += 1
        pane = ComparePane(slot, self._numbers)
        pane.picker.pool = self._pool()
        pane.picker.models = self.models_cache
        pane.picker.models_source = self.models_source
        pane.picker.set_choices(self.choices)
        pane.picker.status.connect(pane.result_label.setText)
        pane.close_requested.connect(self.close_pane)
        pane.continue_requested.connect(self._continue)
        previous = self.panes[-1] if self.panes else None
        self.panes.append(pane)
        self.splitter.addWidget(pane)
        self.splitter.setSizes([1000] * len(self.panes))
        if provider is None and previous is not None and previous.picker.current_choice():
            provider = previous.picker.current_choice().name  # type: ignore[union-attr]
            model = model or previous.picker.current_model()
        if provider is not None:
            pane.picker.select_provider(provider, load=False)
            task = pane.picker.refresh_models()
            if model:
                chosen: str = model
                task.add_done_callback(lambda _t: pane.picker.select_model(chosen))
        self.add_button.setEnabled(len(self.panes) < MAX_PANES)
        self._fix_tab_order()
        return pane

    def close_pane(self, pane: ComparePane) -> None:
        """Stop and remove ``pane``; closing the last but one leaves compare."""
        if pane not in self.panes:
            return
        self.session.remove_slot(pane.slot)
        pane.picker.cancel()
        self.panes.remove(pane)
        pane.hide()
        pane.setParent(None)
        pane.deleteLater()
        self.add_button.setEnabled(True)
        self._fix_tab_order()
        if len(self.panes) < 2:
            self.leave_requested.emit()

    def _fix_tab_order(self) -> None:
        # Left to right, pane by pane (provider → model → close → continue), then the
        # shared input and its buttons.
        chain: list[QWidget] = [self.add_button, self.back_button]
        for pane in self.panes:
            chain += [pane.picker.provider_combo, pane.picker.model_combo, pane.close_button,
                      pane.continue_button]
        chain += [self.input, self.send_button, self.stop_button]
        for first, second in pairwise(chain):
            QWidget.setTabOrder(first, second)

    def _focused_pane(self) -> ComparePane | None:
        focus = QApplication.focusWidget()
        for pane in self.panes:
            if focus is not None and pane.isAncestorOf(focus):
                return pane
        return self.panes[0] if self.panes else None

    def open_model_list(self) -> None:
        """Ctrl+K (through the main window): the focused pane's model list, else the first's."""
        pane = self._focused_pane()
        if pane is not None:
            pane.picker.open_model_list()

    # -- sending ----------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._session is not None and self._session.running

    def send(self) -> None:
        """Send the input to every pane that has a provider and a model."""
        from victor_gui.errors import ProviderError
        from victor_gui.services.compare import target_for
        from victor_gui.ui.error_text import describe_error

        text = self.input.toPlainText().strip()
        pool = self._pool()
        if not text or self.running or pool is None:
            return
        targets = {}
        for pane in self.panes:
            choice, model = pane.picker.current_choice(), pane.picker.current_model()
            if choice is None or not model:
                pane.result_label.setText("Choose a provider and a model first.")
                continue
            try:
                targets[pane.slot.id] = target_for(pool, choice, model)
            except ProviderError as exc:
                pane.result_label.setText(describe_error(exc))
        items = self.attachments.take() if targets else []
        if items is None:
            self.status_label.setText("An attachment is still being read; send when its chip is ready.")
            return
        if not targets:
            self.status_label.setText("No pane has a provider and a model yet.")
            return
        self.input.clear()
        self.status_label.setText("")
        if items:  # issue 13: checked (a llama-server is asked) and prepared off the loop first
            self.send_button.setEnabled(False)
            self._tasks.spawn(self._send_attached(text, targets, items))
            return
        self._show_turn(text, targets, [])
        self.session.send(text, targets)
        self._update_buttons()

    def _show_turn(self, text: str, targets: dict[int, Any], refs: list[Any]) -> None:
        """The user's turn (with its attachments) and an empty reply in each pane that sends."""
        for pane in self.panes:
            if pane.slot.id not in targets:
                continue
            user = pane.transcript.add_message("user", "You", text)
            if refs:
                self.attachments.show_on(user, refs)
            self._new_reply_view(pane)

    async def _send_attached(self, text: str, targets: dict[int, Any], items: list[Any]) -> None:
        """Leave out the panes whose model takes no images (each says so), then prepare each
        pane's turn with the attachments for its provider (images for its protocol, documents
        whole or retrieved for its window), and send. None left: the message and the chips
        come back."""
        from victor_gui.services.attachment_draft import AttachmentDraft
        from victor_gui.services.compare_attachments import attached_turn, refuses_images

        refs = [i.ref for i in items if i.ref is not None]
        try:
            for pane in self.panes:
                target = targets.get(pane.slot.id)
                if target is not None and await refuses_images(target, refs):
                    del targets[pane.slot.id]
                    pane.result_label.setText(f"{target.model} does not take images; this pane was left out.")
            store = self._store()
            if not targets or store is None:
                self.attachments.draft.restore(items)
                if not self.input.toPlainText().strip():
                    self.input.setPlainText(text)
                self.status_label.setText("No pane's model takes images; choose one that does." if store else
                                          "Your conversations are still opening; try again in a moment.")
                return
            self._show_turn(text, targets, refs)
            docs = AttachmentDraft.documents(items)
            settings = self._attachment_settings()
            # One pane after another: panes sharing an embedding model embed a document once (the
            # second finds the first's vectors in the store) instead of racing to write them.
            by_slot = {slot: await attached_turn(text, refs, docs, target, store, settings=settings)
                       for slot, target in targets.items()}
            for pane in self.panes:
                turn = by_slot.get(pane.slot.id)
                if turn is not None:
                    if turn.sources and pane.view is not None:  # the passages this pane's model gets
                        from victor_gui.ui.attachment_chips import SourcesLine
                        from victor_gui.ui.chat_attach import message_insert

                        message_insert(pane.view, SourcesLine([p.to_json() for p in turn.sources]),
                                       after_body=True)
                    if turn.notes:
                        pane.result_label.setText(" ".join(turn.notes))
            self.session.send(text, targets, {slot: turn.content for slot, turn in by_slot.items()})
        finally:
            self._update_buttons()

    def dragEnterEvent(self, event: Any) -> None:
        from victor_gui.ui.chat_attach import local_paths

        if local_paths(event.mimeData()) or event.mimeData().hasImage():
            event.acceptProposedAction()

    def dropEvent(self, event: Any) -> None:
        if self.attachments.attach_mime(event.mimeData()):
            event.acceptProposedAction()

    def _new_reply_view(self, pane: ComparePane) -> None:
        view = pane.transcript.add_message("assistant", pane.title())
        view.retry_requested.connect(lambda p=pane, v=view: self._retry(p, v))
        pane.view = view
        pane.streamer = None
        pane.result_label.setText("Sending…")
        pane.continue_button.setEnabled(False)

    def _retry(self, pane: ComparePane, view: MessageView) -> None:
        target = pane.slot.target
        if target is None or pane.slot.running:
            return
        pane.transcript.remove_message(view)
        self._new_reply_view(pane)
        if self.session.retry(pane.slot, target) is not None:
            self._update_buttons()

    def stop_all(self) -> None:
        """Stop every pane's reply (Esc); what arrived stays."""
        if self._session is not None:
            self._session.stop_all()

    def _pane_of(self, slot: CompareSlot) -> ComparePane | None:
        return next((p for p in self.panes if p.slot is slot), None)

    def _on_slot(self, slot: CompareSlot, event: str) -> None:
        pane = self._pane_of(slot)
        if pane is None or pane.view is None:
            return
        if event == "queued" and slot.target is not None:
            pane.result_label.setText(f"Waiting: {slot.target.key} answers one request at a time…")
        elif event == "started" and slot.generation is not None:
            pane.result_label.setText("Streaming…")
            pane.streamer = ReplyStreamer(pane.view, slot.generation, pane, stats=pane.stats_text,
                                          spawn=self._tasks.spawn)
            pane.streamer.start()
        elif event == "finished":
            state = slot.state
            if state is None:  # stopped while it waited: nothing was sent
                pane.view.set_stats("stopped before it was sent")
                pane.result_label.setText("Stopped before it was sent.")
            else:
                pane.view.set_stats(pane.stats_text(state))  # again, now with the cost
                pane.result_label.setText(pane.result_text(state))
            pane.continue_button.setEnabled(bool(slot.history))
            self._update_buttons()


    def _update_buttons(self) -> None:
        running = self.running
        self.send_button.setEnabled(not running)
        self.stop_button.setEnabled(running)

    def _continue(self, pane: ComparePane) -> None:
        self.stop_all()
        self.continue_with.emit(pane.slot)

    async def aclose(self) -> None:
        """Stop every reply and wait for the panes' background work (at shutdown)."""
        self.attachments.detach()
        if self._session is not None:
            await self._session.aclose()
        await self._tasks.aclose()
        for pane in self.panes:
            await pane.picker.aclose()
