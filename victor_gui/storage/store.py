"""The conversation store: async API over SQLite, built so a chat is never lost.

* Every call runs on the store's own threads (see :mod:`victor_gui.storage.db`); the event loop
  never waits on disk.
* A streamed reply is a row in status ``streaming`` from its first moment; its deltas are
  buffered and committed in chunks (:mod:`.stream_writes`, the base of :class:`ConversationStore`).
  If the app dies, the next :func:`open_store` that finds no other live process on the file
  folds them and marks that row ``interrupted`` (see :mod:`.instance_lock`): the text committed
  so far is there.
* Opening, migration and recovery live in :mod:`victor_gui.storage.opening` (:func:`open_store`).
* Attachments: :mod:`.store_attachments`; rows as encoded in SQLite: :mod:`.message_rows`;
  import of an export: :mod:`.store_import`. This module holds conversations, messages, their
  versions and branches (see :mod:`.tree`), search and usage.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from victor_gui.core.attachment_ref import AttachmentRef
from victor_gui.core.redact import redact
from victor_gui.errors import StorageError
from victor_gui.providers.types import ContentPart, Timings, ToolCall, Usage
from victor_gui.storage import attachment_rows, tree
from victor_gui.storage.chunks import with_chunks
from victor_gui.storage.message_rows import (
    CONVERSATION_COLUMNS,
    content_columns,
    conversation_from_row,
    dumps,
    insert_message,
    tool_calls_json,
    usage_columns,
)
from victor_gui.storage.models import (
    MESSAGE_COLUMNS,
    STATUSES,
    Conversation,
    SearchHit,
    StoredMessage,
    message_from_row,
)
from victor_gui.storage.search import search_sync
from victor_gui.storage.store_attachments import StoreAttachments
from victor_gui.storage.store_import import StoreImports
from victor_gui.storage.tree import TreeMessage
from victor_gui.storage.usage import UsageRow, usage_sync

__all__ = ["DB_NAME", "ConversationStore"]

DB_NAME = "conversations.sqlite3"


class ConversationStore(StoreAttachments, StoreImports):
    """Conversations and messages in one SQLite file. Create with :func:`open_store`."""

    # -- conversations -------------------------------------------------------------------------

    async def create_conversation(
        self,
        title: str = "",
        *,
        system_prompt: str | None = None,
        params: dict[str, Any] | None = None,
        created: float | None = None,
    ) -> Conversation:
        """A new, empty conversation."""
        now = time.time() if created is None else created

        def op(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "INSERT INTO conversations(title, created, updated, system_prompt, params)"
                " VALUES (?,?,?,?,?)",
                (title, now, now, system_prompt, dumps(params or {})),
            )
            return int(cur.lastrowid or 0)

        cid = await self._db.write(op)
        return Conversation(cid, title, now, now, system_prompt, dict(params or {}))

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        """The conversation with that id, with its message count; None if it does not exist."""

        def op(conn: sqlite3.Connection) -> Conversation | None:
            row = conn.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations WHERE id=?", (conversation_id,)
            ).fetchone()
            if row is None:
                return None
            count = conn.execute(
                "SELECT count(*) FROM messages WHERE conversation_id=? AND on_path=1", (conversation_id,)
            ).fetchone()
            return conversation_from_row(row, count[0])

        return await self._db.read(op)

    async def list_conversations(self, limit: int = 200, offset: int = 0) -> list[Conversation]:
        """Conversations, most recently updated first."""

        def op(conn: sqlite3.Connection) -> list[Conversation]:
            rows = conn.execute(
                f"SELECT {CONVERSATION_COLUMNS} FROM conversations"
                " ORDER BY updated DESC, id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            return [conversation_from_row(r) for r in rows]

        return await self._db.read(op)

    async def update_conversation(
        self,
        conversation_id: int,
        *,
        title: str | None = None,
        system_prompt: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """Change the title, system prompt or parameters (None leaves a field as it is)."""
        sets: list[str] = ["updated=?"]
        args: list[Any] = [time.time()]
        for column, value in (("title", title), ("system_prompt", system_prompt), ("params", dumps(params))):
            if value is not None:
                sets.append(f"{column}=?")
                args.append(value)
        await self._db.write(
            lambda conn: conn.execute(
                f"UPDATE conversations SET {', '.join(sets)} WHERE id=?", (*args, conversation_id)
            )
        )

    async def delete_conversation(self, conversation_id: int) -> None:
        """Remove a conversation, all its messages, and the attachment files no other chat holds."""

        def op(conn: sqlite3.Connection) -> list[str]:
            held = attachment_rows.refs_of_conversation(conn, conversation_id)
            conn.execute("DELETE FROM conversations WHERE id=?", (conversation_id,))
            return held

        await self._collect(await self._db.write(op))

    # -- messages ------------------------------------------------------------------------------

    async def add_message(
        self,
        conversation_id: int,
        role: str,
        content: str | Sequence[ContentPart | dict[str, Any]] = "",
        *,
        reasoning: str = "",
        tool_calls: Sequence[ToolCall | dict[str, Any]] | None = None,
        tool_call_id: str | None = None,
        provider: str | None = None,
        model: str | None = None,
        endpoint: str | None = None,
        status: str = "complete",
        error: str | None = None,
        created: float | None = None,
        usage: Usage | None = None,
        timings: Timings | None = None,
        cost: float | None = None,
        meta: dict[str, Any] | None = None,
        attachments: Sequence[AttachmentRef] = (),
    ) -> int:
        """Append a whole message at the end of the conversation; returns its id.

        ``attachments``: files already put in the store (:meth:`put_attachment_file`,
        :meth:`put_attachment_bytes`), linked to the message in this order in the same
        transaction; :class:`StorageError` if one is not in the data folder.
        """
        if status not in STATUSES:
            raise StorageError(f"unknown message status {status!r}")
        text, parts = content_columns(content)
        now = time.time() if created is None else created
        values = {
            "role": role,
            "content": text,
            "content_parts": parts,
            "reasoning": reasoning or "",
            "tool_calls": tool_calls_json(tool_calls),
            "tool_call_id": tool_call_id,
            "provider": provider,
            "model": model,
            "endpoint": endpoint,
            "status": status,
            "error": redact(error) if error else None,
            "created": now,
            "updated": now,
            "cost": cost,
            "meta": dumps(meta),
            **usage_columns(usage, timings),
        }
        if not attachments:
            return await self._db.write(lambda conn: insert_message(conn, conversation_id, values))

        def op(conn: sqlite3.Connection) -> int:
            mid = insert_message(conn, conversation_id, values)
            attachment_rows.insert_refs(conn, mid, attachments)
            return mid

        return await self._holding(attachments, op)

    async def get_messages(
        self, conversation_id: int, *, limit: int | None = None, before_position: int | None = None
    ) -> list[StoredMessage]:
        """The chosen branch's messages in order (see :mod:`.tree`). With ``limit``: the last page
        (before ``before_position`` if given)."""

        def op(conn: sqlite3.Connection) -> list[StoredMessage]:
            where, args = "conversation_id=? AND on_path=1", [conversation_id]
            if before_position is not None:
                where += " AND position<?"
                args.append(before_position)
            if limit is None:
                sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY position"
                found = with_chunks(conn, (message_from_row(r) for r in conn.execute(sql, args)))
            else:
                sql = f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY position DESC LIMIT ?"
                rows = conn.execute(sql, [*args, limit]).fetchall()
                found = with_chunks(conn, (message_from_row(r) for r in reversed(rows)))
            return attachment_rows.with_attachments(conn, found)

        await self._flush_quietly()
        return await self._db.read(op)

    async def get_message(self, message_id: int) -> StoredMessage | None:
        """One message by id (including any text still buffered from a stream)."""
        await self._flush_quietly(message_id)

        def op(conn: sqlite3.Connection) -> StoredMessage | None:
            row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id=?", (message_id,)).fetchone()
            if row is None:
                return None
            return attachment_rows.with_attachments(conn, with_chunks(conn, [message_from_row(row)]))[0]

        return await self._db.read(op)

    async def edit_message(
        self, message_id: int, content: str | Sequence[ContentPart | dict[str, Any]],
        *, attachments: Sequence[AttachmentRef] | None = None,
    ) -> None:
        """Replace a message's content in place (Edit-and-resend adds a new version instead).

        ``attachments``: None keeps the message's files; a sequence replaces them (files no
        message holds any more are deleted after the commit)."""
        text, parts = content_columns(content)

        def op(conn: sqlite3.Connection) -> list[str]:
            conn.execute(
                "UPDATE messages SET content=?, content_parts=?, updated=? WHERE id=?",
                (text, parts, time.time(), message_id),
            )
            if attachments is None:
                return []
            return attachment_rows.replace_refs(conn, message_id, attachments)

        await self._collect(await self._holding(attachments or (), op))

    async def delete_messages_from(self, conversation_id: int, position: int) -> int:
        """Delete the chosen branch's messages at ``position`` and after, with every version
        below them; returns how many. Their attachment files go too when no other message holds
        them."""
        await self._flush_quietly()

        def op(conn: sqlite3.Connection) -> tuple[int, list[str]]:
            # Every file of the conversation is a candidate: a hidden version below may hold one
            # (collection deletes only files no row holds after the commit).
            held = attachment_rows.refs_of_conversation(conn, conversation_id, 0)
            return tree.delete_from(conn, conversation_id, position), held

        count, held = await self._db.write(op)
        await self._collect(held)
        return count

    async def delete_message(self, message_id: int) -> int:
        """Delete one message of the shown branch (the messages after it stay, now following the
        one before it); its attachment files go when no other message holds them. Returns its
        conversation's id."""
        await self._flush_quietly()

        def op(conn: sqlite3.Connection) -> tuple[int, list[str]]:
            held = [r[0] for r in conn.execute(
                "SELECT sha256 FROM message_attachments WHERE message_id=?", (message_id,))]
            return tree.delete_one(conn, message_id), held

        cid, held = await self._db.write(op)
        await self._collect(held)
        return cid

    # -- versions and branches (see .tree) --------------------------------------------------------

    async def fork(self, conversation_id: int, after_id: int | None) -> None:
        """End the chosen branch at ``after_id`` (None: before the first message): the next
        message added becomes a new version beside the one that followed it, which is kept."""
        await self._flush_quietly()
        await self._db.write(lambda conn: tree.fork(conn, conversation_id, after_id))

    async def choose_version(self, message_id: int) -> int:
        """Show ``message_id``'s branch (persisted); returns its conversation's id."""
        await self._flush_quietly()
        return await self._db.write(lambda conn: tree.choose(conn, message_id))

    async def is_shown(self, message_id: int) -> bool:
        """Whether a message is on its conversation's chosen branch (False: a hidden version)."""
        return await self._db.read(lambda conn: tree.is_shown(conn, message_id))

    async def versions(self, conversation_id: int) -> dict[int, tuple[int, ...]]:
        """For the chosen branch's messages that have other versions: all their ids, oldest first."""
        return await self._db.read(lambda conn: tree.versions(conn, conversation_id))

    async def branch_conversation(self, message_id: int, title: str | None = None) -> Conversation:
        """A new conversation with the chosen branch up to and including ``message_id``."""
        await self._flush_quietly()
        cid = await self._db.write(lambda conn: tree.branch_off(conn, message_id, title))
        conv = await self.get_conversation(cid)
        if conv is None:  # pragma: no cover - written just above in one transaction
            raise StorageError("the new branch could not be read back")
        return conv

    async def get_tree(self, conversation_id: int) -> list[TreeMessage]:
        """Every version of every message of a conversation, in the order they were added."""
        await self._flush_quietly()
        return await self._db.read(lambda conn: tree.whole_tree(conn, conversation_id))

    # -- streaming -----------------------------------------------------------------------------

    async def begin_assistant_message(
        self,
        conversation_id: int,
        *,
        provider: str | None = None,
        model: str | None = None,
        endpoint: str | None = None,
        role: str = "assistant",
    ) -> int:
        """Commit an empty reply row in status ``streaming`` and return its id."""
        mid = await self.add_message(
            conversation_id, role, "", provider=provider, model=model, endpoint=endpoint, status="streaming"
        )
        self._stream_started(mid)
        return mid

    # -- search ----------------------------------------------------------------------------------

    async def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Full-text search across every chat; any user text is safe (see :mod:`.search`).

        Runs on its own thread, never ahead of a chat being opened; a newer search interrupts
        this one, which then raises :class:`asyncio.CancelledError`.
        """
        await self._flush_quietly()  # a live reply's text is searched in its chunks
        return await self._db.search(lambda conn: search_sync(conn, query, limit))

    async def usage(
        self, group_by: str = "provider", *, conversation_id: int | None = None, since: float | None = None
    ) -> list[UsageRow]:
        """Token and cost totals of replies, grouped (see :mod:`.usage`)."""
        await self._flush_quietly()
        return await self._db.read(lambda conn: usage_sync(conn, group_by, conversation_id, since))
