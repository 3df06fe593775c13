"""The store's attachment files: content-addressed blobs in ``<data>/attachments``.

A message's files are rows of ``message_attachments`` (:mod:`.attachment_rows`) over blobs
(:mod:`.blobs`). A blob put is pinned until a message holding it is stored; deleting messages
deletes the blobs no other message holds, after the commit (a failed delete never leaves a row
without its file).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from victor_gui.core.attachment_ref import AttachmentRef
from victor_gui.errors import StorageError
from victor_gui.storage import attachment_rows
from victor_gui.storage.stream_writes import StreamWrites

log = logging.getLogger(__name__)
T = TypeVar("T")


class StoreAttachments(StreamWrites):
    """Putting, reading, pinning and collecting attachment blobs (part of
    :class:`~victor_gui.storage.store.ConversationStore`)."""

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
