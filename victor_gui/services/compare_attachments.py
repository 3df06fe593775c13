"""The attachments of a compare turn: the same files go to every pane, each prepared for that
pane's provider with the chat's own parts: images re-encoded for its protocol
(:func:`~victor_gui.services.image_prep.prepare_image`), documents whole or retrieved for its
model's window (:func:`~victor_gui.services.document_context.build_for_session`, with the
settings' embedding choice), and whether its model takes images asked the way the chat asks
(:func:`~victor_gui.services.vision.check_images`). Qt-free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from victor_gui.config.settings import AttachmentSettings
from victor_gui.errors import AttachmentError, StorageError, VictorGuiError
from victor_gui.providers.types import ContentPart, ImagePart, TextPart
from victor_gui.services import document_context, vision
from victor_gui.services.attachment_types import (
    AttachmentKind,
    AttachmentRef,
    ConvertedDocument,
    DocumentMode,
    RetrievedPassage,
)
from victor_gui.services.chat_attachments import protocol_of
from victor_gui.services.compare import CompareTarget
from victor_gui.storage.store import ConversationStore


@dataclass(frozen=True)
class AttachedTurn:
    """One pane's user turn: its parts, the passages retrieved for it, what it had to say."""

    content: list[ContentPart]
    sources: tuple[RetrievedPassage, ...] = ()
    notes: tuple[str, ...] = ()


async def refuses_images(target: CompareTarget, refs: Sequence[AttachmentRef]) -> bool:
    """Whether this pane's model would be sent images it does not take (a llama-server is
    asked its ``/props``; unknown counts as taking them: the server answers for itself)."""
    if not any(r.kind is AttachmentKind.IMAGE for r in refs):
        return False
    return await vision.check_images(target.provider, target.model) is False


async def attached_turn(text: str, refs: Sequence[AttachmentRef], docs: Sequence[ConvertedDocument],
                        target: CompareTarget, store: ConversationStore, *,
                        settings: AttachmentSettings | None = None,
                        max_tokens: int | None = None) -> AttachedTurn:
    """``text`` with ``refs`` for ``target``: images prepared for its protocol (off the loop),
    then the documents' text (``docs``, already converted by the draft) before the question."""
    protocol = protocol_of(target.provider)
    parts: list[ContentPart] = []
    notes: list[str] = []
    missing: list[str] = []  # said in the request too, so the model knows a file is missing
    for ref in refs:
        if ref.kind is not AttachmentKind.IMAGE:
            continue
        from victor_gui.services.image_prep import prepare_image  # Pillow only once an image is sent

        try:
            raw = await store.read_attachment(ref.sha256)
            image = await asyncio.to_thread(prepare_image, raw, protocol, name=ref.name)
        except (AttachmentError, StorageError) as exc:
            missing.append(f"{ref.name} was left out: {exc.message}")
            continue
        parts.append(ImagePart.from_bytes(image.data, image.media_type))
    question = text
    sources: tuple[RetrievedPassage, ...] = ()
    shown = {d.sha256 for d in docs}
    doc_refs = [r for r in refs if r.kind is AttachmentKind.DOCUMENT and r.sha256 in shown]
    if docs:
        mode: DocumentMode = next((r.mode for r in doc_refs if r.mode != "auto"), "auto")
        try:
            context = await document_context.build_for_session(
                docs, text, mode=mode, provider=target.provider, model=target.model, max_tokens=max_tokens,
                store=store, refs=doc_refs, attachments=settings)
        except VictorGuiError as exc:
            names = ", ".join(d.name for d in docs)
            notes.append(f"{names} could not be added to the request: {exc.message}")
        else:
            question = document_context.user_text(text, context)
            sources = context.sources
            notes.extend(context.notes)
    if missing:
        question = "\n".join(f"[{m}]" for m in missing) + "\n\n" + question
    return AttachedTurn([*parts, TextPart(text=question)], sources, (*missing, *notes))
