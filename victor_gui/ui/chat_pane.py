"""The chat pane: provider and model drop-downs, the transcript, the input, Send and Stop.

Streaming never freezes the window: a :class:`~victor_gui.services.generation.Generation`
reads the reply in an asyncio task on the qasync loop, its listener only appends deltas to a
buffer, and a ~16 ms frame timer moves the buffer into the transcript (one cursor insert per
frame, not per token). Model lists load asynchronously; every failure is shown in words from
:mod:`victor_gui.ui.error_text`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from victor_gui.ui.transcript import Transcript

if TYPE_CHECKING:
    # The provider stack (httpx, pydantic) is imported after the first paint, not before:
    # it is most of the start-up time. See victor_gui.ui.app.
    from victor_gui.providers.types import ModelInfo
    from victor_gui.services.generation import Generation, ReplyDelta, ReplyState
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.ui.message_view import MessageView

log = logging.getLogger(__name__)

FRAME_MS = 16
# Live stats (tokens/s while streaming) are refreshed every this many frames (~4 per second).
STATS_EVERY_FRAMES = 15
# While a reply is short it is re-rendered as Markdown every few frames (~10 per second), so
# bold, lists and code look right as they arrive; text in between is appended plain. Past this
# size the re-render would cost more than a frame, so the rest streams plain and the reply is
# rendered once at the end (parsed in a worker thread).
LIVE_MARKDOWN_CHARS = 16_000
LIVE_MARKDOWN_EVERY_FRAMES = 6


class ChatInput(QPlainTextEdit):
    """The message editor: Ctrl+Enter sends, Enter makes a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


def format_stats(state: ReplyState) -> str:
    """``model · TTFT 120 ms · 42.0 tok/s · 256 tokens`` (parts left out when unknown)."""
    from victor_gui.services.generation import ReplyStatus

    bits = [state.model]
    if state.ttft_ms is not None:
        bits.append(f"TTFT {state.ttft_ms:.0f} ms")
    if (tps := state.tokens_per_second) is not None:
        bits.append(f"{tps:.1f} tok/s")
    bits.append(f"{state.completion_tokens} tokens")
    if state.status is ReplyStatus.INTERRUPTED:
        bits.append("stopped")
    return " · ".join(bits)


class ChatPane(QWidget):
    """One conversation with one provider/model at a time."""

    models_loaded = Signal(str)  # provider name, after its model list arrived (or failed)
    reply_finished = Signal(str)  # the ReplyStatus value of the reply that just ended

    def __init__(self, pool: ProviderPool | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pool = pool
        self.history: list[Any] = []  # victor_gui.providers.types.Message
        self.generation: Generation | None = None
        self._view: MessageView | None = None
        self._pending_content: list[str] = []
        self._pending_reasoning: list[str] = []
        self._tools_dirty = False
        self._content_dirty = False
        self._frames = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._models: dict[str, list[ModelInfo]] = {}
        self._choices: list[ProviderChoice] = []
        self._build()
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._flush)

    # -- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.transcript = Transcript()
        layout.addWidget(self.transcript, 1)

        self.status_label = QLabel("Starting…")
        self.status_label.setObjectName("statusLine")
        self.status_label.setWordWrap(True)
        self.status_label.setAccessibleName("Status")
        layout.addWidget(self.status_label)

        pickers = QHBoxLayout()
        self.provider_combo = QComboBox()
        self.provider_combo.setAccessibleName("Provider")
        self.provider_combo.setToolTip("Which server or service answers")
        self.provider_combo.currentIndexChanged.connect(self._provider_changed)
        self.model_combo = QComboBox()
        self.model_combo.setEditable(True)  # a model can be typed when the server cannot list them
        self.model_combo.setAccessibleName("Model")
        self.model_combo.lineEdit().setPlaceholderText("model")
        self.model_combo.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setAccessibleName("Reload the model list")
        self.refresh_button.setToolTip("Reload the model list")
        self.refresh_button.clicked.connect(lambda: self.refresh_models(force=True))
        pickers.addWidget(QLabel("Provider"))
        pickers.addWidget(self.provider_combo, 2)
        pickers.addWidget(QLabel("Model"))
        pickers.addWidget(self.model_combo, 3)
        pickers.addWidget(self.refresh_button)
        layout.addLayout(pickers)

        row = QHBoxLayout()
        self.input = ChatInput()
        self.input.setAccessibleName("Message")
        self.input.setPlaceholderText("Message  (Ctrl+Enter to send, Esc to stop)")
        self.input.setFixedHeight(72)
        self.input.submitted.connect(self.send)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send message")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the reply")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.stop_button)
        row.addWidget(self.input, 1)
        row.addLayout(buttons)
        layout.addLayout(row)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.stop,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)

    # -- tasks ----------------------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.get_event_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- providers and models ---------------------------------------------------------------------

    def reload_providers(self) -> None:
        """Fill the provider drop-down (local servers first; cloud ones without a key say so)."""
        from victor_gui.services.provider_choices import provider_choices

        self._choices = provider_choices()
        self.provider_combo.blockSignals(True)
        self.provider_combo.clear()
        for choice in self._choices:
            self.provider_combo.addItem(choice.label, choice.name)
        self.provider_combo.blockSignals(False)

    def current_choice(self) -> ProviderChoice | None:
        index = self.provider_combo.currentIndex()
        return self._choices[index] if 0 <= index < len(self._choices) else None

    def select_provider(self, name: str) -> None:
        index = self.provider_combo.findData(name)
        if index >= 0:
            self.provider_combo.setCurrentIndex(index)

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
            self._models[name] = results[name]  # type: ignore[assignment]
        if answered:
            self.transcript.set_empty_text(
                "Ask anything. Ctrl+Enter sends, Esc stops, Ctrl+N starts a new chat.")
            self.provider_combo.blockSignals(True)
            self.select_provider(answered[0])
            self.provider_combo.blockSignals(False)
            await self._load_models(force=False)
            return
        keyed = [c for c in self._choices if not c.is_local and c.has_key]
        hint = f" Providers with a key: {', '.join(c.display_name for c in keyed)}." if keyed else ""
        self.status_label.setText(NO_LOCAL_SERVER + hint)
        self.transcript.set_empty_text(NO_LOCAL_SERVER + hint)
        self.model_combo.clear()
        self.models_loaded.emit("")

    def _provider_changed(self, _index: int) -> None:
        self.refresh_models()

    def refresh_models(self, *, force: bool = False) -> asyncio.Task[None]:
        """Reload the model drop-down for the chosen provider in the background."""
        return self._spawn(self._load_models(force=force))

    async def _load_models(self, *, force: bool) -> None:
        from victor_gui.errors import MissingAPIKeyError, ProviderError
        from victor_gui.providers.catalog import find_spec
        from victor_gui.providers.keys import key_hint
        from victor_gui.services.provider_choices import list_models
        from victor_gui.ui.error_text import describe_error

        choice = self.current_choice()
        if choice is None or self.pool is None:
            return
        self.model_combo.clear()
        if not choice.usable:
            spec = find_spec(choice.name)
            self.status_label.setText(describe_error(MissingAPIKeyError(
                key_hint(spec) if spec else "No key", choice.name)))
            self.models_loaded.emit(choice.name)
            return
        models = None if force else self._models.get(choice.name)
        if models is None:
            self.status_label.setText(f"Asking {choice.display_name} for its models…")
            try:
                models = await list_models(self.pool, choice)
            except ProviderError as exc:
                if self.current_choice() is choice:
                    self.status_label.setText(f"{choice.display_name}: {describe_error(exc)}")
                    self.models_loaded.emit(choice.name)
                return
            self._models[choice.name] = models
        if self.current_choice() is not choice:  # the user moved on meanwhile
            return
        for model in models:
            self.model_combo.addItem(model.id)
        where = f" at {choice.base_url}" if choice.base_url and choice.is_local else ""
        self.status_label.setText(f"{choice.display_name}{where}: {len(models)} model(s)."
                                  if models else f"{choice.display_name} has no models yet.")
        self.models_loaded.emit(choice.name)

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
        self._pending_content.clear()
        self._pending_reasoning.clear()
        self._frames = 0
        self._content_dirty = False
        self.generation = Generation(provider, self.history, model=model)
        self.generation.add_listener(self._on_delta)
        self.generation.start()
        self._frame.start()
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

    def _on_delta(self, state: ReplyState, delta: ReplyDelta) -> None:
        # Runs once per chunk: only buffer here; the frame timer renders.
        if delta.content:
            self._pending_content.append(delta.content)
        if delta.reasoning:
            self._pending_reasoning.append(delta.reasoning)
        if delta.tool_calls_changed:
            self._tools_dirty = True
        if delta.status_changed and state.status.finished:
            self._finish(state)

    def _flush(self) -> None:
        view = self._view
        if view is None:
            return
        if self._pending_reasoning:
            view.append_reasoning("".join(self._pending_reasoning))
            self._pending_reasoning.clear()
        if self._pending_content:
            view.append_content("".join(self._pending_content))
            self._pending_content.clear()
            self._content_dirty = True
        if self._tools_dirty and self.generation is not None:
            self._tools_dirty = False
            state = self.generation.state
            if state.tool_calls:
                lines = [f"{c.name}({c.arguments})" for c in state.tool_calls]
            else:
                lines = [f"{p.name}({p.arguments})" for p in state.partial_tool_calls.values()]
            view.set_tool_calls(lines)
        self._frames += 1
        if (self._content_dirty and self._frames % LIVE_MARKDOWN_EVERY_FRAMES == 0
                and view.text_length <= LIVE_MARKDOWN_CHARS):
            self._content_dirty = False
            view.render_markdown()
        if self._frames % STATS_EVERY_FRAMES == 0 and self.generation is not None:
            view.set_stats(format_stats(self.generation.state))

    def _finish(self, state: ReplyState) -> None:
        from victor_gui.services.generation import ReplyStatus
        from victor_gui.ui.error_text import describe_error

        self._flush()
        self._frame.stop()
        view = self._view
        if view is not None:
            self._spawn(view.render_markdown_async())
            view.set_stats(format_stats(state))
            if state.error is not None:
                view.set_error(describe_error(state.error))
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

    async def aclose(self) -> None:
        """Stop the reply and wait for background work to end (at shutdown)."""
        self.stop()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
