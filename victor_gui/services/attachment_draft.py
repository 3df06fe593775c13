"""The attachments waiting above one chat's input: the one owner of the chips' state.

Qt-free. A file (a path from the attach button, a drop, a file manager's paste) or pasted
bytes (an image from the clipboard) becomes a :class:`DraftItem` at once, shown as a chip, and
then, off the event loop:

1. a document is checked first (:func:`.doc_convert.check_document`: size, format, vanished;
   milliseconds, so a 200 MB log is refused before a byte is copied);
2. its bytes go into the store's attachments (:func:`.attachment_files.ingest_file` /
   :func:`~.attachment_files.ingest_bytes`: content-addressed, so a file that moves after
   attaching is still there and the same file is stored once);
3. an image gets a thumbnail; a document is converted to text in a worker
   (:func:`.doc_worker.convert_in_worker`) with progress, cancelled when its chip is removed;
4. its estimated tokens are worked out for the current provider's protocol (images:
   :func:`.image_limits.image_tokens_estimate`; documents: :func:`.token_count.estimate_tokens`
   of the converted text), and the item is ready with its
   :class:`~victor_gui.services.attachment_types.AttachmentRef`.

A step that fails puts the item in the ``error`` state with the clear sentence of its
:class:`~victor_gui.errors.AttachmentError` (the chip shows it; there is never a dialog).
Every change is told as a :class:`DraftEvent` to the listeners (the chips view renders them).
A removed chip's blob is given back (:meth:`ConversationStore.discard_attachments`) unless a
message holds it; the converted documents of the items sent go to the session
(:meth:`ChatSession.use_converted`, via :meth:`AttachmentDraft.documents`) so nothing is
converted twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import itertools
import logging
import stat
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from victor_gui.core.listeners import Listeners
from victor_gui.errors import AttachmentError, StorageError
from victor_gui.services import attachment_files, doc_convert, token_count
from victor_gui.services.attachment_types import AttachmentKind, AttachmentRef, ConvertedDocument
from victor_gui.services.doc_job import MAX_BINARY_FILE_BYTES
from victor_gui.services.doc_worker import convert_in_worker
from victor_gui.services.image_limits import DEFAULT_PROTOCOL, MAX_SOURCE_BYTES, image_tokens_estimate
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

DraftState = Literal["adding", "converting", "ready", "error"]
# A progress change smaller than this is not told (a large file would flood the views).
_PROGRESS_STEP = 0.01
THUMBNAIL_SIDE = 96


@dataclass(frozen=True)
class DraftItem:
    """One attachment waiting to be sent, as its chip shows it."""

    id: int  # unique in this draft, from the moment the item appears
    name: str
    kind: AttachmentKind
    state: DraftState
    size: int | None = None  # bytes, once known
    progress: float | None = None  # 0..1 while converting
    ref: AttachmentRef | None = None  # set when ready
    error: str | None = None  # the clear sentence, in the error state
    reason: str | None = None  # AttachmentError.reason, in the error state
    thumbnail: bytes | None = None  # a small PNG, for images
    document: ConvertedDocument | None = None  # a ready document's text (handed to the session)

    @property
    def sha256(self) -> str | None:
        """The content hash, once the bytes are stored."""
        return self.ref.sha256 if self.ref is not None else None

    @property
    def tokens(self) -> int | None:
        """The estimated context cost, once ready."""
        return self.ref.tokens if self.ref is not None else None


@dataclass(frozen=True)
class DraftEvent:
    """A change of the draft: an item ``added``, ``changed`` (state, progress) or ``removed``,
    or every item ``cleared`` (``item`` None)."""

    kind: Literal["added", "changed", "removed", "cleared"]
    item: DraftItem | None = None


def kind_of(name: str, media_type: str | None = None) -> AttachmentKind:
    """Image or document, from the media type (sniffed from the bytes) or else the name."""
    media = media_type or attachment_files.sniff_media_type(b"", name)
    return AttachmentKind.IMAGE if media.startswith("image/") else AttachmentKind.DOCUMENT


def thumbnail_png(raw: bytes, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """A small PNG of an image (the chip's thumbnail), None when Pillow cannot read it. JPEGs
    decode at a reduced scale (a 12 MP photo costs milliseconds, not a full decode)."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.seek(0)  # an animation: its first frame
            image.draft("RGB", (side, side))
            small = ImageOps.exif_transpose(image) or image
            small.thumbnail((side, side))
            out = io.BytesIO()
            small.convert("RGBA").save(out, "PNG")
            return out.getvalue()
    except Exception:  # a HEIC without its extra, a broken file: the chip shows the image icon
        return None


def _preflight(path: Path) -> str | None:
    """The media type of the file at ``path`` from its first bytes, after refusing what is not
    a regular file (blocking). None: it is not there (``ingest_file`` says so in words).

    A device (``/dev/zero`` never ends) or a FIFO (its open blocks until a writer comes) would
    hold the worker forever; a folder is not a file. The stat answers without opening."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    if stat.S_ISDIR(info.st_mode):
        raise AttachmentError(f"{path.name} is a folder, not a file; attach the files in it.",
                              reason="unsupported", name=path.name)
    if not stat.S_ISREG(info.st_mode):
        raise AttachmentError(f"{path.name} is not a regular file (a device or a pipe), so it cannot be "
                              "attached.", reason="unsupported", name=path.name)
    with path.open("rb") as f:
        head = f.read(32)
    return attachment_files.sniff_media_type(head, path.name)


async def ingest_bounded(store: ConversationStore, path: Path) -> AttachmentRef:
    """Copy ``path`` into the store's attachments within the bounds the converters keep: a
    document is refused from its size and first bytes before anything is copied (a 200 MB log
    in milliseconds), a device or folder without being opened, and every copy is bounded. The
    window's draft and the one-shot ``chat --attach`` both come here."""
    try:
        media = await asyncio.to_thread(_preflight, path)
    except PermissionError:
        media = None  # ingest_file says what is wrong, in words
    if media is None:
        return await attachment_files.ingest_file(store, path)
    if media.startswith("image/"):
        # The bound is checked while copying too (a file still growing stops there).
        return await attachment_files.ingest_file(store, path, max_bytes=MAX_SOURCE_BYTES)
    await asyncio.to_thread(doc_convert.check_document, path)
    return await attachment_files.ingest_file(store, path, max_bytes=MAX_BINARY_FILE_BYTES)


class AttachmentDraft:
    """The attachments above one chat's input; see the module doc.

    ``store`` keeps the bytes (None until the conversations are open: adding then fails with a
    clear sentence). ``protocol`` is the one image token estimates are for (:meth:`set_protocol`).
    """

    def __init__(self, store: ConversationStore | None = None, *, protocol: str = DEFAULT_PROTOCOL) -> None:
        self.store = store
        self.protocol = protocol
        self._items: dict[int, DraftItem] = {}
        self._work: dict[int, asyncio.Task[DraftItem]] = {}
        self._ids = itertools.count(1)
        self._listeners: Listeners[[DraftEvent]] = Listeners(log, "an attachment view failed")
        self._discarding: set[asyncio.Task[None]] = set()

    # -- reading -----------------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[DraftEvent], None]) -> Callable[[], None]:
        """Hear every change; returns the call that stops it."""
        return self._listeners.add(listener)

    def items(self) -> list[DraftItem]:
        """Every item, in the order added (errors included)."""
        return list(self._items.values())

    def refs(self) -> list[AttachmentRef]:
        """The ready attachments, in order: what Send passes to the session."""
        return [i.ref for i in self._items.values() if i.state == "ready" and i.ref is not None]

    @staticmethod
    def documents(items: Sequence[DraftItem]) -> list[ConvertedDocument]:
        """The converted documents of ``items`` (for ``ChatSession.use_converted``)."""
        return [i.document for i in items if i.document is not None]

    @property
    def busy(self) -> bool:
        """Whether an item is still being added or converted."""
        return any(i.state in ("adding", "converting") for i in self._items.values())

    def get(self, key: int | str) -> DraftItem | None:
        """The item with this id, or this content hash."""
        if isinstance(key, int):
            return self._items.get(key)
        return next((i for i in self._items.values() if i.sha256 == key), None)

    # -- changing ----------------------------------------------------------------------------------

    async def add_path(self, path: Path | str) -> DraftItem:
        """Attach a file; returns the item as it ended (ready, or in the error state)."""
        path = Path(path)
        item = self._add(DraftItem(next(self._ids), path.name, kind_of(path.name), "adding"))

        return await self._run(item, lambda store: ingest_bounded(store, path))

    async def add_bytes(self, name: str, raw: bytes, media_type: str) -> DraftItem:
        """Attach bytes that have no file (an image pasted from the clipboard)."""
        item = self._add(DraftItem(next(self._ids), name, kind_of(name, media_type), "adding", size=len(raw)))

        async def ingest(store: ConversationStore) -> AttachmentRef:
            return await attachment_files.ingest_bytes(store, raw, name)

        return await self._run(item, ingest)

    def remove(self, key: int | str) -> bool:
        """Take an item away (by id or content hash): one still converting is cancelled, and its
        stored bytes are given back unless a message holds them."""
        item = self.get(key)
        if item is None:
            return False
        self._items.pop(item.id, None)
        work = self._work.pop(item.id, None)
        if work is not None and not work.done():
            work.cancel()
        self._discard([item])
        self._listeners.notify(DraftEvent("removed", item))
        return True

    def clear(self) -> None:
        """Take every item away (the chat was left): conversions stop, stored bytes go back."""
        items = list(self._items.values())
        for work in self._work.values():
            if not work.done():
                work.cancel()
        self._work.clear()
        self._items.clear()
        self._discard(items)
        self._listeners.notify(DraftEvent("cleared"))

    def restore(self, items: Sequence[DraftItem]) -> None:
        """Put back ready items taken by a send that did not go (the model takes no images)."""
        for item in items:
            if item.state == "ready" and self.get(item.id) is None:
                self._add(item)

    def take(self) -> list[DraftItem]:
        """The ready items (for a send), and the draft empties; the items' bytes stay stored
        (the message about to be stored holds them; :meth:`give_back` if it never is)."""
        ready = [i for i in self._items.values() if i.state == "ready"]
        self._discard([i for i in self._items.values() if i.state != "ready"])
        self._items.clear()
        self._work.clear()
        self._listeners.notify(DraftEvent("cleared"))
        return ready

    def give_back(self, items: Sequence[DraftItem]) -> None:
        """Taken items that will not be sent after all: their bytes go back to the store."""
        self._discard(items)

    def set_protocol(self, protocol: str) -> None:
        """Estimate images for ``protocol`` from now on (the provider changed); ready images'
        token counts follow."""
        if protocol == self.protocol:
            return
        self.protocol = protocol
        for item in list(self._items.values()):
            ref = item.ref
            if item.state == "ready" and ref is not None and ref.kind is AttachmentKind.IMAGE:
                self._update(item, ref=dataclasses.replace(ref, tokens=self._image_tokens(ref)))

    # -- the steps ---------------------------------------------------------------------------------

    def _add(self, item: DraftItem) -> DraftItem:
        self._items[item.id] = item
        self._listeners.notify(DraftEvent("added", item))
        return item

    def _update(self, item: DraftItem, **changes: object) -> DraftItem:
        """The item with ``changes``, told to the views; unchanged if it was removed meanwhile."""
        if item.id not in self._items:
            return item
        new = dataclasses.replace(self._items[item.id], **changes)  # type: ignore[arg-type]
        self._items[item.id] = new
        self._listeners.notify(DraftEvent("changed", new))
        return new

    def _discard(self, items: Sequence[DraftItem]) -> None:
        """Give the stored bytes of ``items`` back (off the caller: a task kept until done)."""
        shas = [i.sha256 for i in items if i.sha256 is not None]
        if not shas or self.store is None:
            return
        store = self.store

        async def discard() -> None:
            try:
                await store.discard_attachments(shas)
            except (StorageError, OSError) as exc:  # a read-only folder: the sweep collects them
                log.warning("giving back attachments failed: %s", exc)

        task = asyncio.get_running_loop().create_task(discard())
        self._discarding.add(task)
        task.add_done_callback(self._discarding.discard)

    async def _run(self, item: DraftItem, ingest: Callable[[ConversationStore], Awaitable[AttachmentRef]],
                   ) -> DraftItem:
        """Run the steps of ``item`` as a task that :meth:`remove` can cancel."""
        work = asyncio.get_running_loop().create_task(self._complete(item, ingest))
        self._work[item.id] = work
        try:
            return await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller itself was cancelled
            return item  # removed while it ran
        finally:
            if self._work.get(item.id) is work:
                del self._work[item.id]

    async def _complete(self, item: DraftItem,
                        ingest: Callable[[ConversationStore], Awaitable[AttachmentRef]]) -> DraftItem:
        ref: AttachmentRef | None = None
        try:
            if self.store is None:
                raise AttachmentError(f"{item.name} cannot be attached yet: your conversations are "
                                      "still opening.", reason="unreadable", name=item.name)
            ref = await ingest(self.store)
            if item.id not in self._items:  # removed while copying
                self._discard_ref(ref)
                return item
            item = self._update(item, size=ref.size, kind=ref.kind)
            twin = next((i for i in self._items.values()
                         if i.sha256 == ref.sha256 and i.id != item.id and i.state == "ready"), None)
            if twin is not None:  # the same content is already attached: one chip is enough
                self._items.pop(item.id, None)
                self._discard_ref(ref)  # this put's hold; the twin keeps its own
                self._listeners.notify(DraftEvent("removed", item))
                return twin
            if ref.kind is AttachmentKind.IMAGE:
                return await self._image(item, ref)
            return await self._document(item, ref)
        except asyncio.CancelledError:
            if ref is not None:
                self._discard_ref(ref)
            raise
        except AttachmentError as exc:
            if ref is not None:
                self._discard_ref(ref)
            if exc.reason == "cancelled" or item.id not in self._items:
                return item
            return self._update(item, state="error", error=exc.message, reason=exc.reason, progress=None)
        except (OSError, StorageError) as exc:
            if ref is not None:
                self._discard_ref(ref)
            log.warning("attaching %s failed: %s", item.name, exc)
            detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            words = f"{item.name} cannot be attached ({detail})."
            return self._update(item, state="error", error=words, reason="unreadable", progress=None)

    def _discard_ref(self, ref: AttachmentRef) -> None:
        self._discard([DraftItem(0, ref.name, ref.kind, "ready", ref=ref)])

    def _image_tokens(self, ref: AttachmentRef) -> int | None:
        if not ref.width or not ref.height:
            return None  # size unknown (a HEIC without its extra): no estimate rather than a wrong one
        return image_tokens_estimate(ref.width, ref.height, self.protocol)

    async def _image(self, item: DraftItem, ref: AttachmentRef) -> DraftItem:
        assert self.store is not None
        raw = await self.store.read_attachment(ref.sha256)
        thumb = await asyncio.to_thread(thumbnail_png, raw)
        ref = dataclasses.replace(ref, tokens=self._image_tokens(ref))
        return self._update(item, state="ready", ref=ref, thumbnail=thumb, progress=None)

    async def _document(self, item: DraftItem, ref: AttachmentRef) -> DraftItem:
        assert self.store is not None
        item = self._update(item, state="converting", progress=0.0)
        told = [0.0]

        def progress(done: int, total: int) -> None:  # on the loop
            fraction = min(1.0, done / total) if total > 0 else 0.0
            if fraction - told[0] >= _PROGRESS_STEP or fraction >= 1.0:
                told[0] = fraction
                current = self._items.get(item.id)
                if current is not None and current.state == "converting":
                    self._update(current, progress=fraction)

        path = await self.store.attachment_file(ref)  # under its own name: converters go by suffix
        converted = await convert_in_worker(path, progress=progress)
        # Named as the user named it, whatever the converter saw on disk (as the session does).
        doc = ConvertedDocument(ref.name, ref.sha256, ref.media_type, converted.sections,
                                converted.pages, converted.warnings)
        # The joined text of a large document is a big string: counted off the loop.
        tokens = await asyncio.to_thread(lambda: token_count.estimate_tokens(doc.text))
        ref = dataclasses.replace(ref, tokens=tokens, pages=doc.pages)
        return self._update(item, state="ready", ref=ref, document=doc, progress=None)
