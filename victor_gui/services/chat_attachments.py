"""The attachments of a chat, as a mixin of :class:`~victor_gui.services.chat_session.ChatSession`
(same object; kept apart so each file holds one responsibility, like :mod:`.chat_tools`).

* Before a message with files is stored (:meth:`AttachmentsMixin._ready_attachments`): images
  need a model that takes them (:func:`victor_gui.services.vision.check_images`; the refusal raises
  :class:`~victor_gui.errors.ModelTakesNoImagesError` with the models that do), each image must
  decode for the provider's protocol and each document must convert; any failure is raised
  BEFORE anything is stored or sent, so the window keeps the draft (text and chips) as it was
  and the user can switch model or remove a file. Nothing half-sent, nothing lost.
* Building a request: a stored message's images are read from the blob store and its documents
  converted (both once per session, by content hash); the documents' text for that message
  (:func:`victor_gui.services.document_context.build`: whole, or retrieved passages) goes into
  the user message before the question; images go as image parts, prepared for the protocol
  of the provider that receives them (:func:`victor_gui.services.image_prep.prepare_image`, per
  fallback candidate too). The reply's ``meta["sources"]`` keeps the retrieved passages.
* A model that does not take images (after a switch, or a fallback) gets the history with the
  images replaced by a line saying so (``repair_history``), and the transcript gets an
  ``images_left_out`` note whenever that count changes, so no image is dropped silently.
* A file whose blob is gone, or that no longer converts, is named in the request in its place
  (and in a ``documents`` note) instead of failing every later reply of the chat.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import AttachmentError, StorageError, VictorGuiError
from victor_gui.providers.base import BaseProvider
from victor_gui.providers.protocols.tool_history import IMAGE_OMITTED
from victor_gui.providers.types import ContentPart, ImagePart, Message, TextPart
from victor_gui.services import notes, vision
from victor_gui.services.attachment_types import (
    AttachmentKind,
    AttachmentRef,
    ConvertedDocument,
    DocumentContext,
    DocumentMode,
    RetrievedPassage,
)
from victor_gui.services.reply_types import ReplyEvent
from victor_gui.storage.models import StoredMessage
from victor_gui.storage.store import ConversationStore

log = logging.getLogger(__name__)

# Kinds of the notes this module stores (``meta["kind"]``).
IMAGES_LEFT_OUT = "images_left_out"
DOCUMENTS = "documents"


def protocol_of(provider: BaseProvider) -> str:
    """The wire protocol a provider speaks (``openai``, ``ollama``, ``anthropic``, ``gemini``,
    ``bedrock``, ...): the key of the image limits table."""
    spec = getattr(provider, "spec", None)
    return str(getattr(spec, "protocol", None) or "openai")


def images_left_out_text(count: int, model: str) -> str:
    """The transcript note when earlier images are not sent to a model without vision."""
    images = "1 image" if count == 1 else f"{count} images"
    return (f"{images} earlier in this chat {'is' if count == 1 else 'are'} left out of what {model} "
            "sees: it does not take images.")


class AttachmentsMixin:
    """The attachments half of a chat session; see the module doc. The attributes and
    ``_note`` are the session's (set in ``ChatSession.__init__``)."""

    store: ConversationStore
    conversation_id: int
    provider: BaseProvider
    model: str
    max_tokens: int
    _emit: Callable[[ReplyEvent], None]

    async def _note(self, kind: str, text: str, extra: dict[str, Any] | None = None) -> int:
        raise NotImplementedError  # ChatSession's

    # Set by the chat controller: the configured models that take images (checked), named in the
    # refusal a message with images gets when the chosen model takes none.
    image_alternatives: Callable[[], Awaitable[Sequence[str]]] | None = None
    # The settings' ``attachments`` (embedding model, passages per question); None: defaults.
    attachment_settings: AttachmentSettings | None = None

    def _init_attachments(self) -> None:
        # Whether a (provider, endpoint, model) takes images, as the server or the table said.
        self._att_vision: dict[tuple[str, str, str], bool] = {}
        # Per session, by content hash: the originals of images (bytes, and base64 as sent),
        # the converted documents, and why a file cannot be used.
        self._att_raw: dict[str, bytes] = {}
        self._att_b64: dict[str, str] = {}
        self._att_sha_of: dict[str, str] = {}  # base64 of an original -> its hash
        self._att_prepared: dict[tuple[str, str], ImagePart] = {}  # (protocol, hash) -> image
        self._att_docs: dict[str, ConvertedDocument] = {}
        self._att_failed: dict[str, str] = {}
        self._att_refs: dict[str, AttachmentRef] = {}
        # The documents' text for each stored message (for the model now in use).
        self._att_contexts: dict[int, DocumentContext] = {}
        # The passages retrieved for the question being answered (the reply's sources).
        self._reply_sources: tuple[RetrievedPassage, ...] = ()

    def use_converted(self, document: ConvertedDocument) -> None:
        """Take a document the draft has already converted (keyed by its ``sha256``), so sending
        it does not convert the file a second time."""
        self._att_docs[document.sha256] = document

    # -- before storing --------------------------------------------------------------------------

    async def _ready_attachments(self, refs: Sequence[AttachmentRef]) -> tuple[AttachmentRef, ...]:
        """Check that ``refs`` can be sent to the model in use; raises before anything is stored
        (:class:`ModelTakesNoImagesError`, :class:`AttachmentError` naming the file)."""
        refs = tuple(refs)
        if any(r.kind is AttachmentKind.IMAGE for r in refs) and not await self._takes_images(
                self.provider, self.model):
            found = self.image_alternatives
            alternatives = await found() if found is not None else ()
            label = getattr(self, "label", None) or self.provider.name
            raise vision.refuse_images(label, self.model, alternatives)
        protocol = protocol_of(self.provider)
        for ref in refs:
            if ref.kind is AttachmentKind.IMAGE:
                await self._prepared(ref, protocol)
            else:
                await self._document(ref)
        return refs

    # -- reading files once per session ---------------------------------------------------------

    async def _note_conversion_warnings(self, refs: Sequence[AttachmentRef]) -> None:
        """A note for what converting a document had to say (read as Windows-1252, pages with no
        text layer, rows cut): shown under the message in the window, on stderr headless."""
        for ref in refs:
            doc = self._att_docs.get(ref.sha256)
            for warning in doc.warnings if doc is not None else ():
                await self._note(DOCUMENTS, warning if ref.name in warning else f"{ref.name}: {warning}",
                                 {"file": ref.name})

    async def _takes_images(self, provider: BaseProvider, model: str) -> bool:
        """Whether ``model`` takes images: the server's own answer (llama.cpp ``/props``, Ollama
        ``/api/show``, LM Studio), else the capability table (:func:`vision.check_images`); once
        per session. Unknown counts as yes: the server then answers for itself."""
        key = (provider.name, provider.base_url or "", model)
        known = self._att_vision.get(key)
        if known is None:
            known = await vision.check_images(provider, model) is not False
            self._att_vision[key] = known
        return known

    async def _image_bytes(self, ref: AttachmentRef) -> bytes:
        raw = self._att_raw.get(ref.sha256)
        if raw is None:
            try:
                raw = await self.store.read_attachment(ref.sha256)
            except StorageError:
                raise AttachmentError(f"{ref.name} is no longer in the data folder; attach it again.",
                                      reason="vanished", name=ref.name) from None
            self._att_raw[ref.sha256] = raw
        return raw

    async def _prepared(self, ref: AttachmentRef, protocol: str) -> ImagePart:
        key = (protocol, ref.sha256)
        part = self._att_prepared.get(key)
        if part is None:
            raw = await self._image_bytes(ref)
            # Pillow is imported with the first image sent, not with the chat (issue 14 item 6).
            from victor_gui.services.image_prep import prepare_image

            try:
                image = await asyncio.to_thread(prepare_image, raw, protocol)
            except AttachmentError as exc:
                raise AttachmentError(f"{ref.name} cannot be sent: {exc.message}", reason=exc.reason,
                                      name=ref.name) from exc
            part = ImagePart.from_bytes(image.data, image.media_type)
            self._att_prepared[key] = part
        return part

    async def _document(self, ref: AttachmentRef) -> ConvertedDocument:
        doc = self._att_docs.get(ref.sha256)
        if doc is None:
            try:
                path = await self.store.attachment_file(ref)
            except StorageError:
                raise AttachmentError(f"{ref.name} is no longer in the data folder; attach it again.",
                                      reason="vanished", name=ref.name) from None
            # Imported here: multiprocessing stays in memory once loaded, and most chats convert nothing.
            from victor_gui.services.doc_worker import convert_in_worker
            doc = await convert_in_worker(path)  # a child process for big files: the loop never stalls
            # Named as the user named it, whatever the converter saw on disk.
            doc = ConvertedDocument(ref.name, ref.sha256, ref.media_type, doc.sections, doc.pages,
                                    doc.warnings)
            self._att_docs[ref.sha256] = doc
        return doc

    # -- building requests -----------------------------------------------------------------------

    async def _load_attachments(self, stored: list[StoredMessage]) -> None:
        """Read what the stored messages' files add to a request (cached), and the documents'
        text for each message; the last question's retrieved passages become the reply's sources."""
        last_user = next((m for m in reversed(stored) if m.role == "user"), None)
        self._reply_sources = ()
        for m in stored:
            if not m.attachments or m.is_note:
                continue
            docs = []
            for ref in m.attachments:
                self._att_refs.setdefault(ref.sha256, ref)
                try:
                    if ref.kind is AttachmentKind.IMAGE:
                        b64 = self._att_b64.get(ref.sha256)
                        if b64 is None:
                            raw = await self._image_bytes(ref)
                            b64 = ImagePart.from_bytes(raw, ref.media_type).data
                            self._att_b64[ref.sha256] = b64
                            self._att_sha_of[b64] = ref.sha256
                    else:
                        docs.append(await self._document(ref))
                except AttachmentError as exc:
                    if ref.sha256 not in self._att_failed:
                        self._att_failed[ref.sha256] = exc.message
                        await self._note(DOCUMENTS, exc.message, {"name": ref.name, "reason": exc.reason})
            if docs and m.id not in self._att_contexts:
                self._att_contexts[m.id] = await self._context(m, docs, announce=m is last_user)
            if m is last_user and m.id in self._att_contexts:
                self._reply_sources = self._att_contexts[m.id].sources

    async def _context(self, m: StoredMessage, docs: list[ConvertedDocument], *,
                       announce: bool) -> DocumentContext:
        # The document context (and the retrieval modules behind it) loads on a chat's first
        # document, in a worker thread: most chats have none (idle memory, issue 14).
        await asyncio.to_thread(importlib.import_module, "victor_gui.services.document_context")
        from victor_gui.services import document_context

        try:
            context = await document_context.build_for_session(
                docs, m.content, mode=_mode(m.attachments), provider=self.provider, model=self.model,
                max_tokens=self.max_tokens, store=self.store, refs=m.attachments,
                attachments=self.attachment_settings)
        except VictorGuiError as exc:
            names = ", ".join(d.name for d in docs)
            text = f"{names} could not be added to the request: {exc.message}"
            await self._note(DOCUMENTS, text, {"message_id": m.id})
            return DocumentContext(f"[{text}]", "none")
        if announce:
            for line in context.notes:
                await self._note(DOCUMENTS, line, {"message_id": m.id, "mode": context.mode})
        return context

    def _attached_message(self, m: StoredMessage) -> Message:
        """``m`` as the model gets it: images (originals; prepared per protocol in
        :meth:`_images_for`), then the documents' text, then the question."""
        base = m.to_message()
        if not m.attachments:
            return base
        parts: list[ContentPart] = []
        missing: list[str] = []
        for ref in m.attachments:
            why = self._att_failed.get(ref.sha256)
            if why is not None:
                missing.append(f"[{why}]")
            elif ref.kind is AttachmentKind.IMAGE and ref.sha256 in self._att_b64:
                # model_construct: the base64 was made here; validating it again costs a decode.
                b64 = self._att_b64[ref.sha256]
                parts.append(ImagePart.model_construct(data=b64, media_type=ref.media_type))
        context = self._att_contexts.get(m.id)
        text = base.text
        if context is not None and context.text:
            text = f"{context.text}\n\n{text}"
        if missing:
            text = "\n".join(missing) + "\n\n" + text
        return base.model_copy(update={"content": [*parts, *base.images, TextPart(text=text)]})

    async def _images_for(self, provider: BaseProvider, model: str, history: list[Message]) -> list[Message]:
        """``history`` with attached images prepared for ``provider``'s protocol (downscaled,
        re-encoded, EXIF stripped). For a model without vision they stay as they are:
        ``repair_history`` replaces them with a line saying so."""
        if not self._att_sha_of:
            return history
        if not await self._takes_images(provider, model):
            # Said here, not left to the table: a llama-server without its --mmproj projector
            # answers a request with images with an HTTP 500.
            return [_without_images(m) for m in history]
        protocol = protocol_of(provider)
        out = []
        for msg in history:
            if msg.role != "user" or isinstance(msg.content, str):
                out.append(msg)
                continue
            content: list[ContentPart] = []
            changed = False
            for part in msg.content:
                sha = self._att_sha_of.get(part.data) if isinstance(part, ImagePart) else None
                if sha is None:
                    content.append(part)
                    continue
                changed = True
                try:
                    content.append(await self._prepared(self._att_refs[sha], protocol))
                except AttachmentError as exc:
                    content.append(TextPart(text=f"[{exc.message}]"))
            out.append(msg.model_copy(update={"content": content}) if changed else msg)
        return out

    async def _note_images_left_out(self, provider: BaseProvider, model: str, history: list[Message],
                                    stored: list[StoredMessage]) -> int | None:
        """Store an ``images_left_out`` note when ``model`` takes no images and the history
        holds some (user images: a tool's images have their own note), once per count."""
        if await self._takes_images(provider, model):
            return None
        count = sum(len(m.images) for m in history if m.role == "user")
        if not count:
            return None
        last = _last_since_switch(stored, IMAGES_LEFT_OUT)
        if last is not None and last.get("count") == count and last.get("model") == model:
            return None
        return await self._note(IMAGES_LEFT_OUT, images_left_out_text(count, model),
                                {"count": count, "model": model})

    def _sources_meta(self) -> list[dict[str, Any]] | None:
        """The reply's ``meta["sources"]``: the passages retrieved for its question, if any."""
        return [p.to_json() for p in self._reply_sources] or None


def _without_images(message: Message) -> Message:
    """``message`` with its images replaced by :data:`IMAGE_OMITTED` (user messages only)."""
    if message.role != "user" or isinstance(message.content, str) or not message.images:
        return message
    omitted = TextPart(text=IMAGE_OMITTED)
    return message.model_copy(update={"content": [p if isinstance(p, TextPart) else omitted
                                                  for p in message.content]})


def _mode(refs: Sequence[AttachmentRef]) -> DocumentMode:
    """The user's forced choice for a message's documents (the first one forced), else auto."""
    return next((r.mode for r in refs if r.kind is AttachmentKind.DOCUMENT and r.mode != "auto"), "auto")


def _last_since_switch(stored: list[StoredMessage], kind: str) -> dict[str, Any] | None:
    for message in reversed(stored):
        found = notes.kind_of(message)
        if found == notes.SWITCH:
            return None
        if found == kind:
            return message.meta
    return None
