"""The message menu (issue 14: right-click offered only Qt's generic menu with Copy greyed out):
Copy, Copy as Markdown, Copy code, Branch from here, and Delete with Undo, driven through the
window against the llama.cpp simulator and a real store."""

from __future__ import annotations

import asyncio

import pytest
from PySide6.QtGui import QGuiApplication, QTextCursor

from tests.servers.base import Script
from tests.ui.conftest import wait_until
from tests.ui.test_chat_versions import _last_sent, _send
from victor_gui.ui import chat_message_actions

REPLY = "Here:\n\n```python\nprint('one')\n```\n\nand\n\n```sh\necho two\n```\n\n**Done.**"


def _actions(menu):  # type: ignore[no-untyped-def]
    return {a.text(): a for a in menu.actions() if a.text()}


async def _chat_with_code(sim, window):  # type: ignore[no-untyped-def]
    sim.script(Script(text=REPLY), Script(text="Second answer."))
    chat = window.chat
    await chat.start()
    await _send(chat, "Show me code")
    await _send(chat, "Thanks")
    reply = chat.transcript.messages[1]
    # The Branch button is hidden while a reply streams and shown again once the versions are
    # read after it (a task of its own): the menu offers Branch only then.
    await wait_until(lambda: reply.message_id is not None and reply.branch_button is not None
                     and reply.branch_button.isVisibleTo(reply))
    return chat, reply


async def test_copy_copy_as_markdown_and_copy_code(sim, window) -> None:
    _chat, reply = await _chat_with_code(sim, window)
    await wait_until(lambda: "```" not in reply.plain_text())  # rendered
    actions = _actions(reply.message_menu(reply.body))
    assert list(actions) == ["Copy", "Copy as Markdown", "Copy code", "Branch from here", "Delete"]
    assert all(a.isEnabled() for a in actions.values())
    clipboard = QGuiApplication.clipboard()
    actions["Copy"].trigger()
    copied = clipboard.text()
    assert "print('one')" in copied and "```" not in copied and "**" not in copied
    actions["Copy as Markdown"].trigger()
    assert clipboard.text() == REPLY
    blocks = actions["Copy code"].menu().actions()
    assert [a.text() for a in blocks] == ["Block 1: print('one')", "Block 2: echo two"]
    blocks[1].trigger()
    assert clipboard.text().strip() == "echo two"
    # With a selection, Copy copies just that.
    piece = reply.pieces[-1]
    cursor = piece.textCursor()
    cursor.movePosition(QTextCursor.MoveOperation.Start)
    cursor.movePosition(QTextCursor.MoveOperation.Right, QTextCursor.MoveMode.KeepAnchor, 4)
    piece.setTextCursor(cursor)
    menu = reply.message_menu(piece)
    _actions(menu)["Copy selection"].trigger()
    assert clipboard.text() == cursor.selectedText()


async def test_delete_hides_offers_undo_then_deletes_for_real(sim, window, store, monkeypatch) -> None:
    monkeypatch.setattr(chat_message_actions, "UNDO_SECONDS", 0.5)
    chat, reply = await _chat_with_code(sim, window)
    _actions(reply.message_menu())["Delete"].trigger()
    assert not reply.isVisible() and chat.undo_bar.isVisible()
    chat.undo_bar.undo_button.click()  # Undo: back, and the store never lost it
    assert reply.isVisible() and not chat.undo_bar.isVisible()
    await asyncio.sleep(0.7)  # past the Undo time: nothing is deleted after an Undo
    assert len(await store.get_messages(chat.conversation_id)) == 4
    _actions(reply.message_menu())["Delete"].trigger()
    await wait_until(lambda: reply not in chat.transcript.messages, limit_s=3)
    assert not chat.undo_bar.isVisible()
    for _ in range(50):  # the store's delete runs as a task once the Undo time is over
        stored = await store.get_messages(chat.conversation_id)
        if len(stored) == 3:
            break
        await asyncio.sleep(0.05)
    assert [m.content for m in stored] == ["Show me code", "Thanks", "Second answer."]
    await chat.open_conversation(chat.conversation_id)  # reopened: it stays gone
    assert [v.text for v in chat.transcript.messages] == ["Show me code", "Thanks", "Second answer."]


async def test_a_message_deleted_then_send_is_not_sent_along(sim, window, store) -> None:
    chat, reply = await _chat_with_code(sim, window)
    sim.script(Script(text="Third."))
    _actions(reply.message_menu())["Delete"].trigger()
    await _send(chat, "Next question")  # within the Undo time: the delete happens first
    assert _last_sent(sim) == [("user", "Show me code"), ("user", "Thanks"), ("assistant", "Second answer."),
                               ("user", "Next question")]
    assert REPLY not in [m.content for m in await store.get_messages(chat.conversation_id)]


async def test_branch_from_here_in_the_menu(sim, window, store) -> None:
    chat, reply = await _chat_with_code(sim, window)
    origin = chat.conversation_id
    _actions(reply.message_menu())["Branch from here"].trigger()
    await wait_until(lambda: chat.conversation_id not in (None, origin))
    await wait_until(lambda: [v.text for v in chat.transcript.messages] == ["Show me code", REPLY])


@pytest.mark.parametrize("role", ["user"])
async def test_a_message_not_yet_stored_offers_no_delete(qtbot, role: str) -> None:
    from victor_gui.ui.message_view import MessageView

    view = MessageView(role, "You")
    qtbot.addWidget(view)
    view.append_content("draft")
    actions = _actions(view.message_menu())
    assert not actions["Delete"].isEnabled() and not actions["Branch from here"].isEnabled()
