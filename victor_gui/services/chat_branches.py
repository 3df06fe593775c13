"""Versions and branches of a chat, for the session and the controller (issue 14).

Regenerate and Edit-and-resend never overwrite: they end the chosen branch before the message
they redo (:meth:`~victor_gui.storage.store.ConversationStore.fork`) and the new message becomes
a sibling version of the old one, which stays in the store with everything that followed it.
What is sent to a model is the chosen branch (``get_messages`` reads only that), so choosing a
version (:func:`choose_version`) changes what the next request sends. "Branch from here"
(:func:`branch_from`) copies the chosen branch up to a message into a new conversation. One
exception: a reply that failed before any text arrived is replaced by its retry, not kept.

A ``switch`` note after the redone message is copied into the new branch (as the linear store
kept it before): the new version goes on with the model the person switched to.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from victor_gui.errors import StorageError
from victor_gui.providers.types import ContentPart
from victor_gui.services import notes
from victor_gui.services.attachment_types import AttachmentRef
from victor_gui.storage.models import NOTE_ROLE, Conversation, StoredMessage
from victor_gui.storage.store import ConversationStore


async def _copy_switch_notes(store: ConversationStore, conversation_id: int,
                             notes_after: list[StoredMessage]) -> None:
    for note in notes_after:
        await store.add_message(conversation_id, NOTE_ROLE, note.content, meta=note.meta,
                                created=note.created)


def _switches_after(messages: list[StoredMessage], position: int) -> list[StoredMessage]:
    return [m for m in messages if m.position > position and notes.kind_of(m) == notes.SWITCH]


async def fork_for_regenerate(store: ConversationStore, conversation_id: int) -> int:
    """Start a new version of the replies to the chosen branch's last user message; returns
    that message's id. The replies shown until now stay as the earlier version."""
    messages = await store.get_messages(conversation_id)
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise StorageError("There is no user message to answer.")
    last = users[-1]
    after = [m for m in messages if m.position > last.position]
    kept = _switches_after(messages, last.position)
    if after and all(m.is_note or _failed_empty(m) for m in after):
        # Retry of a reply that failed before any text: nothing worth keeping as a version.
        await store.delete_messages_from(conversation_id, after[0].position)
    else:
        await store.fork(conversation_id, last.id)
    await _copy_switch_notes(store, conversation_id, kept)
    return last.id


def _failed_empty(message: StoredMessage) -> bool:
    return message.status == "error" and not message.content and not message.tool_calls


async def fork_for_edit(store: ConversationStore, conversation_id: int, message_id: int,
                        content: str | Sequence[ContentPart | dict[str, Any]], *,
                        attachments: Sequence[AttachmentRef] = ()) -> int:
    """Add ``content`` (with ``attachments``) as a new version of user message ``message_id`` (a
    sibling: the old wording and everything after it stay as the earlier version); returns the
    new message's id."""
    message = await store.get_message(message_id)
    if message is None or message.conversation_id != conversation_id or message.role != "user":
        raise StorageError("Only a user message of this conversation can be edited and resent.")
    messages = await store.get_messages(conversation_id)
    if all(m.id != message_id for m in messages):
        raise StorageError("Only a message on the branch shown can be edited; switch to its version first.")
    kept = _switches_after(messages, message.position)
    await store.fork(conversation_id, message.parent_id)
    new_id = await store.add_message(conversation_id, "user", content, attachments=attachments)
    await _copy_switch_notes(store, conversation_id, kept)
    return new_id


async def choose_version(store: ConversationStore, message_id: int) -> int:
    """Show (and remember) the branch through ``message_id``; returns its conversation's id."""
    return await store.choose_version(message_id)


async def branch_from(store: ConversationStore, message_id: int) -> Conversation:
    """A new conversation holding the chosen branch up to and including ``message_id``."""
    return await store.branch_conversation(message_id)


def version_label(versions: dict[int, tuple[int, ...]], message_id: int) -> tuple[int, int] | None:
    """(1-based index, count) of ``message_id`` among its versions; None when it has none."""
    ids = versions.get(message_id)
    if not ids:
        return None
    return ids.index(message_id) + 1, len(ids)
