"""Importing an export into the store: single messages, and whole conversations in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from victor_gui.errors import StorageError
from victor_gui.storage import attachment_rows, tree
from victor_gui.storage.message_rows import dumps, imported_message, insert_message
from victor_gui.storage.stream_writes import StreamWrites


@dataclass
class ImportedConversation:
    """One conversation of an export file, as :meth:`ConversationStore.import_conversations` takes it."""

    title: str
    created: float
    updated: float
    system_prompt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, Any]] = field(default_factory=list)
    # Every version with its parent's index and whether it is chosen (an export made with
    # ``tree=True``); None: ``messages`` is the one branch.
    tree: list[tuple[dict[str, Any], int | None, bool]] | None = None



class StoreImports(StreamWrites):
    """Rows as an export file holds them (part of :class:`~victor_gui.storage.store.ConversationStore`;
    the file format is :mod:`.export`)."""

    async def import_message(self, conversation_id: int, fields: dict[str, Any]) -> int:
        """Append a message as exported (see :mod:`.export`); ``streaming`` becomes ``interrupted``."""
        values = imported_message(fields)
        refs = values.pop("attachments", None) or ()

        def op(conn: sqlite3.Connection) -> int:
            mid = insert_message(conn, conversation_id, values)
            attachment_rows.insert_refs(conn, mid, refs)
            return mid

        return await self._db.write(op)

    async def import_conversations(self, items: Sequence[ImportedConversation]) -> list[int]:
        """Add whole conversations as exported, in ONE transaction: all of them or, if any row
        is refused, none (a half-imported file would leave chats the user cannot tell apart
        from the originals). Returns the new ids in order."""
        rows = [(item, [imported_message(m) for m in item.messages]) for item in items]

        def op(conn: sqlite3.Connection) -> list[int]:
            ids = []
            for n, (item, messages) in enumerate(rows, 1):
                try:
                    cur = conn.execute(
                        "INSERT INTO conversations(title, created, updated, system_prompt, params)"
                        " VALUES (?,?,?,?,?)",
                        (item.title, item.created, item.created, item.system_prompt, dumps(item.params)),
                    )
                    cid = int(cur.lastrowid or 0)
                    if item.tree is not None:  # every version, as exported (see .tree); the
                        # tree's entries carry no files (the export lists them on `messages`)
                        tree.insert_tree(conn, cid, [(imported_message(v), parent, chosen)
                                                     for v, parent, chosen in item.tree])
                    for values in messages if item.tree is None else ():
                        refs = values.pop("attachments", None) or ()
                        mid = insert_message(conn, cid, values)
                        if refs:
                            attachment_rows.insert_refs(conn, mid, refs)
                    conn.execute("UPDATE conversations SET created=?, updated=? WHERE id=?",
                                 (item.created, item.updated, cid))
                except sqlite3.Error as exc:  # the transaction is rolled back: nothing stays
                    raise StorageError(
                        f"conversation {n} of the export could not be stored ({exc}); nothing was imported"
                    ) from exc
                ids.append(cid)
            return ids

        return await self._db.write(op)

    async def set_conversation_times(self, conversation_id: int, created: float, updated: float) -> None:
        """Restore a conversation's timestamps (import keeps the originals)."""
        await self._db.write(
            lambda conn: conn.execute(
                "UPDATE conversations SET created=?, updated=? WHERE id=?",
                (created, updated, conversation_id),
            )
        )
