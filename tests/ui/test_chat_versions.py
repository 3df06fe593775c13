"""Issue 14, item 1, in the window (pytest-qt, the llama-server simulator over real HTTP, the real
store): Regenerate twice gives a "‹ 3/3 ›" switcher, switching to 2/3 shows that branch and is
what the next request sends, and survives a reopen; Edit has Cancel and Esc and its status line
clears on Cancel, Esc, Ctrl+N and send; emptying the input ends editing so a new question is a
new message; a stopped reply keeps Edit, Regenerate and its tok/s and token count, also after the
chat is reopened; "Branch" starts a new chat with the history up to that message."""

from __future__ import annotations

from PySide6.QtCore import Qt

from tests.servers.base import Script
from tests.ui.conftest import stored_messages, wait_until
from victor_gui.storage import open_store
from victor_gui.ui.chat_versions import EDITING_TEXT


async def _send(chat, text: str) -> None:  # type: ignore[no-untyped-def]
    chat.input.setPlainText(text)
    chat.send()
    await _settled(chat)


async def _settled(chat) -> None:  # type: ignore[no-untyped-def]
    await wait_until(lambda: chat.conversation_id is not None and not chat.running)
    await wait_until(lambda: chat.session is not None and not chat.session.busy)


def _last_sent(sim) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(m["role"], m["content"]) for m in sim.chat_requests()[-1].body["messages"]]


async def test_regenerate_twice_shows_3_of_3_and_switching_steers_the_next_request(
    sim, window, store, qtbot,
) -> None:
    sim.script(Script(text="one"), Script(text="two"), Script(text="three"), Script(text="after two"))
    chat = window.chat
    await chat.start()
    await _send(chat, "question")
    for expected in ("two", "three"):
        reply = chat.transcript.messages[-1]
        await wait_until(lambda r=reply: r.regenerate_button.isVisibleTo(window))
        reply.regenerate_button.click()
        await wait_until(lambda e=expected: chat.transcript.messages[-1].text == e and not chat.running)
        await _settled(chat)
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: reply.versions is not None and reply.versions.isVisibleTo(window))
    assert reply.versions.text == "3/3"
    assert not reply.versions.next_button.isEnabled() and reply.versions.previous_button.isEnabled()
    qtbot.mouseClick(reply.versions.previous_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: chat.transcript.messages[-1].text == "two")
    shown = chat.transcript.messages[-1]
    await wait_until(lambda: shown.versions is not None and shown.versions.text == "2/3")
    assert [v.text for v in chat.transcript.messages] == ["question", "two"]
    await _send(chat, "go on")
    assert _last_sent(sim)[-3:] == [("user", "question"), ("assistant", "two"), ("user", "go on")]
    assert [v.text for v in chat.transcript.messages] == ["question", "two", "go on", "after two"]

    again, _ = await open_store(store.path.parent)  # the choice is in the file (a restart)
    try:
        assert [m.content for m in await again.get_messages(chat.conversation_id)] == [
            "question", "two", "go on", "after two"]
    finally:
        await again.close()
    await chat.open_conversation(chat.conversation_id)  # reopened: the switcher says 2/3 again
    reopened = chat.transcript.messages[1]
    await wait_until(lambda: reopened.versions is not None and reopened.versions.isVisibleTo(window))
    assert reopened.versions.text == "2/3" and reopened.text == "two"
    # Later messages follow the branch: the first version has nothing after it.
    qtbot.mouseClick(reopened.versions.previous_button, Qt.MouseButton.LeftButton)
    await wait_until(lambda: [v.text for v in chat.transcript.messages] == ["question", "one"])


async def test_edit_has_cancel_and_esc_and_its_status_line_clears(sim, window, qtbot) -> None:
    sim.script(Script(text="first answer"), Script(text="second answer"), Script(text="edited answer"))
    chat = window.chat
    await chat.start()
    await _send(chat, "first question")
    user = chat.transcript.messages[0]
    await wait_until(lambda: user.edit_button.isVisibleTo(window))

    chat.input.setPlainText("a draft")
    user.edit_button.click()
    assert chat.input.toPlainText() == "first question" and chat.status_label.text() == EDITING_TEXT
    assert chat.cancel_edit_button.isVisibleTo(window) and chat.send_button.text() == "Resend"
    chat.cancel_edit_button.click()
    assert not chat.editing and chat.status_label.text() == "" and chat.input.toPlainText() == "a draft"
    assert not chat.cancel_edit_button.isVisibleTo(window) and chat.send_button.text() == "Send"

    user.edit_button.click()
    qtbot.keyClick(chat.input, Qt.Key.Key_Escape)
    assert not chat.editing and chat.status_label.text() == "" and chat.input.toPlainText() == "a draft"

    # Emptying the input ends the edit: the question typed next is a new message, and the first
    # exchange stays as it was.
    user.edit_button.click()
    chat.input.clear()
    assert not chat.editing and chat.status_label.text() == ""
    await _send(chat, "a new question")
    assert [m.content for m in await stored_messages(window)] == [
        "first question", "first answer", "a new question", "second answer"]

    user.edit_button.click()
    chat.input.setPlainText("first question, edited")
    chat.send()
    assert chat.status_label.text() != EDITING_TEXT and not chat.editing  # send ends editing
    await wait_until(lambda: chat.transcript.messages[-1].text == "edited answer" and not chat.running)
    await _settled(chat)
    assert [m.content for m in await stored_messages(window)] == ["first question, edited", "edited answer"]
    edited = chat.transcript.messages[0]
    await wait_until(lambda: edited.versions is not None and edited.versions.isVisibleTo(window))
    assert edited.versions.text == "2/2"

    await wait_until(lambda: edited.edit_button.isVisibleTo(window))
    edited.edit_button.click()
    assert chat.status_label.text() == EDITING_TEXT
    qtbot.keyClick(window, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)  # a new chat
    await wait_until(lambda: chat.conversation_id is None)
    assert not chat.editing and chat.status_label.text() == "" and chat.send_button.text() == "Send"


async def test_a_stopped_reply_keeps_edit_regenerate_and_its_speed_after_reopen(sim, window) -> None:
    sim.script(Script(text=" ".join(f"word{i}" for i in range(400)), pieces=400, delay_s=0.01))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("count slowly")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: len(reply.text) >= 60)
    chat.escape()  # Esc: not editing, so it stops the reply
    await _settled(chat)
    user = chat.transcript.messages[0]
    await wait_until(lambda: reply.regenerate_button.isVisibleTo(window)
                     and user.edit_button.isVisibleTo(window))
    assert "tok/s" in reply.stats_label.text() and "tokens" in reply.stats_label.text()
    assert reply.stats_label.text().endswith("stopped")
    conversation_id = chat.conversation_id
    chat.new_chat()
    await chat.open_conversation(conversation_id)
    stored = chat.transcript.messages[-1]
    assert stored.text == reply.text
    assert "tok/s" in stored.stats_label.text() and "tokens" in stored.stats_label.text()
    await wait_until(lambda: stored.regenerate_button.isVisibleTo(window))
    await wait_until(lambda: chat.transcript.messages[0].edit_button.isVisibleTo(window))


async def test_branch_from_here_opens_a_new_chat_with_the_history_up_to_it(sim, window, store) -> None:
    sim.script(Script(text="A1"), Script(text="A2"), Script(text="in the branch"))
    chat = window.chat
    await chat.start()
    await _send(chat, "Q1")
    await _send(chat, "Q2")
    origin = chat.conversation_id
    first_reply = chat.transcript.messages[1]
    await wait_until(lambda: first_reply.branch_button is not None
                     and first_reply.branch_button.isVisibleTo(window))
    first_reply.branch_button.click()
    await wait_until(lambda: chat.conversation_id not in (None, origin))
    await wait_until(lambda: [v.text for v in chat.transcript.messages] == ["Q1", "A1"])
    await _send(chat, "Q2 in the branch")
    assert _last_sent(sim) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2 in the branch")]
    assert [m.content for m in await store.get_messages(origin)] == ["Q1", "A1", "Q2", "A2"]
    await wait_until(lambda: window.conversation_list.count() == 2
                     and "(branch)" in window.conversation_list.item(0).text())


async def test_export_from_the_list_writes_the_shown_branch_or_every_version(
    clean_env, window, store, tmp_path,
) -> None:
    import json

    from victor_gui.ui.conversation_list import TREE

    conv = await store.create_conversation("Versions")
    question = await store.add_message(conv.id, "user", "which colour")
    await store.add_message(conv.id, "assistant", "blue, the first version")
    await store.fork(conv.id, question)
    await store.add_message(conv.id, "assistant", "green, the second version")
    window.conversations.refresh()
    dialog = window.conversations.ask_export(conv.id, TREE)
    assert dialog.defaultSuffix() == "json"
    dialog.close()
    await window.conversations.export(conv.id, tmp_path / "chat.md", "md")
    markdown = (tmp_path / "chat.md").read_text(encoding="utf-8")
    assert "green, the second version" in markdown and "blue" not in markdown
    await window.conversations.export(conv.id, tmp_path / "chat.json", "json")
    shown = json.loads((tmp_path / "chat.json").read_text(encoding="utf-8"))["conversations"][0]
    assert [m["content"] for m in shown["messages"]] == ["which colour", "green, the second version"]
    assert "tree" not in shown
    await window.conversations.export(conv.id, tmp_path / "tree.json", TREE)
    whole = json.loads((tmp_path / "tree.json").read_text(encoding="utf-8"))["conversations"][0]
    assert [(m["content"], m["parent"], m["chosen"]) for m in whole["tree"]] == [
        ("which colour", None, True), ("blue, the first version", 0, False),
        ("green, the second version", 0, True)]


async def test_a_search_hit_in_a_hidden_version_opens_that_version(clean_env, window, store) -> None:
    conv = await store.create_conversation("Hidden")
    question = await store.add_message(conv.id, "user", "tell me about otters")
    hidden = await store.add_message(conv.id, "assistant", "otters hold hands while sleeping")
    await store.fork(conv.id, question)
    await store.add_message(conv.id, "assistant", "a shorter answer")
    [hit] = [h for h in await store.search("hands") if h.message_id == hidden]
    await window.chat.open_conversation(conv.id, hit.message_id)
    texts = [v.text for v in window.chat.transcript.messages]
    assert texts == ["tell me about otters", "otters hold hands while sleeping"]
    shown = window.chat.transcript.messages[1]
    await wait_until(lambda: shown.versions is not None and shown.versions.text == "1/2")
