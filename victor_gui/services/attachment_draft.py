"""The attachments waiting above one chat's input: the one owner of the chips' state.

Qt-free. A file (a path from the attach button, a drop, a file manager's paste) or pasted
bytes (an image from the clipboard) becomes a :class:`DraftItem` at once, shown as a chip, and
then, off the event loop:

1. its bytes are hashed while they are copied into the data folder's blob store (so a file that
   moves or vanishes after attaching is still there, and the same file is stored once);
2. an image is measured and a thumbnail made (:mod:`.image_prep`); a document is converted to
   text in a worker (:func:`.doc_convert.convert_in_worker`) with progress and cancel;
3. the estimated tokens are worked out (images: ``image_tokens_estimate``; documents: the
   text's estimate from :mod:`.token_count`), and the item is ready with its
   :class:`~victor_gui.services.attachment_types.AttachmentRef`.

A step that fails puts the item in the ``error`` state with the clear sentence of its
:class:`~victor_gui.errors.AttachmentError` (the chip shows it; there is never a dialog).
Every change is told as a :class:`DraftEvent` to the listeners (the chips view renders them).
Removing an item that is still converting cancels its conversion.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import mimetypes
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from victor_gui.core.listeners import Listeners
from victor_gui.errors import AttachmentError
from victor_gui.services import doc_convert, image_prep, token_count
from victor_gui.services.attachment_types import AttachmentKind, AttachmentRef
from victor_gui.storage.blobs import BlobStore

log = logging.getLogger(__name__)

DraftState = Literal["adding", "converting", "ready", "error"]
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".heic", ".heif"}
# A progress change smaller than this is not told (a 200 MB file would flood the views).
_PROGRESS_STEP = 0.01


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
    """Image or document, from the media type or else the name's suffix."""
    if media_type and media_type.startswith("image/"):
        return AttachmentKind.IMAGE
    return AttachmentKind.IMAGE if Path(name).suffix.lower() in IMAGE_SUFFIXES else AttachmentKind.DOCUMENT


def media_type_of(name: str, kind: AttachmentKind) -> str:
    """The media type of an attached file by its name."""
    guessed = mimetypes.guess_type(name)[0]
    if kind is AttachmentKind.IMAGE:
        return guessed if guessed and guessed.startswith("image/") else "image/png"
    return guessed or doc_convert.media_type_of(name)


class AttachmentDraft:
    """The attachments above one chat's input; see the module doc.

    ``blobs`` is where the bytes go (None until the store is open: adding then fails with a
    clear sentence). ``protocol`` is the one image token estimates are for.
    """

    def __init__(self, blobs: BlobStore | None = None, *, protocol: str = "anthropic") -> None:
        self.blobs = blobs
        self.protocol = protocol
        self._items: dict[int, DraftItem] = {}
        self._cancels: dict[int, threading.Event] = {}
        self._ids = itertools.count(1)
        self._listeners: Listeners[[DraftEvent]] = Listeners(log, "an attachment view failed")

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
        cancel = self._cancels[item.id]

        async def store() -> tuple[str, int]:
            blobs = self._blobs(path.name)
            return await asyncio.to_thread(blobs.put_file, path, cancelled=cancel)

        return await self._complete(item, store, media_type_of(path.name, item.kind))

    async def add_bytes(self, name: str, raw: bytes, media_type: str) -> DraftItem:
        """Attach bytes that have no file (an image pasted from the clipboard)."""
        item = self._add(DraftItem(next(self._ids), name, kind_of(name, media_type), "adding", size=len(raw)))

        async def store() -> tuple[str, int]:
            blobs = self._blobs(name)
            return await asyncio.to_thread(blobs.put_bytes, raw), len(raw)

        return await self._complete(item, store, media_type)

    def remove(self, key: int | str) -> bool:
        """Take an item away (by id or content hash); one still converting is cancelled."""
        item = self.get(key)
        if item is None:
            return False
        self._items.pop(item.id, None)
        cancel = self._cancels.pop(item.id, None)
        if cancel is not None:
            cancel.set()
        self._listeners.notify(DraftEvent("removed", item))
        return True

    def clear(self) -> None:
        """Take every item away (sent, or a new chat); conversions still running are cancelled."""
        for cancel in self._cancels.values():
            cancel.set()
        self._cancels.clear()
        self._items.clear()
        self._listeners.notify(DraftEvent("cleared"))

    def restore(self, items: Sequence[DraftItem]) -> None:
        """Put back ready items taken by a send that did not go (the model takes no images)."""
        for item in items:
            if item.state == "ready" and self.get(item.id) is None:
                self._add(item)

    def take(self) -> list[DraftItem]:
        """The ready items (for a send), and the draft empties."""
        ready = [i for i in self._items.values() if i.state == "ready"]
        self.clear()
        return ready

    # -- the steps ---------------------------------------------------------------------------------

    def _blobs(self, name: str) -> BlobStore:
        if self.blobs is None:
            raise AttachmentError(f"{name} cannot be attached yet: your conversations are still opening.",
                                  reason="unreadable", name=name)
        return self.blobs

    def _add(self, item: DraftItem) -> DraftItem:
        self._items[item.id] = item
        self._cancels.setdefault(item.id, threading.Event())
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

    async def _complete(self, item: DraftItem, store: Callable[[], Awaitable[tuple[str, int]]],
                        media_type: str) -> DraftItem:
        cancel = self._cancels[item.id]
        try:
            sha, size = await store()
            if item.id not in self._items:
                return item  # removed while copying
            item = self._update(item, size=size)
            twin = next((i for i in self._items.values()
                         if i.sha256 == sha and i.id != item.id and i.state == "ready"), None)
            if twin is not None:  # the same content is already attached: one chip is enough
                self.remove(item.id)
                return twin
            if item.kind is AttachmentKind.IMAGE:
                ref, thumb = await asyncio.to_thread(self._image, item, sha, size, media_type)
                return self._finish(item, ref, thumbnail=thumb)
            ref = await self._document(item, sha, size, media_type, cancel)
            return self._finish(item, ref)
        except AttachmentError as exc:
            if exc.reason == "cancelled" or item.id not in self._items:
                return item
            return self._update(item, state="error", error=str(exc), reason=exc.reason, progress=None)
        except OSError as exc:
            log.warning("attaching %s failed: %s", item.name, exc)
            words = f"{item.name} cannot be attached ({exc.strerror or exc})."
            return self._update(item, state="error", error=words, reason="unreadable", progress=None)

    def _finish(self, item: DraftItem, ref: AttachmentRef, thumbnail: bytes | None = None) -> DraftItem:
        self._cancels.pop(item.id, None)
        return self._update(item, state="ready", ref=ref, thumbnail=thumbnail, progress=None)

    def _image(self, item: DraftItem, sha: str, size: int, media_type: str) -> tuple[AttachmentRef, bytes]:
        assert self.blobs is not None
        raw = self.blobs.read(sha)
        width, height = image_prep.image_size(raw, item.name)
        thumb = image_prep.thumbnail_png(raw, name=item.name)
        tokens = image_prep.image_tokens_estimate(width, height, self.protocol)
        ref = AttachmentRef(sha, item.name, media_type, size, AttachmentKind.IMAGE, tokens=tokens,
                            width=width, height=height)
        return ref, thumb

    async def _document(self, item: DraftItem, sha: str, size: int, media_type: str,
                        cancel: threading.Event) -> AttachmentRef:
        assert self.blobs is not None
        item = self._update(item, state="converting", progress=0.0)
        loop = asyncio.get_running_loop()
        told = [0.0]

        def progress(fraction: float) -> None:  # called in the worker thread
            if fraction - told[0] >= _PROGRESS_STEP or fraction >= 1.0:
                told[0] = fraction
                loop.call_soon_threadsafe(self._progress, item.id, fraction)

        doc = await doc_convert.convert_in_worker(self.blobs.path_of(sha), name=item.name, sha256=sha,
                                                  progress=progress, cancelled=cancel)
        if cancel.is_set():
            raise AttachmentError(f"Converting {item.name} was cancelled.", reason="cancelled",
                                  name=item.name)
        # The joined text of a large document is a big copy: made off the loop too.
        tokens = await asyncio.to_thread(lambda: token_count.estimate_document_tokens(doc.text))
        return AttachmentRef(sha, item.name, media_type, size, AttachmentKind.DOCUMENT, tokens=tokens,
                             pages=doc.pages)

    def _progress(self, item_id: int, fraction: float) -> None:
        item = self._items.get(item_id)
        if item is not None and item.state == "converting":
            self._update(item, progress=min(1.0, fraction))
