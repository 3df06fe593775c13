"""An attached file as stored with its message (the plain record every layer may hold).

It lives at the bottom of the layers because storage keeps it with each message
(``StoredMessage.attachments``) and storage cannot import services; the attachments contract
(:mod:`victor_gui.services.attachment_types`) re-exports it under its usual names.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Literal

# Where a document's text goes when it is sent: decided per question (``auto``), or forced.
DocumentMode = Literal["auto", "whole", "retrieve"]


class AttachmentKind(enum.StrEnum):
    """What an attachment is to the model."""

    IMAGE = "image"
    DOCUMENT = "document"


@dataclass(frozen=True)
class AttachmentRef:
    """An attached file as stored with its message and shown as a chip.

    The original bytes live once in the data folder under ``sha256`` (content-addressed, so the
    same file attached twice is stored once); what is sent is derived from them at send time
    (an image downscaled for the provider then in use, a document's converted text).
    """

    sha256: str  # of the original bytes, lower-case hex
    name: str  # the file name shown (no folder: paths are never stored)
    media_type: str  # of the original: image/png, application/pdf, text/plain, ...
    size: int  # bytes of the original
    kind: AttachmentKind
    tokens: int | None = None  # estimated context cost (document text, or the image's estimate)
    width: int | None = None  # images: pixel size of the original, EXIF orientation applied
    height: int | None = None
    mode: DocumentMode = "auto"  # documents: the user's forced choice, else auto
    pages: int | None = None  # documents: pages/slides/sheets where the format has them

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON-safe values (stored beside the message and in exports)."""
        data = {k: v for k, v in self.__dict__.items() if v is not None}
        data["kind"] = self.kind.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttachmentRef:
        """Read back what :meth:`to_json` wrote (unknown keys ignored)."""
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        known["kind"] = AttachmentKind(known.get("kind", "document"))
        return cls(**known)
