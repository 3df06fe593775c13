"""A stored message's attachments turned into the parts a request carries.

# baseline until att-core merges: the smallest send path the window needs. A user message keeps
# its attachments as ``meta["attachments"]`` (AttachmentRef JSON, the bytes in the blob store);
# at request time each image becomes an ImagePart prepared for the provider's protocol and each
# document's whole text goes before the question. att-core (storage, rows, edit, switch) and
# att-rag (whole or retrieved, sources) own this; their versions win at merge.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from victor_gui.errors import AttachmentError
from victor_gui.providers.types import ImagePart, Message, TextPart
from victor_gui.services import doc_convert, image_prep
from victor_gui.services.attachment_types import AttachmentKind, AttachmentRef
from victor_gui.storage.blobs import BlobStore
from victor_gui.storage.models import StoredMessage

log = logging.getLogger(__name__)

META_KEY = "attachments"


def refs_of(meta: dict[str, Any] | None) -> list[AttachmentRef]:
    """The attachments kept in a message's meta (none: an empty list; bad entries skipped)."""
    out = []
    for data in (meta or {}).get(META_KEY) or ():
        try:
            out.append(AttachmentRef.from_json(data))
        except (TypeError, ValueError, KeyError):
            log.warning("an attachment entry could not be read: %r", data)
    return out


def protocol_of(provider_name: str) -> str:
    """The image protocol a provider speaks (the keys of ``image_prep.IMAGE_LIMITS``)."""
    for key in ("anthropic", "bedrock", "gemini", "ollama"):
        if key in provider_name:
            return key
    return "gemini" if "vertex" in provider_name else "openai"


class AttachmentParts:
    """Prepared images and document texts by content hash, loaded off the loop (:meth:`load`)
    and used by the synchronous history building (:meth:`expand`)."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._images: dict[tuple[str, str], ImagePart] = {}
        self._texts: dict[str, str] = {}

    def load(self, stored: Iterable[StoredMessage], protocol: str) -> None:
        """Prepare what the messages' attachments need (blocking: run it in a thread)."""
        for m in stored:
            for ref in refs_of(m.meta):
                try:
                    self._load(ref, protocol)
                except AttachmentError as exc:
                    log.warning("attachment %s left out: %s", ref.name, exc)

    def load_refs(self, refs: Iterable[AttachmentRef], protocol: str) -> None:
        """Prepare these attachments (blocking: run it in a thread); a failure is logged and
        the attachment left out."""
        for ref in refs:
            try:
                self._load(ref, protocol)
            except AttachmentError as exc:
                log.warning("attachment %s left out: %s", ref.name, exc)

    def _load(self, ref: AttachmentRef, protocol: str) -> None:
        if ref.kind is AttachmentKind.IMAGE:
            if (ref.sha256, protocol) not in self._images:
                prepared = image_prep.prepare_image(self.blobs.read(ref.sha256), protocol, ref.name)
                part = ImagePart.from_bytes(prepared.data, prepared.media_type)
                self._images[(ref.sha256, protocol)] = part
        elif ref.sha256 not in self._texts:
            doc = doc_convert.convert_document(self.blobs.path_of(ref.sha256), name=ref.name,
                                               sha256=ref.sha256)
            self._texts[ref.sha256] = doc.text

    def expand(self, message: Message, meta: dict[str, Any] | None, protocol: str) -> Message:
        """``message`` with its attachments as parts: documents' text first, then the user's
        words, then the images (those not loaded are left out)."""
        refs = refs_of(meta)
        if not refs:
            return message
        parts: list[TextPart | ImagePart] = []
        for ref in refs:
            if ref.kind is AttachmentKind.DOCUMENT and ref.sha256 in self._texts:
                parts.append(TextPart(text=f"Attached document {ref.name}:\n\n{self._texts[ref.sha256]}\n\n"))
        parts.extend(message.parts())
        for ref in refs:
            image = self._images.get((ref.sha256, protocol))
            if ref.kind is AttachmentKind.IMAGE and image is not None:
                parts.append(image)
        return message.model_copy(update={"content": parts})
