"""The chat pane: provider and model drop-downs, the transcript, the input, Send and Stop.

Every message goes through a :class:`~victor_gui.services.chat_session.ChatSession` over the
conversation store, so a chat survives a restart (and a crash: the partial reply stays, marked
interrupted). Streaming never freezes the window: the session streams in an asyncio task on the
qasync loop (each attempt a :class:`~victor_gui.services.generation.Generation`), its events
only append deltas to a buffer, and a ~16 ms frame timer moves the buffer into the transcript
(one cursor insert per frame, not per token). Changing the provider or model of a chat with
history calls :meth:`ChatSession.switch`; its note shows in the transcript. The drop-downs are a
:class:`~victor_gui.ui.model_picker.ModelPicker` (shared with the compare panes; model lists load
asynchronously); every failure is shown in words from :mod:`victor_gui.ui.error_text`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.ui.chat_stored import StoredChatMixin
from victor_gui.ui.model_picker import ModelPicker

# Frame pacing and the per-frame buffer (live Markdown included): shared with the compare panes.
from victor_gui.ui.reply_stream import (
    FRAME_MS,
    FrameBuffer,
)
from victor_gui.ui.transcript import Transcript
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    # The provider stack (httpx, pydantic) is imported after the first paint, not before:
    # it is most of the start-up time. See victor_gui.ui.app.
    from victor_gui.providers.types import ModelInfo
    from victor_gui.services.chat_session import ChatSession, ReplyEvent, ReplyResult
    from victor_gui.services.generation import Generation
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.services.server_registry import ServerRegistry
    from victor_gui.storage.store import ConversationStore
    from victor_gui.ui.message_view import MessageView

log = logging.getLogger(__name__)


class ChatInput(QPlainTextEdit):
    """The message editor: Ctrl+Enter sends, Enter makes a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ChatPane(StoredChatMixin, QWidget):
    """One conversation with one provider/model at a time."""

    models_loaded = Signal(str)  # provider name, after its model list arrived (or failed)
    reply_finished = Signal(str)  # how the reply that just ended ended: complete/interrupted/error
    conversation_changed = Signal(int)  # a chat was created or changed (the list refreshes)

    def __init__(self, pool: ProviderPool | None = None, store: ConversationStore | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._initial_pool = pool  # handed to the picker, which holds it (see ``pool``)
        self.store = store
        self.session: ChatSession | None = None
        self.conversation_id: int | None = None
        # (provider, model) a reopened chat last used: its session starts there, so a different
        # choice in the drop-downs is recorded as a switch.
        self._bound: tuple[str, str] | None = None
        self._first_position: int | None = None  # the earliest message shown
        self._around_hit = False  # showing a page around a search hit, not the latest one
        self._editing: MessageView | None = None
        self._switch_pending = False
        self._active = False
        # The one registry of servers (the app's); None: the catalog and probe_local (tools, tests).
        self.registry: ServerRegistry | None = None
        self._unsubscribe_registry: Any = None
        self._clouds: list[ProviderChoice] = []  # cloud choices (keys read off the loop)
        self._user_chose = False  # the user picked a provider: the registry no longer auto-picks
        self._session_target: str | None = None  # the target the session's provider serves
        self._view: MessageView | None = None
        self._buffer = FrameBuffer()
        self.tasks = TaskSet("chat pane")
        self._build()
        self._frame = QTimer(self)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self._flush)

    # -- layout ---------------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        self.transcript = Transcript()
        self.transcript.earlier_requested.connect(self.load_earlier)
        layout.addWidget(self.transcript, 1)

        # A WrapLabel: a long path or URL in a status wraps instead of widening the window.
        self.status_label = WrapLabel("Starting…")
        self.status_label.setObjectName("statusLine")
        self.status_label.setAccessibleName("Status")
        layout.addWidget(self.status_label)

        self.picker = ModelPicker(self._initial_pool)
        self.picker.status.connect(self.status_label.setText)
        self.picker.models_loaded.connect(self.models_loaded)
        # A provider the user picked switches the chat once its models are listed.
        self.picker.provider_combo.currentIndexChanged.connect(self._provider_changed)
        self.picker.provider_combo.activated.connect(self._provider_activated)
        self.picker.models_listed.connect(self._models_listed)
        self.picker.model_combo.activated.connect(lambda _i: self._choice_changed())
        self.provider_combo = self.picker.provider_combo
        self.model_combo = self.picker.model_combo
        self.refresh_button = self.picker.refresh_button
        layout.addWidget(self.picker)

        row = QHBoxLayout()
        self.input = ChatInput()
        self.input.setAccessibleName("Message")
        self.input.setPlaceholderText("Message  (Ctrl+Enter to send, Esc to stop)")
        self.input.setFixedHeight(72)
        self.input.setTabChangesFocus(True)  # Tab: provider → model → message → Send
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
        self.picker.install_shortcuts(self)  # F5 reloads the model list

    # -- tasks ----------------------------------------------------------------------------------


    # -- providers and models ---------------------------------------------------------------------

    @property
    def pool(self) -> ProviderPool | None:
        """The provider pool (the app sets it after the first paint); the picker holds it."""
        return self.picker.pool

    @pool.setter
    def pool(self, pool: ProviderPool | None) -> None:
        self.picker.pool = pool

    @property
    def _choices(self) -> list[ProviderChoice]:
        return self.picker.choices

    def reload_providers(self, choices: list[ProviderChoice] | None = None) -> None:
        """Fill the provider drop-down (local servers first; cloud ones without a key say so)."""
        self.picker.reload_providers(choices)

    async def reload_providers_keeping_choice(self) -> None:
        """Re-read which providers have keys (the keyring was installed, a key was saved) and
        keep the selection. Keyring reads can be slow (D-Bus), so they run in a thread."""
        from victor_gui.services.provider_choices import provider_choices

        choices = await asyncio.to_thread(provider_choices)
        if self.registry is not None:
            self._clouds = [c for c in choices if not c.is_local]
            self._targets_changed()
            return
        current = self.current_choice()
        name = current.name if current is not None else None
        model = self.model_combo.currentText()
        self.reload_providers(choices)
        if name is not None:
            self.provider_combo.blockSignals(True)
            self.select_provider(name)
            self.provider_combo.blockSignals(False)
            self.model_combo.setEditText(model)

    def current_choice(self) -> ProviderChoice | None:
        return self.picker.current_choice()

    def select_provider(self, name: str) -> None:
        self.picker.select_provider(name)

    def start(self, registry: ServerRegistry | None = None) -> asyncio.Task[None]:
        """Fill the provider drop-down and pick the first local server that answers.

        With ``registry`` (the app): its targets, their states and model lists, followed live;
        nothing is probed here (the registry's health monitor probes each endpoint once per
        cycle). Without: the catalog's providers, and ``probe_local`` asks each local server.
        Called once after the first paint (with ``pool`` holding the shared HTTP client)."""
        from victor_gui.services.provider_choices import ProviderPool

        if self.pool is None:
            self.pool = ProviderPool()
        if registry is not None:
            return self.tasks.spawn(self.use_registry(registry))
        self.reload_providers()
        return self.tasks.spawn(self._probe())

    async def use_registry(self, registry: ServerRegistry) -> None:
        """Offer the registry's chat targets (then clouds with a key, then without), keep their
        status dots live from its change events, and take model lists from its statuses."""
        from victor_gui.services.provider_choices import provider_choices

        self.registry = registry
        self.picker.models_source = self._known_models
        self._unsubscribe_registry = registry.subscribe(self._registry_event)
        self.status_label.setText("Looking for local servers…")
        self._targets_changed()
        choices = await asyncio.to_thread(provider_choices)  # keyring reads may be slow
        self._clouds = [c for c in choices if not c.is_local]
        self._targets_changed()

    def _known_models(self, choice: ProviderChoice) -> list[ModelInfo] | None:
        if self.registry is None or choice.target is None:
            return None
        return self.registry.models_of(choice.target)

    def _registry_event(self, event: str, _payload: Any) -> None:
        if event == "targets":
            self._targets_changed()

    def registry_choices(self) -> list[ProviderChoice]:
        """The registry's targets, then clouds with a key, then clouds without one."""
        from victor_gui.services.provider_choices import target_choice

        assert self.registry is not None
        clouds = [c for c in self._clouds if c.usable] + [c for c in self._clouds if not c.usable]
        return [target_choice(t) for t in self.registry.targets()] + clouds

    def _targets_changed(self) -> None:
        """Re-render the drop-down from the registry (dots, names); auto-pick the first working
        target until the user chose one; say so when nothing local answers."""
        from victor_gui.ui.error_text import NO_LOCAL_SERVER

        if self.registry is None:
            return
        before = self.current_choice()
        choices = self.registry_choices()
        self.picker.set_choices(choices)
        current = self.current_choice()
        working = [c for c in choices if c.target is not None and c.target.working]
        settled = all(c.target.state.value != "unknown" for c in choices if c.target is not None)
        if not self._user_chose and working and (current is None or current.target is None
                                                 or not current.target.working):
            self.provider_combo.blockSignals(True)
            self.select_provider(working[0].name)
            self.provider_combo.blockSignals(False)
            self.transcript.set_empty_text(
                "Ask anything. Ctrl+Enter sends, Esc stops, Ctrl+N starts a new chat.")
            self.picker.refresh_models()
        elif current is not None and before is not None and current.name == before.name \
                and current.target is not None and before.target is not None \
                and current.target.working != before.target.working and not self.model_combo.count():
            self.picker.refresh_models()  # the chosen server came up (or went): its list changed
        elif not working and settled and not self._user_chose:
            keyed = [c for c in self._clouds if c.has_key]
            hint = f" Providers with a key: {', '.join(c.display_name for c in keyed)}." if keyed else ""
            self.status_label.setText(NO_LOCAL_SERVER + hint)
            self.transcript.set_empty_text(NO_LOCAL_SERVER + hint)
            self.models_loaded.emit("")

    def _provider_activated(self, _index: int) -> None:
        self._user_chose = True

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
            self.provider_combo.blockSignals(True)
            self.select_provider(answered[0])
            self.provider_combo.blockSignals(False)
            await self.picker.load_models(force=False)
            return
        keyed = [c for c in self._choices if not c.is_local and c.has_key]
        hint = f" Providers with a key: {', '.join(c.display_name for c in keyed)}." if keyed else ""
        self.status_label.setText(NO_LOCAL_SERVER + hint)
        self.transcript.set_empty_text(NO_LOCAL_SERVER + hint)
        self.model_combo.clear()
        self.models_loaded.emit("")

    def _provider_changed(self, _index: int) -> None:
        self._switch_pending = True  # switch once the new provider's models are listed

    def refresh_models(self, *, force: bool = False) -> asyncio.Task[None]:
        """Reload the model drop-down for the chosen provider in the background."""
        return self.picker.refresh_models(force=force)

    def _models_listed(self, _name: str) -> None:
        if self._switch_pending:
            self._choice_changed()

    # -- the conversation ------------------------------------------------------------------------

    def set_store(self, store: ConversationStore | None) -> None:
        """Use ``store`` from now on (the app opens it after the first paint; a data-folder move
        hands over the reopened one)."""
        self.store = store
        if self.session is not None:
            self.session.store = store  # type: ignore[assignment]

    @property
    def running(self) -> bool:
        """Whether a reply is on its way (from Send until it ends or Stop is pressed)."""
        return self._active

    @property
    def generation(self) -> Generation | None:
        """The reply attempt streaming now (or the last one): live figures for views and benches."""
        return self.session.generation if self.session is not None else None

    async def _ensure_session(self, first_text: str) -> ChatSession | None:
        """The session for the chat on screen, created (with its conversation) on first use and
        switched to the provider/model in the drop-downs when they differ."""
        from victor_gui.errors import ProviderError
        from victor_gui.services.chat_session import ChatSession
        from victor_gui.ui.error_text import describe_error

        choice, model = self.current_choice(), self.model_combo.currentText().strip()
        if self.store is None:
            self.status_label.setText("Your conversations are still opening; try again in a moment.")
            return None
        if choice is None or not model or self.pool is None:
            self.status_label.setText(self._missing_choice_text())
            return None
        try:
            await self.pool.prepare(choice)  # keyring reads off the loop
            provider = self.pool.get(choice)
            label = self._label_for(choice, provider)
            fallback = self.pool.fallback(choice, model)
            if self.conversation_id is None:
                conv = await self.store.create_conversation(_title_from(first_text))
                self.conversation_id = conv.id
                self.conversation_changed.emit(conv.id)
            if self.session is None:
                conv_row = await self.store.get_conversation(self.conversation_id)
                params = self._params(conv_row.params if conv_row else {})
                start = self._choice_named(self._bound[0]) if self._bound else None
                first, first_model = (self.pool.get(start), self._bound[1]) if start and self._bound \
                    else (provider, model)
                first_label = label if first is provider else (start.display_name if start else None)
                self.session = ChatSession(self.store, self.conversation_id, first, first_model,
                                           on_event=self._on_event, label=first_label,
                                           fallback=fallback if first is provider else (), **params)
                self._session_target = (start.name if start else choice.name)
            session = self.session
            if (session.provider is not provider and self._session_target == choice.name
                    and choice.target is not None and session.model == model):
                # Another endpoint of the same target answers first now: no switch to note.
                session.provider, session.endpoint, session.label = provider, provider.base_url, label
            if session.provider is not provider or session.model != model:
                old = session.provider
                await session.switch(provider, model, context_window=session.context_window,
                                     fallback=fallback, label=label)
                self._session_target = choice.name
                if old is not provider:
                    self.pool.forget(old.name)  # the session closed it; the pool builds a new one
            session.fallback = fallback
        except ProviderError as exc:
            self.status_label.setText(describe_error(exc))
            return None
        self._bound = None
        return self.session

    @staticmethod
    def _label_for(choice: ProviderChoice, provider: Any) -> str:
        """What notes call the answering endpoint: the target's name, and for a group which of
        its endpoints ("Desk llama.cpp (http://…:8081)")."""
        target = choice.target
        if target is None or len(target.members) < 2:
            return choice.display_name
        first = target.ordered[0]
        return first.label if first.base_url == getattr(provider, "base_url", None) else choice.display_name

    def _choice_changed(self) -> None:
        """The user picked another provider or model: a chat with history switches now."""
        self._switch_pending = False
        if self.session is not None and not self.running and self.model_combo.currentText().strip():
            self.tasks.spawn(self._ensure_session(""))

    def _missing_choice_text(self) -> str:
        """Why Send cannot go yet: a keyless cloud provider names the variable it reads."""
        choice = self.current_choice()
        if choice is not None and not choice.usable:
            from victor_gui.providers.catalog import find_spec
            from victor_gui.ui.error_text import missing_key_sentence

            spec = find_spec(choice.name)
            return missing_key_sentence(choice.display_name, spec.key_env_vars if spec else ())
        return "Choose a provider and a model first."

    def send(self) -> None:
        """Send the input as a user message (or resend an edited one) and stream the reply."""
        text = self.input.toPlainText().strip()
        if not text or self.running:
            return
        if self.current_choice() is None or not self.model_combo.currentText().strip():
            self.status_label.setText(self._missing_choice_text())
            return
        if self.store is None:
            self.status_label.setText("Your conversations are still opening; try again in a moment.")
            return
        self.input.clear()
        editing, self._editing = self._editing, None
        self.send_button.setText("Send")
        user = None
        if editing is not None:
            self.transcript.remove_after(editing)
            editing.replace_content(text)
        elif not self._around_hit:
            user = self.transcript.add_message("user", "You", text)
            self._hook_user_view(user)
        view = self._begin_reply()
        self.tasks.spawn(self._send(text, editing, user, view))

    async def _send(self, text: str, editing: MessageView | None, user: MessageView | None,
                    view: MessageView) -> None:
        if self._around_hit and self.conversation_id is not None and editing is None:
            # Showing a page around a search hit: answer under the latest message instead.
            await self.open_conversation(self.conversation_id)
            user = self.transcript.add_message("user", "You", text)
            self._hook_user_view(user)
            view = self._begin_reply()
        session = await self._ensure_session(text)
        if session is None:
            self._abandon_reply(view, user)
            self.input.setPlainText(text)
            return
        if session.busy:
            await session.stop()  # a stopped reply still unwinding
        if editing is not None and editing.message_id is not None:
            mid = editing.message_id
            await self._run_reply(lambda: session.edit_and_resend(mid, text), view)
            return
        await self._run_reply(lambda: session.send(text), view, user)

    def regenerate(self) -> None:
        """Answer the last user message again (the replies after it are replaced)."""
        if self.session is None or self.running:
            return
        users = [v for v in self.transcript.messages if v.role == "user"]
        if users:
            self.transcript.remove_after(users[-1])
        session = self.session
        view = self._begin_reply()
        self.tasks.spawn(self._run_reply(session.regenerate, view))

    def _begin_edit(self, view: MessageView) -> None:
        if self.running or view.message_id is None:
            return
        self._editing = view
        self.input.setPlainText(view.text)
        self.send_button.setText("Resend")
        self.status_label.setText("Editing: Ctrl+Enter resends, and the replies after it are replaced.")
        self.input.setFocus()

    def _hook_user_view(self, view: MessageView) -> None:
        view.edit_requested.connect(lambda v=view: self._begin_edit(v))

    def _begin_reply(self) -> MessageView:
        """The reply's view, shown at once (before the request goes out), and the busy state."""
        choice = self.current_choice()
        model = self.model_combo.currentText().strip()
        for v in self.transcript.messages:
            v.set_actions(edit=False, regenerate=False)
        title = f"{choice.display_name if choice else '?'} · {model}"
        view = self.transcript.add_message("assistant", title)
        view.retry_requested.connect(self.regenerate)
        view.regenerate_requested.connect(self.regenerate)
        self._view = view
        self._buffer.reset()
        self._active = True
        self._frame.start()
        self.send_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        return view

    def _end_reply(self) -> None:
        gen = self.generation
        if gen is not None and gen.state.tool_calls:
            self._buffer.tools_dirty = True  # the finished calls replace the streamed ones
        self._flush()
        self._frame.stop()
        self._view = None
        self._active = False
        self.send_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def _abandon_reply(self, view: MessageView, user: MessageView | None) -> None:
        self._end_reply()
        self.transcript.remove_message(view)
        if user is not None:
            self.transcript.remove_message(user)

    async def _run_reply(self, start: Any, view: MessageView, user_view: MessageView | None = None) -> None:
        from victor_gui.ui.error_text import describe_error

        result: ReplyResult | None = None
        try:
            result = await start()
        except Exception as exc:  # a store or state error: shown on the reply, never lost
            log.exception("reply failed")
            view.set_error(describe_error(exc) if hasattr(exc, "kind") else str(exc))
        finally:
            if self._view is view:
                self._end_reply()
        if result is not None:
            await self._finish(view, result, user_view)
        if self.conversation_id is not None:
            self.conversation_changed.emit(self.conversation_id)

    async def _finish(self, view: MessageView, result: ReplyResult, user_view: MessageView | None) -> None:
        from victor_gui.ui.error_text import describe_error
        from victor_gui.ui.stored_render import stats_line

        view.message_id = result.message_id
        if result.error is not None:
            view.set_error(describe_error(result.error))
        assert self.store is not None
        stored = await self.store.get_message(result.message_id)
        if stored is not None:
            view.set_stats(stats_line(stored))
        if user_view is not None and self.conversation_id is not None:
            before = await self.store.get_messages(self.conversation_id, limit=8,
                                                   before_position=stored.position if stored else None)
            users = [m for m in before if m.role == "user"]
            if users:
                user_view.message_id = users[-1].id
        for v in self.transcript.messages:
            if v.role == "user" and v.message_id is not None:
                v.set_actions(edit=True)
        view.set_actions(regenerate=result.status != "error")
        self.tasks.spawn(view.render_markdown_async())
        self.reply_finished.emit(result.status)

    def _on_event(self, event: ReplyEvent) -> None:
        # Runs once per chunk: only buffer here; the frame timer renders.
        if event.kind == "delta":
            gen = self.generation
            calls = gen is not None and bool(gen.state.partial_tool_calls or gen.state.tool_calls)
            self._buffer.add(event.text, event.reasoning, calls)
        elif event.kind == "note":
            self.transcript.add_note(event.text, before=self._view if self.running else None)
        elif event.kind == "fallback":
            self.status_label.setText(event.text)

    def stop(self) -> None:
        """Stop the reply now; what arrived stays (stored as interrupted)."""
        from victor_gui.ui.stored_render import live_stats

        if self.session is None or not self._active:
            return
        self.session.cancel()
        view, gen = self._view, self.generation
        self._end_reply()  # what arrived is on screen; nothing more is appended
        if view is not None and gen is not None:
            stats = live_stats(gen.state)
            view.set_stats(stats if stats.endswith("stopped") else stats + " · stopped")

    def _flush(self) -> None:
        from victor_gui.ui.stored_render import live_stats

        if self._view is not None:
            gen = self.generation
            self._buffer.flush(self._view, gen.state if gen is not None else None, live_stats)

    async def aclose(self) -> None:
        """Stop the reply and wait for background work to end (at shutdown)."""
        if self._unsubscribe_registry is not None:
            self._unsubscribe_registry()
            self._unsubscribe_registry = None
        if self.session is not None:
            await self.session.stop()
        await self.picker.aclose()
        await self.tasks.aclose()


def _title_from(text: str) -> str:
    """A chat's first title: its first line, cut at a word near 60 characters."""
    line = text.strip().splitlines()[0] if text.strip() else "New chat"
    if len(line) <= 60:
        return line
    return line[:60].rsplit(" ", 1)[0] + "…"

