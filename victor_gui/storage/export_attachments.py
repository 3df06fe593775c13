"""A message's attachments in the JSON and Markdown exports (see :mod:`.export` for the format).

What goes in a JSON export: the :class:`AttachmentRef` fields, plus the original bytes as base64
for images up to :data:`IMAGE_INLINE_LIMIT` and other files up to :data:`FILE_INLINE_LIMIT`
(an export is one JSON text held in memory: a 200 MB PDF in it would make a 270 MB string for
a file the user still has). A file left out says why (``"left_out": "size"`` or ``"missing"``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from victor_gui.core.attachment_ref import AttachmentKind, AttachmentRef
from victor_gui.errors import StorageError

if TYPE_CHECKING:
    from victor_gui.storage.store import ConversationStore

IMAGE_INLINE_LIMIT = 20 * 1024 * 1024
FILE_INLINE_LIMIT = 5 * 1024 * 1024


def inline_limit(ref: AttachmentRef) -> int:
    """The largest original that an export carries whole, for this kind of file."""
    return IMAGE_INLINE_LIMIT if ref.kind is AttachmentKind.IMAGE else FILE_INLINE_LIMIT


async def attachment_entries(
    store: ConversationStore, refs: Sequence[AttachmentRef], scrub: Callable[[Any], Any]
) -> list[dict[str, Any]]:
    """The export entries of a message's attachments (``scrub`` redacts the ref's text fields;
    the base64 data is added after it, so redaction can never alter the bytes)."""
    out = []
    for ref in refs:
        entry: dict[str, Any] = scrub(ref.to_json())
        if ref.size > inline_limit(ref):
            entry["left_out"] = "size"
        else:
            try:
                data = await store.read_attachment(ref.sha256)
            except StorageError:
                entry["left_out"] = "missing"
            else:
                entry["data"] = base64.b64encode(data).decode("ascii")
        out.append(entry)
    return out


class PendingBlobs:
    """The attachment bytes of an import, checked first and written as blobs just before the
    rows (:meth:`put`), then released from their pins once the rows are in (:meth:`release`)."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self._put: list[str] = []

    async def put(self, store: ConversationStore) -> None:
        for data in self.data.values():
            self._put.append(await store.put_attachment_bytes(data))

    async def release(self, store: ConversationStore, *, discard: bool = False) -> None:
        if discard:
            await store.discard_attachments(self._put)
        else:
            await store.release_attachments(self._put)
        self._put.clear()


def imported_attachments(value: Any, blobs: PendingBlobs) -> tuple[AttachmentRef, ...]:
    """A message's ``attachments`` entry of an export, checked: refs, with any bytes kept in
    ``blobs``. ``ValueError`` says what is malformed (the import then adds nothing)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ValueError("'attachments' is not a list")
    refs = []
    for n, entry in enumerate(value, 1):
        if not isinstance(entry, dict):
            raise ValueError(f"attachment {n} is not an object")
        try:
            ref = AttachmentRef.from_json(entry)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"attachment {n} is malformed ({exc})") from None
        if not isinstance(ref.sha256, str) or len(ref.sha256) != 64:
            raise ValueError(f"attachment {n} has no sha256")
        data = entry.get("data")
        if data is not None:
            try:
                raw = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError, TypeError):
                raise ValueError(f"attachment {n} ({ref.name}) has data that is not base64") from None
            if hashlib.sha256(raw).hexdigest() != ref.sha256:
                raise ValueError(f"attachment {n} ({ref.name}) does not match its sha256")
            blobs.data[ref.sha256] = raw
        refs.append(ref)
    return tuple(refs)


def markdown_attachments(refs: Sequence[AttachmentRef]) -> list[str]:
    """Lines naming a message's attachments; images are linked by file name (put the files
    beside the .md to see them)."""
    lines = []
    for ref in refs:
        label = ref.name.replace("[", "(").replace("]", ")")
        size = _size_words(ref.size)
        if ref.kind is AttachmentKind.IMAGE:
            lines.append(f"![{label}]({quote(ref.name)}) _{label} · {ref.media_type} · {size}_")
        else:
            name = ref.name.replace("`", "'")
            lines.append(f"- Attached: `{name}` · {ref.media_type} · {size}")
    return lines


def _size_words(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"
