"""Search from the window as a user meets it (issue 14): the hit is scrolled into view and
highlighted, snippets show the match highlighted (not in literal brackets), and the list marks
the chat on screen, not another, while a search is active."""

from __future__ import annotations

import asyncio

from tests.ui.conftest import wait_until
from victor_gui.ui.conversation_list import ROLE_SNIPPET_HTML


def _visible(view, transcript) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``view`` is inside the transcript's viewport (not only laid out)."""
    top_left = view.mapTo(transcript.viewport(), view.rect().topLeft())
    bottom = top_left.y() + view.height()
    return bottom > 0 and top_left.y() < transcript.viewport().height()


async def _chat_with_a_hit_in_the_middle(store):  # type: ignore[no-untyped-def]
    conv = await store.create_conversation("Zoo trip")
    for i in range(20):
        await store.add_message(conv.id, "user" if i % 2 == 0 else "assistant",
                                f"filler message {i}\n\n" + "more words here. " * 30)
    await store.add_message(conv.id, "user", "What do [zebras] eat? zebras graze.")
    for i in range(20):
        await store.add_message(conv.id, "assistant" if i % 2 == 0 else "user",
                                f"later message {i}\n\n" + "other words there. " * 30)
    return conv


async def test_the_hit_is_scrolled_into_view_and_highlighted(clean_env, window, store) -> None:
    window.resize(1000, 600)
    conv = await _chat_with_a_hit_in_the_middle(store)
    window.conversations.refresh()
    await wait_until(lambda: window.conversation_list.count() == 1)
    window.conversations.search.setText("zebras")
    await wait_until(lambda: window.conversation_list.item(0).data(ROLE_SNIPPET_HTML) is not None)
    hit = window.conversation_list.item(0)
    # The snippet shows the match, without the marks and without brackets added around it.
    assert "[zebras] eat?" in hit.text() and "\x02" not in hit.text()
    html = hit.data(ROLE_SNIPPET_HTML)
    assert html.count("<span") == 2 and ">zebras</span>" in html and "[<span" in html
    window.conversation_list.itemClicked.emit(hit)
    chat = window.chat
    await wait_until(lambda: chat.conversation_id == conv.id and chat.transcript.messages)
    target = next(v for v in chat.transcript.messages if "zebras" in v.text)
    await wait_until(lambda: _visible(target, chat.transcript))
    await asyncio.sleep(0.3)  # replies render their Markdown after opening: it must stay in view
    assert _visible(target, chat.transcript)
    first, last = chat.transcript.messages[0], chat.transcript.messages[-1]
    assert not _visible(first, chat.transcript) and not _visible(last, chat.transcript)
    assert target.property("searchHit") is True
    assert [v for v in chat.transcript.messages if v.property("searchHit")] == [target]


async def test_the_list_marks_the_chat_on_screen_during_a_search(clean_env, window, store) -> None:
    zoo = await store.create_conversation("Zoo trip")
    await store.add_message(zoo.id, "user", "zebras here")
    other = await store.create_conversation("Other chat")
    await store.add_message(other.id, "user", "zebras there too")
    window.conversations.refresh()
    await wait_until(lambda: window.conversation_list.count() == 2)
    window.conversations.search.setText("zebras")
    await wait_until(lambda: window.conversation_list.item(0).data(ROLE_SNIPPET_HTML) is not None)
    items = [window.conversation_list.item(i) for i in range(window.conversation_list.count())]
    zoo_hit = next(i for i in items if "Zoo trip" in i.text())
    window.conversation_list.itemClicked.emit(zoo_hit)
    await wait_until(lambda: window.chat.conversation_id == zoo.id)
    # The chat on screen becomes another one (compare's "Continue with this one", a new chat
    # from elsewhere): the list must not keep showing the old hit as current.
    window._conversation_changed(other.id)
    current = window.conversation_list.currentItem()
    assert current is not None and "Other chat" in current.text()
    window._conversation_changed(12345)  # a chat the results do not hold
    assert not window.conversation_list.selectedItems()
