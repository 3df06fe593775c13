"""What the chat controller tells its listeners besides the session's reply events: a chat
created or changed, the chat's profile changed (see :data:`ControllerEvent`)."""

from __future__ import annotations

from dataclasses import dataclass

from victor_gui.services.reply_types import ReplyEvent


@dataclass(frozen=True)
class ConversationChanged:
    """A chat was created or changed (its list entry should refresh)."""

    conversation_id: int


@dataclass(frozen=True)
class ProfileChanged:
    """The chat's profile changed (``None``: no profile)."""

    name: str | None


ControllerEvent = ReplyEvent | ConversationChanged | ProfileChanged
