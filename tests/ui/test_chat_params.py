"""The chat's parameters panel drives what reaches the server: every parameter set in the
window is stored with the conversation and the next request to the llama.cpp simulator carries
each one llama.cpp takes, under its wire name, and none it does not take."""

from __future__ import annotations

from tests.ui.conftest import wait_until
from tests.ui.test_chat_store import _send
from victor_gui.providers.params import WIRES


async def test_parameters_panel_sets_what_the_next_request_carries(sim, window, store) -> None:
    chat = window.chat
    await chat.start()
    await _send(chat, "hello")
    dialog = window.open_chat_params()
    await wait_until(lambda: dialog.isVisible())
    # What llama.cpp does not take is greyed with a note that names it.
    assert not dialog.labels["thinking_budget"].isEnabled()
    assert dialog.labels["min_p"].isEnabled()
    assert "Thinking budget" in dialog.accepted_note.text()
    fields = dialog.fields
    fields["top_p"].setValue(0.9)
    fields["top_k"].setValue(40)
    fields["min_p"].setValue(0.05)
    fields["repeat_penalty"].setValue(1.1)
    fields["seed"].setValue(7)
    fields["stop"].setPlainText("<END>\n###")
    fields["reasoning_effort"].setCurrentIndex(fields["reasoning_effort"].findData("low"))
    fields["thinking_budget"].setValue(2048)
    await dialog.save()
    dialog.close()
    conv = await store.get_conversation(chat.conversation_id)
    assert conv.params == {"temperature": 0.7, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
                           "repeat_penalty": 1.1, "seed": 7, "stop": ["<END>", "###"],
                           "reasoning_effort": "low", "thinking_budget": 2048}
    await _send(chat, "again")
    body = sim.chat_requests()[-1].body
    taken = WIRES["llamacpp"]
    for key, value in conv.params.items():
        if key in taken:
            assert body[taken[key].path] == value, key
    assert "thinking" not in body and "thinking_budget" not in body

    # Reopened, the panel shows what was stored.
    again = window.open_chat_params()
    await wait_until(lambda: again.fields["top_k"].value() == 40)
    assert again.values()[1] == conv.params
    again.close()


async def _chat_on_ollama(window, oll, monkeypatch):  # type: ignore[no-untyped-def]
    """The window's chat after one reply from the llama.cpp simulator, switched to ``oll``."""
    monkeypatch.setenv("OLLAMA_HOST", f"127.0.0.1:{oll.port}")
    chat = window.chat
    await chat.start()
    await _send(chat, "hello")
    chat.provider_combo.setCurrentIndex(chat.provider_combo.findData("ollama"))
    await wait_until(lambda: chat.session is not None and chat.session.provider.name == "ollama")
    return chat


async def test_ollama_chat_gets_its_options_and_window(sim, window, store, monkeypatch) -> None:
    from tests.servers import ollama

    with ollama.make_server() as oll:
        chat = await _chat_on_ollama(window, oll, monkeypatch)
        dialog = window.open_chat_params()
        await wait_until(lambda: dialog.isVisible())
        await wait_until(lambda: "Ollama" in dialog.accepted_note.text())
        labels = dialog.labels
        assert labels["context_length"].isEnabled() and not labels["thinking_budget"].isEnabled()
        dialog.fields["context_length"].setValue(8192)
        dialog.fields["top_k"].setValue(25)
        dialog.fields["reasoning_effort"].setCurrentIndex(dialog.fields["reasoning_effort"].findData("high"))
        await dialog.save()
        dialog.close()
        await _send(chat, "again")
        body = oll.chat_requests()[-1].body
        assert body["options"]["num_ctx"] == 8192 and body["options"]["top_k"] == 25
        assert body["think"] == "high"
        assert chat.session.context_window == 8192


async def test_ollama_conversation_longer_than_its_context_is_trimmed_visibly(sim, window, store,  # type: ignore[no-untyped-def]
                                                                             monkeypatch) -> None:
    """Issue 17 part 4 from the window: the chat sends num_ctx from the fit plan (capped by the
    model's trained 2,048 tokens here), and once the conversation is longer the transcript shows
    the trim note saying so; the request carries only the newest turns."""
    from tests.servers import ollama

    with ollama.make_server(model={"name": "short-ctx", "context_length": 2048}) as oll:
        chat = await _chat_on_ollama(window, oll, monkeypatch)
        for i in range(5):
            await _send(chat, f"{i} " + "word " * 400)
        body = oll.chat_requests()[-1].body
        assert body["options"]["num_ctx"] == 2048  # planned, not Ollama's default
        assert body["messages"][-1]["content"].startswith("4 ") and len(body["messages"]) < 9
        notes = [n.text() for n in chat.transcript.notes]
        assert any("left out of what the model sees" in n and "2,048-token" in n for n in notes), notes
