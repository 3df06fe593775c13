"""Conversation storage: SQLite (WAL) behind an async API, export/import, full-text search."""

from victor_gui.storage.models import Conversation, SearchHit, StoredMessage, StoreNotice
from victor_gui.storage.opening import open_store
from victor_gui.storage.store import ConversationStore

__all__ = ["Conversation", "ConversationStore", "SearchHit", "StoreNotice", "StoredMessage", "open_store"]
