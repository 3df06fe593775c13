"""The conversation store: async API over SQLite, built so a chat is never lost.

* Every call runs on the store's own threads (see :mod:`victor_gui.storage.db`); the event loop
  never waits on disk.
* A streamed reply is a row in status ``streaming`` from its first moment; deltas are buffered
  and committed every :attr:`ConversationStore.flush_interval` seconds or
  :attr:`ConversationStore.flush_chars` characters, each flush its own transaction that appends
  one chunk (:mod:`victor_gui.storage.chunks`: linear in the reply, never a rewrite of the row).
  The chunks are folded into the row when the reply ends. If the app dies, the next
  :func:`open_store` that finds no other live process on the file folds them and marks that row
  ``interrupted`` (see :mod:`.instance_lock`): the text committed so far is there.
* A flush that fails (the file is locked by another program, the disk is full) loses nothing:
  the text stays buffered and is retried on the next flush, and the caller hears a
  :class:`StorageError` saying why (from :meth:`ConversationStore.append_partial`, also for a
  failure of the background flush of a stalled stream); never an unretrieved task exception.
* Opening, migration and recovery live in :mod:`victor_gui.storage.opening` (:func:`open_store`).
* Attachments: a message's files are rows of ``message_attachments``
  (:mod:`.attachment_rows`) over content-addressed blobs in ``<data>/attachments``
  (:mod:`.blobs`). Deleting messages deletes the blobs no other message holds, after the
  commit (a failed delete never leaves a row without its file).
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from victor_gui.core.attachment_ref import AttachmentRef
from victor_gui.core.redact import redact
from victor_gui.errors import StorageError
from victor_gui.providers.types import ContentPart, ImagePart, TextPart, Timings, ToolCall, Usage
from victor_gui.storage import attachment_rows, tree
from victor_gui.storage.blobs import BLOB_DIR, BlobStore
from victor_gui.storage.chunks import append_chunk, fold, with_chunks
from victor_gui.storage.db import Database
from victor_gui.storage.instance_lock import INSTANCE, FileLock
from victor_gui.storage.models import (
    MESSAGE_COLUMNS,
    STATUSES,
    Conversation,
    SearchHit,
    StoredMessage,
    message_from_row,
)
from victor_gui.storage.search import search_sync
from victor_gui.storage.tree import TreeMessage
from victor_gui.storage.usage import UsageRow, usage_sync
from victor_gui.storage.vectors import VectorStore

DB_NAME = "conversations.sqlite3"
_CONV_COLUMNS = "id, title, created, updated, system_prompt, params"
log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class _Pending:
    """Text of a streaming reply received but not yet committed."""

    content: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    chars: int = 0
    last_flush: float = field(default_factory=time.monotonic)
    timer: asyncio.TimerHandle | None = None
    # When a flush last failed: size-triggered retries wait flush_interval after it, so a
    # locked file is not retried (and waited on) at every delta.
    failed_at: float | None = None
    # A failure of the background (timer) flush, told to the caller at its next append.
    unreported: StorageError | None = None


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _content_columns(content: str | Sequence[ContentPart | dict[str, Any]]) -> tuple[str, str | None]:
    """(plain text, parts JSON or None): the text is what search indexes and a list shows."""
    if isinstance(content, str):
        return content, None
    parts = [p.model_dump() if isinstance(p, TextPart | ImagePart) else dict(p) for p in content]
    text = "".join(p.get("text", "") for p in parts if p.get("type") == "text")
    return text, _dumps(parts)


def _tool_calls_json(calls: Sequence[ToolCall | dict[str, Any]] | None) -> str | None:
    if not calls:
        return None
    return _dumps([c.model_dump() if isinstance(c, ToolCall) else dict(c) for c in calls])


def _conversation(row: tuple[Any, ...], count: int = 0) -> Conversation:
    return Conversation(row[0], row[1], row[2], row[3], row[4], json.loads(row[5] or "{}"), count)


class ConversationStore:
    """Conversations and messages in one SQLite file. Create with :func:`open_store`."""

    flush_interval = 0.25
    flush_chars = 2048
    # How long a streaming flush waits for another program's lock before it gives up, keeps the
    # text and reports (the next flush retries): short, so the person hears about it at once.
    append_busy_ms = 1000

    def __init__(
        self, path: Path, *, read_only: str | None = None, uri: str | None = None,
        holds: Sequence[FileLock] = (),
    ) -> None:
        self.path = path
        self._db = Database(path, read_only=read_only, uri=uri)
        self._holds = list(holds)  # this process's locks on the file (released by close)
        self._pending: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        # Attachment originals live beside the database, in the same data folder.
        self.blobs = BlobStore(path.parent / BLOB_DIR)

    @property
    def read_only(self) -> str | None:
        """Why nothing can be saved (the file is kept read-only), or None when writable."""
        return self._db.read_only

    @property
    def vectors(self) -> VectorStore:
        """The attached documents' chunks and embedding vectors (same file, same threads)."""
        return VectorStore(self._db)

    @property
    def holds_instance(self) -> bool:
        """Whether this store holds its data folder's single-instance lock (the desktop app)."""
        return any(lock.path.name == INSTANCE and lock.held for lock in self._holds)

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
                (title, now, now, system_prompt, _dumps(params or {})),
            )
            return int(cur.lastrowid or 0)

        cid = await self._db.write(op)
        return Conversation(cid, title, now, now, system_prompt, dict(params or {}))

    async def get_conversation(self, conversation_id: int) -> Conversation | None:
        """The conversation with that id, with its message count; None if it does not exist."""

        def op(conn: sqlite3.Connection) -> Conversation | None:
            row = conn.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations WHERE id=?", (conversation_id,)
            ).fetchone()
            if row is None:
                return None
            count = conn.execute(
                "SELECT count(*) FROM messages WHERE conversation_id=? AND on_path=1", (conversation_id,)
            ).fetchone()
            return _conversation(row, count[0])

        return await self._db.read(op)

    async def list_conversations(self, limit: int = 200, offset: int = 0) -> list[Conversation]:
        """Conversations, most recently updated first."""

        def op(conn: sqlite3.Connection) -> list[Conversation]:
            rows = conn.execute(
                f"SELECT {_CONV_COLUMNS} FROM conversations ORDER BY updated DESC, id DESC LIMIT ? OFFSET ?",
                (limit, offset),
            ).fetchall()
            return [_conversation(r) for r in rows]

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
        for column, value in (("title", title), ("system_prompt", system_prompt), ("params", _dumps(params))):
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
        text, parts = _content_columns(content)
        now = time.time() if created is None else created
        values = {
            "role": role,
            "content": text,
            "content_parts": parts,
            "reasoning": reasoning or "",
            "tool_calls": _tool_calls_json(tool_calls),
            "tool_call_id": tool_call_id,
            "provider": provider,
            "model": model,
            "endpoint": endpoint,
            "status": status,
            "error": redact(error) if error else None,
            "created": now,
            "updated": now,
            "cost": cost,
            "meta": _dumps(meta),
            **_usage_columns(usage, timings),
        }
        if not attachments:
            return await self._db.write(lambda conn: _insert_message(conn, conversation_id, values))

        def op(conn: sqlite3.Connection) -> int:
            mid = _insert_message(conn, conversation_id, values)
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
        text, parts = _content_columns(content)

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

    # -- attachments -----------------------------------------------------------------------------

    async def put_attachment_file(self, source: Path, *, max_bytes: int | None = None) -> tuple[str, int]:
        """Copy a file into the data folder's attachments (once per content; atomically, on a
        worker thread); returns (sha256, size). The blob is kept from collection until a message
        holding it is stored (or :meth:`release_attachments`). ``OSError`` when the file cannot
        be read; :class:`StorageError` when the store is read-only or past ``max_bytes``."""
        self._writable()
        return await asyncio.to_thread(self.blobs.put_file, source, max_bytes=max_bytes)

    async def put_attachment_bytes(self, data: bytes) -> str:
        """Store bytes (a pasted image) as an attachment blob; returns its sha256 (see
        :meth:`put_attachment_file`)."""
        self._writable()
        return await asyncio.to_thread(self.blobs.put_bytes, data)

    async def release_attachments(self, shas: Sequence[str]) -> None:
        """Release the pins of blobs put but not (yet) stored with a message; the files stay."""
        self.blobs.unpin(shas)

    async def discard_attachments(self, shas: Sequence[str]) -> None:
        """Give up blobs put but never sent (a chip removed, a send refused): released, and
        deleted unless a message holds them (or another put of the same content is pending)."""
        self.blobs.unpin(shas)
        await self._collect(shas)

    async def sweep_attachments(self, min_age_s: float = 24 * 3600) -> list[str]:
        """Delete blob files no message holds that are older than ``min_age_s`` (left by a crash
        between a put and its message); returns their hashes. The age keeps a file another
        process (the headless chat) has just put and not yet linked."""
        if self._db.read_only is not None:
            return []

        def op(conn: sqlite3.Connection) -> list[str]:
            return self.blobs.orphans(lambda shas: attachment_rows.referenced(conn, shas), min_age_s)

        candidates = await self._db.read(op)
        await self._collect(candidates)
        return [c for c in candidates if not self.blobs.exists(c)]

    async def read_attachment(self, sha256: str) -> bytes:
        """An attachment's original bytes (read on a worker thread); :class:`StorageError` when
        its file is not in this data folder."""
        return await asyncio.to_thread(self.blobs.read, sha256)

    async def attachment_file(self, ref: AttachmentRef) -> Path:
        """A path to the attachment under its own file name (for converters that go by the
        suffix, and for opening it in the system's viewer); a hard link to the blob, not a copy,
        where the file system allows."""
        return await asyncio.to_thread(self.blobs.named, ref.sha256, ref.name)

    def attachment_path(self, sha256: str) -> Path:
        """Where the blob with this hash lives in the data folder."""
        return self.blobs.path(sha256)

    def _writable(self) -> None:
        if self._db.read_only is not None:
            raise StorageError(self._db.read_only)

    async def _holding(self, refs: Sequence[AttachmentRef], op: Callable[[sqlite3.Connection], T]) -> T:
        """Run the write ``op`` with the blobs of ``refs`` pinned, so a collection running at the
        same time cannot delete a file the new row is about to hold; then release the pins (this
        one, and the one its put took)."""
        shas = [r.sha256 for r in refs]
        if not shas:
            return await self._db.write(op)
        missing = await asyncio.to_thread(self.blobs.pin, shas)
        try:
            if missing:
                names = ", ".join(r.name for r in refs if r.sha256 in missing)
                raise StorageError(f"The attachment {names} is not in this data folder; attach it again.")
            return await self._db.write(op)
        finally:
            self.blobs.unpin(shas)
            if not missing:
                self.blobs.unpin(shas)

    async def _collect(self, candidates: Sequence[str]) -> None:
        """Delete the blobs among ``candidates`` no row holds any more (after the commit that
        dropped them). A failure is logged, never raised: the delete itself has happened."""
        if not candidates:
            return

        def op(conn: sqlite3.Connection) -> list[str]:
            return self.blobs.collect(candidates, lambda shas: attachment_rows.referenced(conn, shas))

        try:
            await self._db.read(op)
        except (OSError, sqlite3.Error) as exc:
            log.warning("removing attachment files failed: %s", exc)

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

    async def import_message(self, conversation_id: int, fields: dict[str, Any]) -> int:
        """Append a message as exported (see :mod:`.export`); ``streaming`` becomes ``interrupted``."""
        values = _imported_message(fields)
        refs = values.pop("attachments", None) or ()

        def op(conn: sqlite3.Connection) -> int:
            mid = _insert_message(conn, conversation_id, values)
            attachment_rows.insert_refs(conn, mid, refs)
            return mid

        return await self._db.write(op)

    async def import_conversations(self, items: Sequence[ImportedConversation]) -> list[int]:
        """Add whole conversations as exported, in ONE transaction: all of them or, if any row
        is refused, none (a half-imported file would leave chats the user cannot tell apart
        from the originals). Returns the new ids in order."""
        rows = [(item, [_imported_message(m) for m in item.messages]) for item in items]

        def op(conn: sqlite3.Connection) -> list[int]:
            ids = []
            for n, (item, messages) in enumerate(rows, 1):
                try:
                    cur = conn.execute(
                        "INSERT INTO conversations(title, created, updated, system_prompt, params)"
                        " VALUES (?,?,?,?,?)",
                        (item.title, item.created, item.created, item.system_prompt, _dumps(item.params)),
                    )
                    cid = int(cur.lastrowid or 0)
                    if item.tree is not None:  # every version, as exported (see .tree); the
                        # tree's entries carry no files (the export lists them on `messages`)
                        tree.insert_tree(conn, cid, [(_imported_message(v), parent, chosen)
                                                     for v, parent, chosen in item.tree])
                    for values in messages if item.tree is None else ():
                        refs = values.pop("attachments", None) or ()
                        mid = _insert_message(conn, cid, values)
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
        self._pending[mid] = _Pending()
        return mid

    async def append_partial(self, message_id: int, text_delta: str = "", reasoning_delta: str = "") -> None:
        """Buffer a delta of a streaming reply; commits when enough time or text has gathered.

        Raises :class:`StorageError` when saving failed (this flush, or the background flush of
        a stalled stream since the last call): the delta and everything unsaved stay buffered and
        the next flush retries, so the caller reports it and goes on streaming.
        """
        pending = self._pending.get(message_id)
        if pending is None:
            raise StorageError(f"message {message_id} is not streaming")
        if text_delta:
            pending.content.append(text_delta)
        if reasoning_delta:
            pending.reasoning.append(reasoning_delta)
        pending.chars += len(text_delta) + len(reasoning_delta)
        now = time.monotonic()
        due = now - pending.last_flush >= self.flush_interval
        backing_off = pending.failed_at is not None and now - pending.failed_at < self.flush_interval
        if due or (pending.chars >= self.flush_chars and not backing_off):
            pending.unreported = None  # this flush reports for itself
            await self.flush(message_id)
        elif pending.timer is None and pending.chars:
            # A stalled stream still gets its text committed within flush_interval.
            loop = asyncio.get_running_loop()
            pending.timer = loop.call_later(self.flush_interval, self._flush_later, message_id)
        if pending.unreported is not None:
            error, pending.unreported = pending.unreported, None
            raise error

    def _flush_later(self, message_id: int) -> None:
        task = asyncio.get_running_loop().create_task(self._flush_in_background(message_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _flush_in_background(self, message_id: int) -> None:
        # Nobody awaits this task: a failure is kept for the next append_partial to raise.
        try:
            await self.flush(message_id)
        except Exception as exc:  # any failure (e.g. the store closing) must reach a caller
            pending = self._pending.get(message_id)
            if pending is not None:
                pending.unreported = exc if isinstance(exc, StorageError) else StorageError(
                    f"Saving this reply failed ({type(exc).__name__}: {exc}).")

    async def _flush_quietly(self, message_id: int | None = None) -> None:
        """Flush before a read; a failure leaves the text buffered (the streaming caller hears
        about it from append_partial) and must not make the read fail."""
        try:
            await self.flush(message_id)
        except StorageError:
            pass

    def _put_back(self, message_id: int, text: str, reasoning: str) -> None:
        """Return text a failed flush took to the front of the buffer (nothing is lost)."""
        pending = self._pending.get(message_id)
        if pending is None:
            return
        pending.failed_at = time.monotonic()
        if text:
            pending.content.insert(0, text)
        if reasoning:
            pending.reasoning.insert(0, reasoning)
        pending.chars += len(text) + len(reasoning)

    def _take(self, message_id: int) -> tuple[str, str]:
        pending = self._pending.get(message_id)
        if pending is None:
            return "", ""
        if pending.timer is not None:
            pending.timer.cancel()
            pending.timer = None
        text, reasoning = "".join(pending.content), "".join(pending.reasoning)
        pending.content.clear()
        pending.reasoning.clear()
        pending.chars = 0
        pending.last_flush = time.monotonic()
        return text, reasoning

    async def flush(self, message_id: int | None = None) -> None:
        """Commit buffered stream text now (one message, or every streaming one).

        Raises :class:`StorageError` if a message's text could not be saved; that text is kept
        buffered and goes with the next flush (or the finish).
        """
        ids = [message_id] if message_id is not None else list(self._pending)
        failed: StorageError | None = None
        for mid in ids:
            text, reasoning = self._take(mid)
            if not (text or reasoning):
                continue
            job = functools.partial(append_chunk, message_id=mid, text=text, reasoning=reasoning)
            try:
                await self._db.write(job, busy_ms=self.append_busy_ms)
            except sqlite3.Error as exc:
                self._put_back(mid, text, reasoning)
                failed = failed or save_failed(exc)
                continue
            pending = self._pending.get(mid)
            if pending is not None:
                pending.failed_at = None
        if failed is not None:
            raise failed

    async def finish_message(
        self,
        message_id: int,
        status: str = "complete",
        *,
        usage: Usage | None = None,
        timings: Timings | None = None,
        cost: float | None = None,
        tool_calls: Sequence[ToolCall | dict[str, Any]] | None = None,
        error: str | None = None,
        model: str | None = None,
        provider: str | None = None,
        endpoint: str | None = None,
        meta: dict[str, Any] | None = None,
    ) -> None:
        """Commit the rest of a streamed reply with its final status, usage, speed and cost.

        ``provider``/``endpoint``/``model`` replace the ones given at the start when the reply
        came from elsewhere (a fallback); None keeps them.
        """
        if status not in STATUSES or status == "streaming":
            raise StorageError(f"cannot finish a message with status {status!r}")
        text, reasoning = self._take(message_id)
        values = {
            "status": status,
            "error": redact(error) if error else None,
            "cost": cost,
            "tool_calls": _tool_calls_json(tool_calls),
            "model": model,
            "provider": provider,
            "endpoint": endpoint,
            "meta": _dumps(meta),
            **_usage_columns(usage, timings),
        }

        try:
            await self._db.write(lambda conn: fold(conn, message_id, text, reasoning, values))
        except sqlite3.Error as exc:
            # Keep the text (a retry of finish_message, or close(), still saves it); the row stays
            # 'streaming' with its chunks, which the next open folds and marks interrupted.
            self._put_back(message_id, text, reasoning)
            raise save_failed(exc) from exc
        self._pending.pop(message_id, None)

    # -- search, lifecycle ---------------------------------------------------------------------

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

    async def verify(self) -> str | None:
        """Run SQLite's quick_check (off the loop); None when healthy, else what it found.

        :func:`open_store` skips this for large files to keep start-up fast; the app calls it
        once the window is shown and, on a problem, offers to start over (the damaged file is
        then moved aside on the next open, see :func:`victor_gui.storage.opening.open_store`).
        """

        def op(conn: sqlite3.Connection) -> str | None:
            try:
                result = conn.execute("PRAGMA quick_check").fetchone()[0]
            except sqlite3.DatabaseError as exc:
                return str(exc)
            return None if result == "ok" else str(result)

        return await self._db.read(op)

    async def close(self) -> None:
        """Commit buffered stream text, drain writes, close the database, release the locks."""
        if not self._db.closed:
            await self._flush_quietly()
            for task in list(self._tasks):
                await task
            await self._db.close()
        holds, self._holds = self._holds, []
        if holds:
            await asyncio.to_thread(_release, holds)


def _release(locks: list[FileLock]) -> None:
    for lock in reversed(locks):  # the writer lock first, then the instance lock
        lock.release(remove=not lock.path.name == INSTANCE)


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


def _imported_message(fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    values["content"] = values.get("content") or ""
    values["reasoning"] = values.get("reasoning") or ""
    values["content_parts"] = _dumps(values.get("content_parts"))
    values["tool_calls"] = _dumps(values.get("tool_calls"))
    values["meta"] = _dumps(values.get("meta"))
    if values.get("status") not in STATUSES or values.get("status") == "streaming":
        values["status"] = "interrupted"
    values["created"] = values.get("created") or time.time()
    values["updated"] = values.get("updated") or values["created"]
    return values


def _usage_columns(usage: Usage | None, timings: Timings | None) -> dict[str, Any]:
    # Usage clamps its counts already; a count built some other way that SQLite cannot hold
    # (it raised OverflowError past 2**63 and the reply was never finished) is stored as unknown.
    return {
        "prompt_tokens": _count(usage.prompt_tokens) if usage else None,
        "completion_tokens": _count(usage.completion_tokens) if usage else None,
        "cached_tokens": _count(usage.cached_tokens) if usage else None,
        "ttft_ms": timings.ttft_ms if timings else None,
        "tokens_per_second": timings.tokens_per_second if timings else None,
    }


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def _insert_message(conn: sqlite3.Connection, conversation_id: int, values: dict[str, Any]) -> int:
    row = conn.execute(
        "SELECT coalesce(max(position), -1) + 1 FROM messages WHERE conversation_id=?", (conversation_id,)
    ).fetchone()
    # A new message follows the chosen branch's last one (see .tree).
    values = {"conversation_id": conversation_id, "position": row[0],
              "parent_id": tree.leaf(conn, conversation_id), **values}
    cur = conn.execute(
        f"INSERT INTO messages({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    conn.execute("UPDATE conversations SET updated=? WHERE id=?", (values["updated"], conversation_id))
    return int(cur.lastrowid or 0)


def save_failed(exc: sqlite3.Error) -> StorageError:
    """The typed error for a streaming save that failed: why, and that the text is kept."""
    text = str(exc)
    if "locked" in text or "busy" in text:
        why = "the conversation file is locked by another program"
    elif "full" in text:
        why = "the disk is full"
    else:
        why = text
    return StorageError(f"Saving this reply failed ({why}). It stays on screen; saving is retried.")
