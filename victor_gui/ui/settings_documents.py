"""Settings → Documents: which embedding model retrieves passages from attached documents that
do not fit the model's window, and how many passages go into a request.

The page edits ``settings.attachments`` through the settings service (its one owner); the chat
reads it when it builds a request (services.document_context). "Automatic" keeps the local
default: the first local server with an embedding model (Ollama ``nomic-embed-text`` first), else
the chat's own llama-server (see services.embedding_choice).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QLineEdit, QPushButton, QSpinBox, QWidget

from victor_gui.config.settings import AttachmentSettings, EmbeddingChoice, Settings
from victor_gui.providers.catalog import display_name, local_specs
from victor_gui.providers.embeddings import CLOUD_EMBEDDING_MODELS

# What a local server's embedding model is usually called (the model box's hint).
LOCAL_HINTS = {"ollama": "nomic-embed-text", "lmstudio": "text-embedding-nomic-embed-text-v1.5",
               "llamacpp": "the model llama-server was started with (--embeddings)", "vllm": "BAAI/bge-m3"}
AUTOMATIC = ""


class DocumentsPage(QWidget):
    """The Documents page of Settings."""

    def __init__(self, settings: Callable[[], Settings],
                 update: Callable[..., Awaitable[bool]],
                 spawn: Callable[[Awaitable[Any]], Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._update = update
        self._spawn = spawn
        form = QFormLayout(self)
        form.addRow(QLabel("Documents too long for the model's window are cut into passages; the "
                           "passages closest to your question are found with an embedding model "
                           "on your own server (or a cloud one you choose) and sent with it."))
        self.provider_combo = QComboBox()
        self.provider_combo.setAccessibleName("Embedding provider")
        self.provider_combo.currentIndexChanged.connect(self._provider_changed)
        form.addRow("Embedding provider", self.provider_combo)
        self.model_edit = QLineEdit()
        self.model_edit.setAccessibleName("Embedding model")
        form.addRow("Embedding model", self.model_edit)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(1, 50)
        self.k_spin.setAccessibleName("Passages per question")
        form.addRow("Passages per question", self.k_spin)
        self.chunk_spin = QSpinBox()
        self.chunk_spin.setRange(100, 20000)
        self.chunk_spin.setSingleStep(100)
        self.chunk_spin.setSuffix(" characters")
        self.chunk_spin.setAccessibleName("Passage length")
        form.addRow("Passage length", self.chunk_spin)
        self.save_button = QPushButton("Save")
        self.save_button.setAccessibleName("Save the document settings")
        self.save_button.clicked.connect(self.save)
        form.addRow("", self.save_button)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        self.note.setAccessibleName("Documents settings message")
        form.addRow("", self.note)
        self.show_settings()

    def _fill_providers(self) -> None:
        self.provider_combo.blockSignals(True)
        self.provider_combo.clear()
        self.provider_combo.addItem("Automatic (a local server's embedding model)", AUTOMATIC)
        for spec in local_specs():
            self.provider_combo.addItem(spec.display_name, spec.name)
        for endpoint in self._settings().endpoints:
            self.provider_combo.addItem(f"{endpoint.name} (endpoint)", endpoint.name)
        for name in CLOUD_EMBEDDING_MODELS:
            self.provider_combo.addItem(f"{display_name(name)} (cloud, needs its key)", name)
        self.provider_combo.blockSignals(False)

    def show_settings(self) -> None:
        """Show what the settings hold now."""
        self._fill_providers()
        current: AttachmentSettings = self._settings().attachments
        chosen = current.embedding
        index = self.provider_combo.findData(chosen.provider if chosen else AUTOMATIC)
        if index < 0 and chosen is not None:  # a provider not listed (an alias): keep it
            self.provider_combo.addItem(chosen.provider, chosen.provider)
            index = self.provider_combo.count() - 1
        self.provider_combo.setCurrentIndex(max(0, index))
        self.model_edit.setText(chosen.model if chosen else "")
        self.k_spin.setValue(current.retrieve_k)
        self.chunk_spin.setValue(current.chunk_chars)
        self._provider_changed()

    def _provider_changed(self, _index: int = 0) -> None:
        provider = self.provider_combo.currentData()
        automatic = provider == AUTOMATIC
        self.model_edit.setEnabled(not automatic)
        hint = CLOUD_EMBEDDING_MODELS.get(provider) or LOCAL_HINTS.get(provider) or "the model's name"
        self.model_edit.setPlaceholderText("" if automatic else f"e.g. {hint}")

    def choice(self) -> AttachmentSettings | None:
        """The page's values as settings; None (and a sentence) when a model is missing."""
        provider = self.provider_combo.currentData()
        model = self.model_edit.text().strip()
        if provider != AUTOMATIC and not model:
            default = CLOUD_EMBEDDING_MODELS.get(provider)
            if default is None:
                self.note.setText("Name the embedding model on that provider (or choose Automatic).")
                return None
            model = default
        embedding = None if provider == AUTOMATIC else EmbeddingChoice(provider=provider, model=model)
        return AttachmentSettings(embedding=embedding, retrieve_k=self.k_spin.value(),
                                  chunk_chars=self.chunk_spin.value())

    def save(self) -> Any:
        """Save the page through the settings service."""
        chosen = self.choice()
        if chosen is None:
            return None

        async def run() -> None:
            if await self._update(attachments=chosen):
                self.note.setText("Saved. Documents attached from now on use it; a document already "
                                  "embedded with another model is embedded again when asked about.")
                self.show_settings()

        return self._spawn(run())
