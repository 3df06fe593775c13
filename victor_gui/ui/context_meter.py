"""The context meter under the chat input: the history and the draft, in estimated tokens,
against the model's real window (asked of the server, else the table; or the chat's own context
length). Amber from :data:`~victor_gui.services.context_window.AMBER_AT` of what fits before
trimming; red when the next request will be trimmed (the oldest turns left out).

The draft is re-counted as you type, 200 ms after the last key; the history and the window are
re-read when the chat, the model or the stored messages change (a reply ended, a chat opened).
The meter sends no request of its own: the window comes from the model list the drop-down
already fetched, the session's discovery after a reply, or the model table.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import TYPE_CHECKING, Any, cast

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QWidget

if TYPE_CHECKING:  # built at start-up: the figures' modules (providers, tables) load on first use
    from victor_gui.services.context_window import ContextUse

DEBOUNCE_MS = 200
DEFAULT_MAX_TOKENS = 4096
# The bar's colour per level; "ok" keeps the theme's highlight colour.
COLOURS = {"amber": "#d08700", "red": "#c62828"}
SOURCES = {"server": "as the server reports", "table": "from the model table", "default": "a default guess",
           "session": "this chat's setting"}
# The figure's colour per level and theme: darker on light, lighter on dark, so the text keeps
# a contrast of 4.5:1 or more against the window colour of either theme.
TEXT_COLOURS = {("amber", False): "#8a5300", ("red", False): "#b71c1c",
                ("amber", True): "#ffc04d", ("red", True): "#ff8a80"}


class ContextMeter(QWidget):
    """A thin bar and a figure: ``Context: 1,234 / 8,192 tokens``."""

    def __init__(self, pane: QWidget) -> None:
        super().__init__(pane)
        self.setObjectName("contextMeter")
        # The ChatPane (typed loosely: importing chat_pane here would make an import cycle).
        self.pane: Any = cast(Any, pane)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel("")
        self.label.setObjectName("contextMeterText")
        self.label.setAccessibleName("Context used")
        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(6)
        self.bar.setAccessibleName("Context used, share of what fits")
        row.addWidget(self.label)
        row.addWidget(self.bar, 1)
        self.history = 0
        self.window_tokens: int | None = None
        self.window_source = ""
        self.max_tokens = DEFAULT_MAX_TOKENS
        self.use: ContextUse | None = None
        self.level = "ok"
        self._seen: tuple[Any, ...] | None = None  # (chat, provider, model) the figures are for
        self.refreshing: Any = None  # the task re-reading history and window, if one runs
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self._tick)
        self._stale = True
        pane_any = self.pane
        pane_any.input.textChanged.connect(self.timer.start)
        for signal in (pane_any.reply_finished, pane_any.conversation_changed, pane_any.models_loaded,
                       pane_any.model_combo.currentTextChanged):
            signal.connect(self.schedule)
        self.hide()  # until there is a window to measure against

    def restyle(self) -> None:
        """The theme changed (light/dark): the figure takes that theme's amber or red.

        Called by :func:`victor_gui.ui.theme.restyle_all` after the new palette is in force; not
        a ``changeEvent`` override, whose first call (before the first paint) made PySide build
        its ~50 event classes to convert the event."""
        if self.use is not None:
            self.show_use()

    def schedule(self, *_args: Any) -> None:
        """Re-read the history and the window shortly (several changes in a row read once)."""
        self._stale = True
        self.timer.start()

    def _key(self) -> tuple[Any, ...]:
        choice = self.pane.current_choice()
        return (self.pane.conversation_id, choice.name if choice is not None else None,
                self.pane.model_combo.currentText().strip())

    def _tick(self) -> None:
        if self._stale or self._key() != self._seen:
            self._stale = False
            self.refreshing = self.pane.tasks.spawn(self.refresh())
        else:
            self.show_use()

    async def refresh(self) -> None:
        """Re-read the stored history, the chat's own context length and max tokens, and the window."""
        # Imported in a worker thread the first time: the module loads the provider stack and
        # the model table's code (on the loop it was the meter's first 130 ms).
        await asyncio.to_thread(importlib.import_module, "victor_gui.services.context_window")
        from victor_gui.services.context_window import stored_tokens

        key = self._key()
        store, cid = self.pane.store, self.pane.conversation_id
        params: dict[str, Any] = {}
        self.history = 0
        if store is not None and cid is not None:
            conv = await store.get_conversation(cid)
            params = dict(conv.params or {}) if conv is not None else {}
            messages = await store.get_messages(cid)
            self.history = stored_tokens(messages, conv.system_prompt if conv is not None else "")
        self.max_tokens = int(params.get("max_tokens") or DEFAULT_MAX_TOKENS)
        if params.get("context_length"):
            self.window_tokens, self.window_source = int(params["context_length"]), "this chat's setting"
        else:
            found = await self._model_window()
            self.window_tokens, self.window_source = found if found else (None, "")
        self._seen = key
        self.show_use()

    async def _model_window(self) -> tuple[int, str] | None:
        """The window without a request of its own (start-up sends one probe per endpoint): the
        session's, once a reply discovered it; else what the server's model list said; else the
        model table's."""
        from victor_gui.services.context_window import table_window, window_from_listing

        model = self.pane.model_combo.currentText().strip()
        choice = self.pane.current_choice()
        if not model or choice is None:
            return None
        session = self.pane.session
        known = session.known_window() if session is not None and session.model == model else None
        if known is not None and known.source in ("server", "table"):
            return known.tokens, SOURCES[known.source]
        listed = self.pane.picker.models.get(choice.name) or []
        info = next((m for m in listed if m.id == model or m.id.removesuffix(":latest") == model), None)
        tokens = window_from_listing(info) if info is not None else None
        if tokens:
            return tokens, SOURCES["server"]
        if known is not None:
            return known.tokens, SOURCES.get(known.source, SOURCES["default"])
        kind = choice.target.kind if choice.target is not None else choice.name
        # The model table is a YAML file, parsed on first use (~130 ms): read in a worker thread.
        window = await asyncio.to_thread(table_window, kind, model)
        return window.tokens, SOURCES[window.source]

    def show_use(self) -> None:
        """Show the history + the draft now in the input against the window."""
        from victor_gui.services.context_window import AMBER_AT, context_use, draft_tokens

        if not self.window_tokens:
            self.hide()
            return
        used = self.history + draft_tokens(self.pane.input.toPlainText())
        use = context_use(used, self.window_tokens, self.max_tokens)
        self.use = use
        self.level = use.level
        self.bar.setValue(min(1000, round(use.fraction * 1000)))
        self.label.setText(f"Context: {use.used:,} / {use.window:,} tokens")
        colour = COLOURS.get(use.level)
        self.bar.setStyleSheet(f"QProgressBar::chunk {{ background: {colour}; }}" if colour else "")
        dark = self.palette().window().color().lightness() < 128
        text_colour = TEXT_COLOURS.get((use.level, dark))
        self.label.setStyleSheet(f"color: {text_colour};" if text_colour else "")
        trim = (" The next request will be trimmed: the oldest turns are left out." if use.level == "red"
                else f" Amber from {AMBER_AT:.0%} of that.")
        self.setToolTip(f"About {use.used:,} tokens (estimated) of a {use.window:,}-token window "
                        f"({self.window_source}); {use.budget:,} fit before trimming, the rest is kept "
                        f"for the reply.{trim}")
        self.show()
