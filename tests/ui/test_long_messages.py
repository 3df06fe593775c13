"""Long replies render in pieces: the same text and Copy links as one document, built without
stalling the window, whether they stream slowly, arrive in a burst or are opened from the store."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QGuiApplication, QTextDocument

from bench.bench_stream_render import rich_text
from victor_gui.services.markdown_render import code_blocks, markdown_to_html
from victor_gui.ui import message_body
from victor_gui.ui.message_view import MessageView

pytestmark = pytest.mark.gui


def words(text: str) -> list[str]:
    return text.split()


def whole_document_words(text: str) -> list[str]:
    """What one document with the whole reply would show (the pre-pieces rendering)."""
    doc = QTextDocument()
    doc.setHtml(markdown_to_html(text))
    return words(doc.toPlainText())


def body_words(view: MessageView, text: str) -> list[str]:
    """The body's words after a live render in a burst, its finished blocks (rendered, so
    compared as rendered) taken as their source words: the plain rest must follow them."""
    done = "".join(d.source for d in view._done)
    shown = words(view.body.toPlainText())
    rendered = whole_document_words(done) if done else []
    assert shown[: len(rendered)] == rendered
    return words(done) + shown[len(rendered):]


def shown_words(view: MessageView) -> list[str]:
    return [w for piece in view.pieces for w in words(piece.toPlainText())]


def make_view(qtbot) -> MessageView:  # type: ignore[no-untyped-def]
    view = MessageView("assistant", "model")
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    return view


def check_copy_links(view: MessageView, text: str) -> None:
    blocks = code_blocks(text)
    assert len(blocks) > 3
    for index in (0, len(blocks) - 1):
        holder = [p for p in view.pieces if f"copy:{index}" in p.document().toHtml()]
        assert len(holder) == 1, index
        QGuiApplication.clipboard().setText("")
        holder[0].anchorClicked.emit(QUrl(f"copy:{index}"))
        assert QGuiApplication.clipboard().text() == blocks[index]


async def test_a_slow_stream_freezes_pieces_and_shows_what_one_document_would(qtbot) -> None:
    view = make_view(qtbot)
    text = rich_text(4000)  # 16,000 characters: prose, code, lists, tables
    for start in range(0, len(text), 150):  # ~150 characters per live render, like a fast model
        view.append_content(text[start:start + 150])
        view.render_markdown()
        # Only the last piece is ever re-rendered, and it stays small.
        assert len(view.text) - view._frozen_chars <= message_body.PIECE_CHARS + 1000
    await view.render_markdown_async()
    assert view.text == text
    assert len(view.pieces) >= 5
    assert all(p.rendered for p in view._pieces)
    assert "".join(p.source for p in view._pieces) == text[: view._frozen_chars]
    assert shown_words(view) == whole_document_words(text)
    check_copy_links(view, text)


async def test_a_burst_is_rendered_a_bounded_head_at_a_time_then_whole_when_the_reply_ends(qtbot) -> None:
    view = make_view(qtbot)
    text = rich_text(3000)  # 12,000 characters in one go: longer than a live render may parse
    assert message_body.LIVE_TAIL_CHARS < len(text) <= message_body.LIVE_PARSE_CHARS
    view.append_content(text)
    view.render_markdown()
    # One live render reads at most LIVE_TAIL_CHARS (a bounded stall): what it finished is
    # rendered, the rest is still on screen, plain.
    assert 0 < view._frozen_chars <= message_body.LIVE_TAIL_CHARS
    assert all(p.rendered for p in view._pieces)
    assert "".join(p.source for p in view._pieces) == text[: view._frozen_chars]
    assert body_words(view, text) == words(text[view._frozen_chars:])  # the rest, plain
    frozen = view._frozen_chars
    view.render_markdown()  # the next render moves on from there
    assert frozen < view._frozen_chars <= frozen + message_body.LIVE_TAIL_CHARS
    assert body_words(view, text) == words(text[view._frozen_chars:])
    await view.render_markdown_async()
    assert all(p.rendered for p in view._pieces)
    assert shown_words(view) == whole_document_words(text)
    check_copy_links(view, text)


async def test_live_renders_say_when_they_are_behind_until_they_caught_up(qtbot) -> None:
    from victor_gui.ui.reply_stream import FrameBuffer

    view = make_view(qtbot)
    text = rich_text(3000)  # a burst of 12,000 characters: four bounded renders' worth
    buffer = FrameBuffer()
    buffer.add(text, None, False)
    renders = 0
    while True:
        buffer._next_render = 0  # render on this frame (the cadence itself is timing, not tested)
        buffer.flush(view, None, lambda _state: "")
        assert view._live_task is not None
        await view._live_task
        renders += 1
        assert len(view.text) - view._frozen_chars > 0
        if not view.live_behind:
            break
        buffer._content_dirty = True  # as if more text had come: the frame asks again
        assert renders < 20
    # Each render finished at most LIVE_TAIL_CHARS: a burst needs several, none stopped early.
    assert renders >= len(text) // message_body.LIVE_TAIL_CHARS
    assert len(view.text) - view._frozen_chars <= message_body.LIVE_TAIL_CHARS
    assert all(p.rendered for p in view._pieces)


async def test_a_stored_long_message_opens_rendered_in_pieces(qtbot) -> None:
    view = make_view(qtbot)
    text = rich_text(10_000)  # 40,000 characters, as the store hands them over
    view.append_content(text)
    first = view.body
    await view.render_markdown_async()
    assert view.body is not first and len(view.pieces) >= 10
    assert all(p.isVisible() for p in view.pieces)
    assert all(p.width() == view.pieces[0].width() for p in view.pieces)
    assert shown_words(view) == whole_document_words(text)
    check_copy_links(view, text)


async def test_editing_a_long_message_starts_over_in_one_piece(qtbot) -> None:
    view = make_view(qtbot)
    view.append_content(rich_text(3000))
    await view.render_markdown_async()
    assert len(view.pieces) > 1
    view.replace_content("short now")
    assert len(view.pieces) == 1 and view.body.toPlainText() == "short now"
    view.append_content("\n\n```python\nx = 1\n```\n")
    view.render_markdown()
    check = view.body.document().toHtml()
    assert "copy:0" in check  # numbering starts again at the first block


async def test_two_final_renders_at_once_show_the_text_once(qtbot) -> None:
    import asyncio

    view = make_view(qtbot)
    text = rich_text(3000)
    view.append_content(text)
    await asyncio.gather(view.render_markdown_async(), view.render_markdown_async())
    assert shown_words(view) == whole_document_words(text)
    assert "".join(p.source for p in view._pieces) == text[: view._frozen_chars]
