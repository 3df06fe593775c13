"""The chat pane: provider and model drop-downs, the transcript, the input, Send and Stop.

Streaming never freezes the window: a :class:`~victor_gui.services.generation.Generation`
reads the reply in an asyncio task on the qasync loop and a
:class:`~victor_gui.ui.reply_stream.ReplyStreamer` renders it at frame rate. The drop-downs are a
:class:`~victor_gui.ui.model_picker.ModelPicker` (model lists load asynchronously); every failure
is shown in words from :mod:`victor_gui.ui.error_text`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from victor_gui.ui.model_picker import ModelPicker
from victor_gui.ui.reply_stream import ReplyStreamer, format_stats
from victor_gui.ui.transcript import Transcript

if TYPE_CHECKING:
    # The provider stack (httpx, pydantic) is imported after the first paint, not before:
    # it is most of the start-up time. See victor_gui.ui.app.
    from victor_gui.services.generation import Generation, ReplyState
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.ui.message_view import MessageView

log = logging.getLogger(__name__)

__all__ = ["ChatInput", "ChatPane", "format_stats"]


class ChatInput(QPlainTextEdit):
    """The message editor: Ctrl+Enter sends, Enter makes a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatPane(QWidget):
    """One conversation with one provider/model at a time."""

    models_loaded = Signal(str)  # provider name, after its model list arrived (or failed)
    reply_finished = Signal(str)  # the ReplyStatus value of the reply that just ended

    def __init__(self, pool: ProviderPool | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.history: list[Any] = []  # victor_gui.providers.types.Message
        self.generation: Generation | None = None
        self._view: MessageView | None = None
        self._streamer: ReplyStreamer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._build(pool)

    # -- layout ---------------------------------------------------------------------------------

    def _build(self, pool: ProviderPool | None) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.transcript = Transcript()
        layout.addWidget(self.transcript, 1)

        self.status_label = QLabel("Starting…")
        self.status_label.setObjectName("statusLine")
        self.status_label.setWordWrap(True)
        self.status_label.setAccessibleName("Status")
        layout.addWidget(self.status_label)

        self.picker = ModelPicker(pool)
        self.picker.status.connect(self.status_label.setText)
        self.picker.models_loaded.connect(self.models_loaded)
        # The drop-downs stay reachable under their old names (tests, screenshots, main window).
        self.provider_combo = self.picker.provider_combo
        self.model_combo = self.picker.model_combo
        self.refresh_button = self.picker.refresh_button
        layout.addWidget(self.picker)

        row = QHBoxLayout()
        self.input = ChatInput()
        self.input.setAccessibleName("Message")
        self.input.setAccessibleDescription("Ctrl+Enter sends, Esc stops the reply")
        self.input.setPlaceholderText("Message  (Ctrl+Enter to send, Esc to stop)")
        self.input.setFixedHeight(72)
        self.input.setTabChangesFocus(True)  # Tab moves on to Send; it is not typed
        self.input.submitted.connect(self.send)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send message")
        self.send_button.setToolTip("Send (Ctrl+Enter)")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the reply")
        self.stop_button.setToolTip("Stop (Esc)")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addWidget(self.input, 1)
        row.addLayout(buttons)
        layout.addLayout(row)
        # Tab order: provider → model → message → Send → Stop (reload is F5).
        self.setTabOrder(self.model_combo, self.input)
        self.setTabOrder(self.input, self.send_button)
        self.setTabOrder(self.send_button, self.stop_button)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.picker.install_shortcuts(self)

    @property
    def pool(self) -> ProviderPool | None:
        return self.picker.pool

    @pool.setter
    def pool(self, pool: ProviderPool | None) -> None:
        self.picker.pool = pool

    # -- tasks ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- providers and models ---------------------------------------------------------------------

    def reload_providers(self) -> None:
        """Fill the provider drop-down (local servers first; cloud ones without a key say so)."""
        self.picker.reload_providers()

    @property
    def _choices(self) -> list[ProviderChoice]:
        return self.picker.choices

    def current_choice(self) -> ProviderChoice | None:
        return self.picker.current_choice()

    def select_provider(self, name: str) -> None:
        self.picker.select_provider(name)

    def start(self) -> asyncio.Task[None]:
        """Fill the provider drop-down, probe the local servers and pick the first that answers.

        Called once after the first paint (with ``pool`` holding the shared HTTP client)."""
        from victor_gui.services.provider_choices import ProviderPool

        if self.pool is None:
            self.pool = ProviderPool()
        self.reload_providers()
        return self._spawn(self._probe())

    async def _probe(self) -> None:
        from victor_gui.services.provider_choices import probe_local
        from victor_gui.ui.error_text import NO_LOCAL_SERVER

        assert self.pool is not None
        self.status_label.setText("Looking for local servers…")
        results = await probe_local(self.pool, self._choices)
        answered = [name for name, r in results.items() if isinstance(r, list)]
        for name in answered:
            self.picker.models[name] = results[name]  # type: ignore[assignment]
        if answered:
            self.transcript.set_empty_text(
                "Ask anything. Ctrl+Enter sends, Esc stops, Ctrl+N starts a new chat.")
            self.picker.select_provider(answered[0], load=False)
            await self.picker.load_models(force=False)
            return
        keyed = [c for c in self._choices if not c.is_local and c.has_key]
        hint = f" Providers with a key: {', '.join(c.display_name for c in keyed)}." if keyed else ""
        self.status_label.setText(NO_LOCAL_SERVER + hint)
        self.transcript.set_empty_text(NO_LOCAL_SERVER + hint)
        self.model_combo.clear()
        self.models_loaded.emit("")

    def refresh_models(self, *, force: bool = False) -> asyncio.Task[None]:
        """Reload the model drop-down for the chosen provider in the background."""
        return self.picker.refresh_models(force=force)

    # -- sending and streaming -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.generation is not None and self.generation.running

    def send(self) -> None:
        """Send the input as a user message and stream the reply."""
        from victor_gui.providers.types import Message

        text = self.input.toPlainText().strip()
        if not text or self.running:
            return
        if self.current_choice() is None or not self.model_combo.currentText().strip():
            self.status_label.setText("Choose a provider and a model first.")
            return
        self.input.clear()
        self.history.append(Message(role="user", content=text))
        self.transcript.add_message("user", "You", text)
        self._start_generation()

    def _start_generation(self) -> None:
        from victor_gui.errors import ProviderError
        from victor_gui.services.generation import Generation
        from victor_gui.ui.error_text import describe_error

        choice = self.current_choice()
        model = self.model_combo.currentText().strip()
        if choice is None or not model or self.pool is None:
            return
        try:
            provider = self.pool.get(choice)
        except ProviderError as exc:
            self.status_label.setText(describe_error(exc))
            return
        view = self.transcript.add_message("assistant", f"{choice.display_name} · {model}")
        view.retry_requested.connect(lambda v=view: self._retry(v))
        self._view = view
        self.generation = Generation(provider, self.history, model=model)
        self._streamer = ReplyStreamer(view, self.generation, self, spawn=self._spawn)
        self._streamer.finished.connect(self._finish)
        self.generation.start()
        self._streamer.start()
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)

    def stop(self) -> None:
        """Stop the reply now; what arrived stays."""
        if self.generation is not None:
            self.generation.cancel()

    def _retry(self, view: MessageView) -> None:
        if self.running:
            return
        self.transcript.remove_message(view)
        self._start_generation()

    def _finish(self, state: ReplyState) -> None:
        from victor_gui.services.generation import ReplyStatus

        if state.status is not ReplyStatus.ERROR and (state.content or state.tool_calls):
            self.history.append(state.to_message())
        self.send_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.reply_finished.emit(state.status.value)

    def new_chat(self) -> None:
        """Stop any reply and start an empty conversation."""
        self.stop()
        self.history.clear()
        self.transcript.clear()
        self._view = None
        self.input.setFocus()

    def load_history(self, messages: list[Any], *, provider: str | None = None,
                     model: str | None = None, title: str = "") -> None:
        """Show ``messages`` as this pane's conversation (from a compare pane's "Continue with
        this one"), and choose ``provider``/``model`` for what follows."""
        self.stop()
        self.history = list(messages)
        self.transcript.clear()
        self._view = None
        for message in self.history:
            if message.role == "user":
                self.transcript.add_message("user", "You", message.text)
            elif message.role == "assistant":
                view = self.transcript.add_message("assistant", title or model or "Assistant",
                                                   message.text)
                self._spawn(view.render_markdown_async())
        if provider is not None:
            self.picker.select_provider(provider, load=False)
            self.picker.refresh_models()
        if model:
            self.picker.select_model(model)
        self.input.setFocus()

    async def aclose(self) -> None:
        """Stop the reply and wait for background work to end (at shutdown)."""
        self.stop()
        await self.picker.aclose()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
