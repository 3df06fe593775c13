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
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from victor_gui.core.tasks import TaskSet
from victor_gui.services.slash_commands import unescape
from victor_gui.ui.chat_attach import AttachMixin
from victor_gui.ui.chat_choosing import ChoosingMixin
from victor_gui.ui.chat_message_actions import MessageActionsMixin
from victor_gui.ui.chat_reply import ReplyViewMixin
from victor_gui.ui.chat_slash import SlashCommands
from victor_gui.ui.chat_stored import StoredChatMixin
from victor_gui.ui.chat_versions import VersionsMixin
from victor_gui.ui.context_meter import ContextMeter
from victor_gui.ui.icons import set_icon
from victor_gui.ui.model_picker import ModelPicker

# Frame pacing and the per-frame buffer (live Markdown included): shared with the compare panes.
from victor_gui.ui.reply_stream import (
    FRAME_MS,
    FrameBuffer,
)
from victor_gui.ui.tools_switch import ToolsButton
from victor_gui.ui.transcript import Transcript
from victor_gui.ui.widgets.wrap_label import WrapLabel

if TYPE_CHECKING:
    # Annotations only: PySide builds a class (and its enums) when a module first names it.
    from PySide6.QtCore import QMimeData
    from PySide6.QtGui import QKeyEvent

    # The provider stack (httpx, pydantic) is imported after the first paint, not before:
    # it is most of the start-up time. See victor_gui.ui.app.
    from victor_gui.services.chat_controller import ChatController
    from victor_gui.services.chat_session import ChatSession
    from victor_gui.services.generation import Generation
    from victor_gui.services.provider_choices import ProviderChoice, ProviderPool
    from victor_gui.services.server_registry import ServerRegistry
    from victor_gui.storage.store import ConversationStore
    from victor_gui.ui.chat_choices import ChatChoices
    from victor_gui.ui.message_view import MessageView
    from victor_gui.ui.tool_views import WindowAsker


class ChatInput(QPlainTextEdit):
    """The message editor: Ctrl+Enter sends, Enter makes a new line. A paste or drop of files or
    of an image goes to ``attach`` (issue 13) when set; text pastes as usual."""

    submitted = Signal()
    attach: Any = None  # (QMimeData) -> bool: True when it attached what the mime data carries

    def canInsertFromMimeData(self, source: QMimeData) -> bool:
        if self.attach is not None and (source.hasImage() or source.hasUrls()):
            return True
        return super().canInsertFromMimeData(source)

    def insertFromMimeData(self, source: QMimeData) -> None:
        if self.attach is not None and self.attach(source):
            return
        super().insertFromMimeData(source)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if (event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            self.submitted.emit()
            return
        super().keyPressEvent(event)


class ProfileCombo(QComboBox):
    """The profile drop-down: the list says ``name — provider · model`` (or why a profile cannot
    be used); the closed box shows only the name, so it stays narrow beside the picker."""

    def paintEvent(self, event: Any) -> None:
        if " — " not in self.currentText():  # "No profile", or a name alone: Qt's own painting
            super().paintEvent(event)
            return
        # Imported here: touching QStyle from Python builds its ~20 enums (~20 ms), which the
        # first paint (showing "No profile") should not pay.
        from PySide6.QtWidgets import QStyle, QStyleOptionComboBox, QStylePainter

        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        option.currentText = option.currentText.split(" — ", 1)[0]
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


class ChatPane(MessageActionsMixin, VersionsMixin, StoredChatMixin, ReplyViewMixin, ChoosingMixin,
               AttachMixin, QWidget):
    """One conversation with one provider/model at a time."""

    models_loaded = Signal(str)  # provider name, after its model list arrived (or failed)
    reply_finished = Signal(str)  # how the reply that just ended ended: complete/interrupted/error
    conversation_changed = Signal(int)  # a chat was created or changed (the list refreshes)
    conversation_opened = Signal(int)  # a stored chat is on screen (its page rendered)
    # The person changed which MCP servers/tools this chat may use: a tools_switch.ToolSelection
    # (the chat controller stores it in the conversation's params["tools"]).
    tools_changed = Signal(object)

    def __init__(self, pool: ProviderPool | None = None, store: ConversationStore | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._initial_pool = pool  # handed to the picker, which holds it (see ``pool``)
        # The conversation's state and actions (Qt-free; see ``controller``); this view renders
        # and forwards intents. Made on first use: its module imports the provider stack.
        self._controller: ChatController | None = None
        self._store_early = store
        self._editing: MessageView | None = None  # the user message's view being edited
        # The app's settings owner (SettingsService; set by the app): its ``attachments`` go to
        # every session of this chat. None: the defaults.
        self.settings_service: Any = None
        self._switch_pending = False
        self._active = False
        # The one registry of servers (the app's); None: the catalog and probe_local (tools, tests).
        self.registry: ServerRegistry | None = None
        self._unsubscribe_registry: Any = None
        self._clouds: list[ProviderChoice] = []  # cloud choices (keys read off the loop)
        self._user_chose = False  # the user picked a provider: the registry no longer auto-picks
        self._choices_helper: ChatChoices | None = None  # see ``choices``
        self._view: MessageView | None = None
        self._asker: WindowAsker | None = None  # see ``asker``
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
        self.picker.model_combo.activated.connect(self._model_activated)
        self.provider_combo = self.picker.provider_combo
        self.model_combo = self.picker.model_combo
        self.refresh_button = self.picker.refresh_button
        picker_row = QHBoxLayout()
        picker_row.setSpacing(6)
        # Profiles (Victor's profiles.yaml and the app's): provider, model, parameters, fallback.
        self.profile_combo = ProfileCombo()
        self.profile_combo.setAccessibleName("Profile")
        self.profile_combo.setAccessibleDescription(
            "A profile sets provider, model, parameters and fallback chain; broken ones say why")
        self.profile_combo.setToolTip("Profiles from ~/.victor/profiles.yaml and the app's own file")
        self.profile_combo.setMinimumContentsLength(10)
        self.profile_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.profile_combo.addItem("No profile", None)
        self.profile_combo.activated.connect(self._profile_activated)
        profile_label = QLabel("Profile")
        profile_label.setBuddy(self.profile_combo)
        # First in the row and in the Tab chain: a profile is a preset of what follows it
        # (profile → provider → model → message → Send).
        picker_row.addWidget(profile_label)
        picker_row.addWidget(self.profile_combo)
        picker_row.addWidget(self.picker, 1)
        self.tools_button = ToolsButton()  # issue 12: the servers and tools this chat may use
        self.tools_button.selection_changed.connect(self.tools_changed)
        self.tools_changed.connect(self._tools_chosen)
        picker_row.addWidget(self.tools_button)
        layout.addLayout(picker_row)
        QWidget.setTabOrder(self.profile_combo, self.provider_combo)
        QWidget.setTabOrder(self.provider_combo, self.model_combo)
        # Paths of Victor's and the app's profiles files (None: their usual places); tests set them.
        self.profile_files: tuple[Path | None, Path | None] = (None, None)
        self.profiles_loading: asyncio.Task[None] | None = None  # started by ``start``

        attach_button = self._build_attach(layout)  # issue 13: banner, chips, paper clip
        row = QHBoxLayout()
        row.addWidget(attach_button, 0, Qt.AlignmentFlag.AlignTop)
        self.input = ChatInput()
        self.input.attach = self.attach_mime
        self.input.setAccessibleName("Message")
        self.input.setPlaceholderText("Message  (Ctrl+Enter to send, Esc to stop)")
        self.input.setFixedHeight(72)
        # Tab: profile → provider → model → tools → attach → message → Send
        self.input.setTabChangesFocus(True)
        self.input.submitted.connect(self.send)
        self.input.textChanged.connect(self._input_changed)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setAccessibleName("Send message")
        set_icon(self.send_button, "send")
        self.send_button.clicked.connect(self.send)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setAccessibleName("Stop the reply")
        set_icon(self.stop_button, "stop")
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        # Shown while a message is being edited (issue 14): editing is explicit and can be left.
        self.cancel_edit_button = QPushButton("Cancel")
        self.cancel_edit_button.setAccessibleName("Cancel editing")
        set_icon(self.cancel_edit_button, "x")
        self.cancel_edit_button.setToolTip("Stop editing (Esc); the message stays as it was")
        self.cancel_edit_button.clicked.connect(self.cancel_edit)
        self.cancel_edit_button.hide()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.cancel_edit_button)
        buttons.addWidget(self.stop_button)
        row.addWidget(self.input, 1)
        row.addLayout(buttons)
        self.slash = SlashCommands(self)  # completion list and command answers, above the input
        layout.addWidget(self.slash.panel)
        layout.addLayout(row)
        self.meter = ContextMeter(self)  # history + draft against the window, under the input
        layout.addWidget(self.meter)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.escape,
                  context=Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.picker.install_shortcuts(self)  # F5 reloads the model list

    # -- the conversation ------------------------------------------------------------------------

    def set_store(self, store: ConversationStore | None) -> None:
        """Use ``store`` from now on (the app opens it after the first paint; a data-folder move
        hands over the reopened one)."""
        if self._controller is None:
            self._store_early = store
        else:
            self.controller.set_store(store)

    @property
    def controller(self) -> ChatController:
        """The chat's :class:`~victor_gui.services.chat_controller.ChatController` (made on first
        use, after the first paint: its module imports the provider stack)."""
        if self._controller is None:
            from victor_gui.services.chat_controller import ChatController

            self._controller = ChatController(self._store_early)
            self._controller.subscribe(self._controller_event)
            self._controller.asker = self.asker  # tool calls are approved in this pane
            # Issue 13: documents whole or retrieved with the settings' embedding model, as set now.
            self._controller.attachment_settings = self._attachment_settings
        return self._controller

    def _attachment_settings(self) -> Any:
        """The settings' ``attachments`` (None until the app hands its settings over)."""
        service = self.settings_service
        return service.settings.attachments if service is not None else None

    def use_tools(self, host: Any, approvals: Any) -> None:
        """Offer the app's MCP servers in this chat (the tools menu follows their states) and run
        their calls through this pane's approval prompt under the stored rules."""
        self.tools_button.set_source(host)
        self.controller.tools = host
        self.controller.approvals = approvals

    def _tools_chosen(self, selection: dict[str, list[str] | None]) -> None:
        from victor_gui.services.tool_loop import ToolChoice

        choice = ToolChoice.from_selection(selection, self._tools_of)
        self.tasks.spawn(self.controller.set_tool_choice(choice))

    def _tools_of(self, server: str) -> tuple[str, ...]:
        source = self.tools_button.source
        for status in source.statuses() if source is not None else ():
            if status.name == server:
                return tuple(status.tool_names)
        return ()

    async def show_tool_choice(self) -> None:
        """Show this chat's stored tools switch in the menu (a reopened chat, a new one)."""
        if self._controller is None:
            return
        choice = await self.controller.tool_choice()
        self.tools_button.set_selection(choice.to_selection(self._tools_of))

    @property
    def asker(self) -> WindowAsker:
        """The approval prompt's :data:`~victor_gui.services.tool_types.Asker` for this chat's
        tool loop (prompts appear at the end of the transcript, under the reply)."""
        if self._asker is None:
            from victor_gui.ui.tool_views import WindowAsker

            self._asker = WindowAsker(self.transcript)
        return self._asker

    @property
    def store(self) -> ConversationStore | None:
        """The conversation store (the controller's)."""
        return self._controller.store if self._controller is not None else self._store_early

    @property
    def session(self) -> ChatSession | None:
        """The session streaming this chat's replies (the controller's), None before the first."""
        return self._controller.session if self._controller is not None else None

    @property
    def conversation_id(self) -> int | None:
        """The chat on screen (None: a new chat not stored yet)."""
        return self._controller.conversation_id if self._controller is not None else None

    def _controller_event(self, event: Any) -> None:
        """Render what the controller says: reply events, a stored chat changed, the profile."""
        from victor_gui.services.chat_controller import ConversationChanged, ProfileChanged

        if isinstance(event, ConversationChanged):
            self.conversation_changed.emit(event.conversation_id)
        elif isinstance(event, ProfileChanged):
            self._show_profile_choice()
        else:
            self._on_event(event)

    @property
    def running(self) -> bool:
        """Whether a reply is on its way (from Send until it ends or Stop is pressed)."""
        return self._active

    @property
    def generation(self) -> Generation | None:
        """The reply attempt streaming now (or the last one): live figures for views and benches."""
        return self.session.generation if self.session is not None else None

    async def _ensure_session(self, first_text: str) -> ChatSession | None:
        """The session for the chat on screen (the controller makes it, with its conversation,
        on first use and switches it to the choice in the drop-downs or the chosen profile)."""
        from victor_gui.errors import ProviderError, StorageError
        from victor_gui.ui.error_text import describe_error

        choice, model = self.current_choice(), self.model_combo.currentText().strip()
        if self.store is None:
            self.status_label.setText("Your conversations are still opening; try again in a moment.")
            return None
        if self.pool is None or (self.controller.profile() is None and (choice is None or not model)):
            self.status_label.setText(self._missing_choice_text())
            return None
        try:
            # Reply events (one per streamed chunk) come straight here, not through the
            # controller's listener list: that hop cost ~4 % of a 10k tok/s stream.
            return await self.controller.bind(choice, model, pool=self.pool, choices=self._choices,
                                              first_text=first_text, on_event=self._on_event)
        except ProviderError as exc:
            self.status_label.setText(describe_error(exc))
        except StorageError as exc:
            self.status_label.setText(str(exc))
        return None

    def send(self) -> None:
        """Send the input as a user message (or resend an edited one) and stream the reply."""
        text = self.input.toPlainText().strip()
        if self.slash.intercept(text):  # a /command runs instead (see ui/chat_slash.py)
            return
        text = unescape(text)  # "//text" sends "/text"
        has_files = self._draft is not None and (bool(self._draft.refs()) or self._draft.busy)
        if (not text and not has_files) or self.running:
            return
        no_choice = self.current_choice() is None or not self.model_combo.currentText().strip()
        if no_choice and (self._controller is None or self._controller.profile() is None):
            self.status_label.setText(self._missing_choice_text())
            return
        if self.store is None:
            self.status_label.setText("Your conversations are still opening; try again in a moment.")
            return
        # An edited message keeps its files (the chips wait for the next new message).
        items = self._take_attachments() if self._editing is None else []
        if items is None:
            return
        if not text and not items:
            return
        # The edit state ends first (the controller keeps which message to resend): clearing
        # the input below would otherwise end it as an emptied input does.
        editing, self._editing = self._editing, None
        if editing is None:
            self.controller.take_edit()
        self.end_edit_view()
        self.input.clear()
        user = None
        if editing is not None:
            self.transcript.remove_after(editing)
            editing.replace_content(text)
        elif not self.controller.around_hit:
            user = self.transcript.add_message("user", "You", text)
            self._hook_user_view(user)
            self._show_message_attachments(user, [i.ref for i in items if i.ref is not None])
        deleting = self.commit_pending_delete()  # a deleted message must not be sent along
        view = self._begin_reply()
        self.tasks.spawn(self._send(text, editing, user, view, deleting, items))

    async def _send(self, text: str, editing: MessageView | None, user: MessageView | None,
                    view: MessageView, deleting: asyncio.Task[None] | None = None,
                    items: list[Any] | None = None) -> None:
        from victor_gui.errors import AttachmentError, ModelTakesNoImagesError

        if deleting is not None:
            await deleting
        items = items or []
        refs = [i.ref for i in items if i.ref is not None]
        if self.controller.around_hit and self.conversation_id is not None and editing is None:
            # Showing a page around a search hit: answer under the latest message instead.
            await self.open_conversation(self.conversation_id)
            user = self.transcript.add_message("user", "You", text)
            self._hook_user_view(user)
            self._show_message_attachments(user, refs)
            view = self._begin_reply()
        new_chat = self.conversation_id is None
        session = await self._ensure_session(text or (refs[0].name if refs else ""))
        if session is None:
            self._abandon_reply(view, user)
            self.input.setPlainText(text)
            self._restore_attachments(items)
            return
        for document in self.draft.documents(items) if items else ():
            session.use_converted(document)  # converted for the chip already: not again

        async def start() -> Any:
            # The controller resends the message being edited (as a new version: its view gets
            # the new version's id; its files stay), else sends a new one with the chips' files.
            try:
                return await self.controller.send(session, text, refs if editing is None else None)
            except ModelTakesNoImagesError as exc:  # nothing was sent or stored
                self._refused_images(exc, text, items, view, user)
                if new_chat:
                    await self._forget_empty_chat()
                return None
            except AttachmentError as exc:  # a file that no longer converts: nothing was stored
                if editing is not None:
                    raise
                self._abandon_reply(view, user)
                self._restore_attachments(items)
                if not self.input.toPlainText().strip():
                    self.input.setPlainText(text)
                self.status_label.setText(exc.message)
                if new_chat:
                    await self._forget_empty_chat()
                return None

        await self._run_reply(start, view, editing or user)

    def regenerate(self) -> None:
        """Answer the last user message again (the replies shown stay as an earlier version)."""
        if self.session is None or self.running:
            return
        deleting = self.commit_pending_delete()
        users = [v for v in self.transcript.messages if v.role == "user"]
        if users:
            self.transcript.remove_after(users[-1])
        view = self._begin_reply()

        async def regenerate() -> object:
            if deleting is not None:
                await deleting
            return await self.controller.regenerate()

        self.tasks.spawn(self._run_reply(regenerate, view))

    def _hook_user_view(self, view: MessageView) -> None:
        view.edit_requested.connect(lambda v=view: self._begin_edit(v))

    async def aclose(self) -> None:
        """Stop the reply and wait for background work to end (at shutdown)."""
        if self._unsubscribe_registry is not None:
            self._unsubscribe_registry()
            self._unsubscribe_registry = None
        self.tools_button.detach()  # stop following the MCP host's servers
        if self._chips is not None:
            self._chips.detach()
        if self._draft is not None:
            self._draft.clear()  # a file still being copied or converted stops
        if self._controller is not None:
            await self._controller.aclose()
        await self.picker.aclose()
        await self.tasks.aclose()

