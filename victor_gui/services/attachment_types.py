"""The contract between the parts of attachments: adding files, converting them, putting them
in a request (whole or retrieved), storing them with their message, and the views.

Qt-free plain data, plus the names of the functions each part owns (so they can be built and
tested apart):

* ``services.image_prep`` — ``prepare_image(raw, protocol) -> PreparedImage`` (decode, EXIF
  orientation applied and stripped, first GIF frame, downscaled to the protocol's limits from
  ``IMAGE_LIMITS``); ``services.vision`` — whether a model takes images, and which do.
* ``services.doc_convert`` — ``convert_document(path, *, progress, cancelled) ->
  ConvertedDocument`` (PDF, DOCX, PPTX, XLSX/CSV, HTML, Markdown, text, source code; runs in a
  worker, raises :class:`~victor_gui.errors.AttachmentError`); ``chunk_document``.
* ``services.document_context`` — for one question, the text parts that carry the attached
  documents: whole when they fit the model's real window with room for the reply, else the best
  chunks retrieved with the user's own embedding model (``services.retrieval``), with sources.
* ``storage`` — attachments belong to their message: content-addressed blobs in the data folder
  (``AttachmentRef.sha256``), rows linking them to messages, deleted with the conversation,
  listed in exports.
* ``services.attachment_draft`` — the attachments waiting above one chat's input (the state
  the chips render), converting in the background with progress and cancel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# AttachmentRef, AttachmentKind and DocumentMode live in core (storage keeps the refs with each
# message and cannot import services); they are re-exported here, the contract's one address.
from victor_gui.core.attachment_ref import AttachmentKind, AttachmentRef, DocumentMode

__all__ = [
    "AttachmentKind",
    "AttachmentRef",
    "Chunk",
    "ConvertedDocument",
    "DocumentContext",
    "DocumentMode",
    "DocumentSection",
    "PreparedImage",
    "RetrievedPassage",
]


@dataclass(frozen=True)
class PreparedImage:
    """An image ready for one protocol: re-encoded, downscaled, metadata stripped."""

    data: bytes
    media_type: str
    width: int
    height: int


@dataclass(frozen=True)
class DocumentSection:
    """A stretch of a document's text and where it is (for the sources line)."""

    text: str
    locator: str = ""  # "page 3", "slide 2", "sheet Sales", "§ Installation", "" when none


@dataclass(frozen=True)
class ConvertedDocument:
    """A document's text, in order, in sections that keep their place in the file."""

    name: str
    sha256: str
    media_type: str
    sections: tuple[DocumentSection, ...]
    pages: int | None = None
    warnings: tuple[str, ...] = ()  # e.g. "pages 4-6 have no text layer"

    @property
    def text(self) -> str:
        """The whole text, sections joined by blank lines."""
        return "\n\n".join(s.text for s in self.sections if s.text)


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough to embed and to quote."""

    sha256: str  # of the document it came from
    index: int  # order in the document
    text: str
    locator: str = ""


@dataclass(frozen=True)
class RetrievedPassage:
    """A chunk chosen for a question, as the sources line under the reply shows it."""

    name: str  # the file name
    sha256: str
    locator: str
    text: str  # the quoted passage
    score: float

    def to_json(self) -> dict[str, Any]:
        """JSON-safe fields (kept in the reply's ``meta["sources"]``)."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class DocumentContext:
    """What the attached documents add to one request."""

    text: str  # put in the user's message, before the question
    mode: Literal["whole", "retrieve", "none"]
    sources: tuple[RetrievedPassage, ...] = ()
    notes: tuple[str, ...] = field(default=())  # shown in the transcript, e.g. why retrieval
