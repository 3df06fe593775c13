"""A file the user attaches, taken into the data folder: its bytes become a blob in the store
(content-addressed, so attaching the same file again costs nothing) and it is described by an
:class:`~victor_gui.services.attachment_types.AttachmentRef` (name, media type, size, kind,
an image's pixel size). The window's draft and ``victor-gui chat --attach`` both use this.

Whether a file is an image is decided by its first bytes (a ``.png`` that is really a PDF is a
document), else by its suffix.
"""

from __future__ import annotations

import asyncio
import mimetypes
from pathlib import Path

from victor_gui.errors import AttachmentError, StorageError
from victor_gui.services.attachment_types import AttachmentKind, AttachmentRef
from victor_gui.storage.store import ConversationStore

# Leading bytes of the image formats the providers take (HEIC: an ISO box with a HEIF brand).
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF87a", 0, "image/gif"),
    (b"GIF89a", 0, "image/gif"),
    (b"WEBP", 8, "image/webp"),
    (b"ftypheic", 4, "image/heic"),
    (b"ftypheix", 4, "image/heic"),
    (b"ftypmif1", 4, "image/heif"),
)


def sniff_media_type(head: bytes, name: str) -> str:
    """The media type from the first bytes (images), else from the name's suffix."""
    for magic, offset, media in _MAGIC:
        if head[offset:offset + len(magic)] == magic and (media != "image/webp" or head[:4] == b"RIFF"):
            return media
    guessed = mimetypes.guess_type(name)[0]
    if guessed and guessed.startswith("image/"):
        return "application/octet-stream"  # named like an image, but not one: read it as a file
    return guessed or "application/octet-stream"


def _describe(path: Path, name: str) -> tuple[str, int | None, int | None]:
    """(media type, width, height) of the file at ``path`` (blocking)."""
    with path.open("rb") as f:
        head = f.read(32)
    media = sniff_media_type(head, name)
    if not media.startswith("image/"):
        return media, None, None
    try:
        from PIL import Image

        with Image.open(path) as image:  # the header only: no pixels are decoded
            width, height = image.size
            orientation = image.getexif().get(0x0112)
        if orientation in (5, 6, 7, 8):  # rotated a quarter turn: shown the other way round
            width, height = height, width
        return media, width, height
    except Exception:  # Pillow cannot read it (HEIC without the extra): size unknown, still sent
        return media, None, None


async def ingest_file(store: ConversationStore, path: Path, *, name: str | None = None,
                      max_bytes: int | None = None) -> AttachmentRef:
    """Copy the file at ``path`` into the store's attachments and describe it.

    :class:`AttachmentError` with one sentence naming the file when it is gone (``vanished``),
    not a file or not readable (``unreadable``), or past ``max_bytes`` (``too_large``).
    """
    shown = name or path.name
    try:
        sha, size = await store.put_attachment_file(path, max_bytes=max_bytes)
    except FileNotFoundError:
        raise AttachmentError(f"{shown} cannot be attached: there is no such file.", reason="vanished",
                              name=shown) from None
    except IsADirectoryError:
        raise AttachmentError(f"{shown} cannot be attached: it is a folder, not a file.",
                              reason="unreadable", name=shown) from None
    except PermissionError:
        raise AttachmentError(f"{shown} cannot be attached: permission to read it was denied.",
                              reason="unreadable", name=shown) from None
    except OSError as exc:
        raise AttachmentError(f"{shown} cannot be attached: {exc.strerror or exc}.", reason="unreadable",
                              name=shown) from exc
    except StorageError as exc:
        if max_bytes is not None and "larger than" in str(exc):
            raise AttachmentError(f"{shown} is larger than the {max_bytes // (1024 * 1024)} MiB allowed.",
                                  reason="too_large", name=shown) from exc
        raise
    media, width, height = await asyncio.to_thread(_describe, store.attachment_path(sha), shown)
    kind = AttachmentKind.IMAGE if media.startswith("image/") else AttachmentKind.DOCUMENT
    return AttachmentRef(sha, shown, media, size, kind, width=width, height=height)


async def ingest_bytes(store: ConversationStore, data: bytes, name: str) -> AttachmentRef:
    """Store pasted bytes (an image from the clipboard) as an attachment named ``name``."""
    sha = await store.put_attachment_bytes(data)
    media, width, height = await asyncio.to_thread(_describe, store.attachment_path(sha), name)
    kind = AttachmentKind.IMAGE if media.startswith("image/") else AttachmentKind.DOCUMENT
    return AttachmentRef(sha, name, media, len(data), kind, width=width, height=height)
