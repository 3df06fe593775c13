"""The chat window over the real conversation store: what is sent and streamed is stored, a
stop keeps the partial, a mid-chat switch reaches the second server with the whole history,
search opens a chat at its message, and a long chat opens one page at a time."""

from __future__ import annotations

import time

from tests.servers import ollama
from tests.servers.base import Script
from tests.ui.conftest import stored_messages, wait_until
from victor_gui.storage import open_store


async def _send(chat, text: str) -> None:  # type: ignore[no-untyped-def]
    chat.input.setPlainText(text)
    chat.send()
    await wait_until(lambda: chat.conversation_id is not None and not chat.running)
    await wait_until(lambda: chat.session is not None and not chat.session.busy)


async def test_sent_and_streamed_messages_survive_a_reopen(sim, window, store) -> None:
    sim.script(Script(text="Stored **reply**.", pieces=6))
    chat = window.chat
    await chat.start()
    await _send(chat, "Remember me")
    again, _notice = await open_store(store.path.parent)  # a second connection, as after a restart
    try:
        convs = await again.list_conversations()
        assert [c.title for c in convs] == ["Remember me"]
        messages = await again.get_messages(convs[0].id)
        assert [(m.role, m.content, m.status) for m in messages] == [
            ("user", "Remember me", "complete"), ("assistant", "Stored **reply**.", "complete")]
        assert messages[1].provider == "llamacpp" and messages[1].model == chat.model_combo.currentText()
        assert messages[1].ttft_ms is not None and messages[1].completion_tokens
    finally:
        await again.close()
    # The list shows the new chat.
    await wait_until(lambda: "Remember me" in window.conversation_list.item(0).text())
    stats = chat.transcript.messages[-1].stats_label.text()
    assert stats.startswith("llama.cpp · ") and "TTFT" in stats and "tokens" in stats


async def test_stop_keeps_the_partial_marked_interrupted(sim, window, store) -> None:
    sim.script(Script(text="z" * 3000, pieces=3000, delay_s=0.004))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("long one")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: len(reply.text) >= 20)
    chat.stop()
    await wait_until(lambda: not chat.session.busy)
    again, _ = await open_store(store.path.parent)
    try:
        last = (await again.get_messages(chat.conversation_id))[-1]
    finally:
        await again.close()
    assert last.status == "interrupted" and 20 <= len(last.content) < 3000
    assert last.content == reply.text


async def test_switch_mid_chat_shows_the_note_and_sends_the_whole_history(sim, window, monkeypatch) -> None:
    sim.script(Script(text="First answer from llama.cpp."))
    with ollama.make_server() as oll:
        monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{oll.port}")
        chat = window.chat
        await chat.start()
        assert chat.current_choice().name == "llamacpp"
        await _send(chat, "Question one")
        chat.provider_combo.setCurrentIndex(chat.provider_combo.findData("ollama"))  # as a user would
        await wait_until(lambda: chat.transcript.notes)
        old_model = (await stored_messages(window))[1].model
        assert chat.transcript.notes[-1].text().startswith(
            f"Switched from llama.cpp · {old_model} to Ollama · sim-model:latest.")
        await _send(chat, "Question two")
        body = oll.chat_requests()[-1].body
        contents = [m["content"] for m in body["messages"]]
        assert contents == ["Question one", "First answer from llama.cpp.", "Question two"]
        stored = await stored_messages(window)
        assert [m.role for m in stored] == ["user", "assistant", "note", "user", "assistant"]
        assert stored[-1].provider == "ollama" and stored[-1].status == "complete"
        assert chat.transcript.messages[-1].text == stored[-1].content


async def test_search_opens_the_chat_at_the_message(clean_env, window, store) -> None:
    first = await store.create_conversation("Zoo trip")
    for i in range(30):
        await store.add_message(first.id, "user" if i % 2 == 0 else "assistant", f"filler message {i}")
    await store.add_message(first.id, "user", "What do zebras eat?")
    await store.create_conversation("Other chat")
    window.conversations.refresh()
    await wait_until(lambda: window.conversation_list.count() == 2)
    assert "Other chat" in window.conversation_list.item(0).text()  # newest first
    window.focus_search()
    assert window.conversations.search.hasFocus()
    window.conversations.search.setText("zebras")
    await wait_until(lambda: "zebras" in window.conversation_list.item(0).text().lower())
    hit = window.conversation_list.item(0)
    assert "Zoo trip" in hit.text()
    window.conversation_list.itemClicked.emit(hit)
    chat = window.chat
    await wait_until(lambda: any(v.text == "What do zebras eat?" for v in chat.transcript.messages))
    assert chat.conversation_id == first.id


async def test_a_long_chat_opens_one_page_at_a_time(clean_env, window, store) -> None:
    from victor_gui.ui.stored_render import PAGE

    conv = await store.create_conversation("Long")
    for i in range(PAGE + 20):
        await store.add_message(conv.id, "user" if i % 2 == 0 else "assistant", f"message number {i}")
    chat = window.chat
    t = time.perf_counter()
    await chat.open_conversation(conv.id)
    opened_s = time.perf_counter() - t
    assert len(chat.transcript.messages) == PAGE
    assert chat.transcript.messages[-1].text == f"message number {PAGE + 19}"
    assert chat.transcript.earlier_button.isVisibleTo(window)
    chat.transcript.earlier_button.click()
    await wait_until(lambda: len(chat.transcript.messages) == PAGE + 20)
    assert chat.transcript.messages[0].text == "message number 0"
    assert not chat.transcript.earlier_button.isVisibleTo(window)
    assert opened_s < 2.0


async def test_chat_parameters_are_stored_with_the_chat(sim, window, store) -> None:
    chat = window.chat
    await chat.start()
    await _send(chat, "hello")
    dialog = window.open_chat_params()
    await wait_until(lambda: dialog.isVisible())
    dialog.system_prompt.setPlainText("Answer in French.")
    dialog.temperature.setValue(0.2)
    dialog.max_tokens.setValue(512)
    await dialog.save()
    conv = await store.get_conversation(chat.conversation_id)
    assert conv.system_prompt == "Answer in French."
    assert conv.params == {"temperature": 0.2, "max_tokens": 512}
    dialog.close()
    await _send(chat, "again")
    body = sim.chat_requests()[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert body["max_tokens"] == 512 and body["temperature"] == 0.2


async def test_regenerate_and_edit_and_resend(sim, window) -> None:
    sim.script(Script(text="one"), Script(text="two"), Script(text="three"))
    chat = window.chat
    await chat.start()
    await _send(chat, "first question")
    reply = chat.transcript.messages[-1]
    # The buttons appear once the finished reply is read back from the store (after "running"
    # ends): wait for them rather than race that read on a busy machine.
    await wait_until(lambda: reply.regenerate_button.isVisibleTo(window))
    reply.regenerate_button.click()
    await wait_until(lambda: chat.transcript.messages[-1].text == "two" and not chat.running)
    await wait_until(lambda: not chat.session.busy)
    assert [m.content for m in await stored_messages(window)] == ["first question", "two"]
    user = chat.transcript.messages[0]
    await wait_until(lambda: user.edit_button.isVisibleTo(window))
    user.edit_button.click()
    assert chat.input.toPlainText() == "first question" and chat.send_button.text() == "Resend"
    chat.input.setPlainText("edited question")
    chat.send()
    await wait_until(lambda: not chat.running and chat.transcript.messages[-1].text == "three")
    await wait_until(lambda: not chat.session.busy)
    assert [m.content for m in await stored_messages(window)] == ["edited question", "three"]
    assert [v.text for v in chat.transcript.messages] == ["edited question", "three"]
    assert sim.chat_requests()[-1].body["messages"][-1]["content"] == "edited question"


async def test_rename_export_and_delete_from_the_list(clean_env, window, store, tmp_path) -> None:
    from PySide6.QtWidgets import QMessageBox

    conv = await store.create_conversation("Old name")
    await store.add_message(conv.id, "user", "export me please")
    window.conversations.refresh()
    await wait_until(lambda: "Old name" in window.conversation_list.item(0).text())
    await window.conversations.rename(conv.id, "New name")
    assert "New name" in window.conversation_list.item(0).text()
    out = tmp_path / "chat.md"
    await window.conversations.export(conv.id, out, "md")
    markdown = out.read_text(encoding="utf-8")
    assert "export me please" in markdown and "New name" in markdown
    await window.conversations.export(conv.id, tmp_path / "chat.json", "json")
    assert '"export me please"' in (tmp_path / "chat.json").read_text(encoding="utf-8")
    await window.chat.open_conversation(conv.id)
    box = window.conversations.ask_delete(conv.id)
    assert box.isVisible() and box.defaultButton() is box.button(QMessageBox.StandardButton.Cancel)
    box.button(QMessageBox.StandardButton.Yes).click()
    await wait_until(lambda: window.chat.conversation_id is None)
    assert await store.get_conversation(conv.id) is None
    await wait_until(lambda: "No saved chats" in window.conversation_list.item(0).text())


async def test_ctrl_k_focuses_the_model_picker(sim, window, qtbot) -> None:
    from PySide6.QtCore import Qt

    await window.chat.start()
    qtbot.keyClick(window, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    assert window.chat.model_combo.hasFocus() or window.chat.model_combo.view().isVisible()
    window.chat.model_combo.hidePopup()


async def test_a_lock_taken_mid_stream_is_said_under_the_reply_nothing_lost(sim, window, store) -> None:
    """Issue 16: another program locks the database while a reply streams. The person is told
    under the reply and in the status line, the reply goes on, and once the lock is gone the
    whole reply is stored."""
    import sqlite3
    import threading

    store.flush_interval, store.flush_chars, store.append_busy_ms = 0.05, 1, 100
    text = "".join(f"w{i:04d} " for i in range(400))
    sim.script(Script(text=text, pieces=400, delay_s=0.005))
    chat = window.chat
    await chat.start()
    chat.input.setPlainText("locked mid-way")
    chat.send()
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: len(reply.text) >= 100)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(store.path, isolation_level=None, timeout=5)
        try:
            conn.execute("BEGIN EXCLUSIVE")
            held.set()
            release.wait(10)
            conn.execute("ROLLBACK")
        finally:
            conn.close()

    locker = threading.Thread(target=hold)
    locker.start()
    try:
        await wait_until(held.is_set)
        await wait_until(lambda: "locked" in chat.status_label.text(), limit_s=10)
        note = chat.transcript.notes[-1]
        layout = chat.transcript._layout
        assert "locked" in note.text() and layout.indexOf(note) > layout.indexOf(reply)
    finally:
        release.set()
        locker.join()
    await wait_until(lambda: not chat.running and not chat.session.busy, limit_s=20)
    last = (await store.get_messages(chat.conversation_id))[-1]
    assert last.status == "complete" and last.content == text == reply.text
