"""Incremental live rendering shows, once the reply ends, exactly what a full render shows.

A streaming reply is rendered block by block (finished blocks kept, only the last one parsed
again, pieces cut off as they fill): the final message must be the same as the stored message
rendered whole, and as one document of the whole reply, down to each run's format (bold, code
colours, links, list styles, table cells, the Copy links' numbers).
"""

from __future__ import annotations

import pytest
from PySide6.QtGui import QTextCursor, QTextDocument

from bench.bench_stream_render import rich_text
from tests.ui.test_long_messages import make_view
from victor_gui.services.markdown_render import markdown_to_html
from victor_gui.ui import message_body
from victor_gui.ui.message_view import MessageView
from victor_gui.ui.reply_stream import FrameBuffer

pytestmark = pytest.mark.gui

Run = tuple[str, int, bool, str, str, str]
Block = tuple[str, int | None, bool, tuple[Run, ...]]


def blocks_of(docs: list[QTextDocument]) -> list[Block]:
    """Every non-empty block of ``docs`` in order: its text, list style, whether it sits in a
    table, and its runs (text, weight, italic, font family, colour, link)."""
    out: list[Block] = []
    for doc in docs:
        block = doc.begin()
        while block.isValid():
            text = block.text().strip()
            if text:
                runs: list[Run] = []
                it = block.begin()
                while not it.atEnd():
                    frag = it.fragment()
                    if frag.isValid() and frag.text().strip():
                        f = frag.charFormat()
                        runs.append((frag.text().strip(), f.fontWeight(), f.fontItalic(),
                                     ",".join(f.fontFamilies() or []), f.foreground().color().name(),
                                     f.anchorHref()))
                    it += 1
                listed = block.textList()
                in_table = QTextCursor(block).currentTable() is not None
                out.append((text, listed.format().style().value if listed is not None else None,
                            in_table, tuple(runs)))
            block = block.next()
    return out


def view_blocks(view: MessageView) -> list[Block]:
    return blocks_of([piece.document() for piece in view.pieces])


def long_reply() -> str:
    """Prose with inline marks, fenced code, a numbered list, a table, headings (the benchmark's
    reply), then a bullet list with a blank line between items, a quote and a closing fence at
    the very end."""
    return (rich_text(2500) + "\n\n- one\n\n- two *loose*\n\n> quoted **text**\n\n"
            + "```bash\necho done\n```\n")


async def stream(view: MessageView, text: str, sizes: list[int], *, final: bool = True) -> int:
    """Feed ``text`` as a stream would (chunk sizes cycling through ``sizes``, reasoning
    first) with a live render after every chunk, each awaited, then the final render; returns
    how many renders were behind (left a burst's rest plain)."""
    buffer = FrameBuffer()
    buffer.add(None, "Thinking about **it** first.\n", False)
    at = i = behind = 0
    while at < len(text):
        size = sizes[i % len(sizes)]
        buffer.add(text[at:at + size], None, False)
        at += size
        i += 1
        buffer._next_render = 0  # render on this frame (the cadence itself is timing, not tested)
        buffer.flush(view, None, lambda _state: "")
        if view._live_task is not None:
            await view._live_task
        # Finished pieces and kept blocks are a prefix of the text; what is parsed again is
        # only what follows them.
        kept = "".join(p.source for p in view._pieces) + "".join(d.source for d in view._done)
        assert view.text.startswith(kept)
        if view.live_behind:  # a burst: the rest is on screen plain, all of it and only it
            assert view.body.toPlainText().split() == view.text[view._frozen_chars:].split()
            behind += 1
    if final:
        await view.render_markdown_async()
    return behind


@pytest.mark.parametrize("sizes", [[97, 150, 61], [640], [4000, 90]],
                         ids=["slow", "fast", "bursts"])
async def test_a_streamed_reply_ends_as_a_full_render_shows_it(qtbot, sizes: list[int]) -> None:
    text = long_reply()
    live = make_view(qtbot)
    behind = await stream(live, text, sizes)
    assert (behind > 0) == (max(sizes) > message_body.LIVE_TAIL_CHARS)
    assert live.text == text
    assert live.reasoning_text == "Thinking about **it** first.\n"  # reasoning stays as sent
    assert len(live.pieces) > 5 and all(p.rendered for p in live._pieces)

    stored = make_view(qtbot)  # the same reply opened from the store: rendered whole at once
    stored.set_stored_content(text)
    await stored.render_markdown_async()

    whole = QTextDocument()  # and one document of the whole reply
    whole.setHtml(markdown_to_html(text))

    shown = view_blocks(live)
    assert shown == view_blocks(stored)
    assert shown == blocks_of([whole])
    links = [run[5] for block in shown for run in block[3] if run[5].startswith("copy:")]
    assert links == [f"copy:{n}" for n in range(len(links))] and len(links) > 5


async def test_live_renders_keep_finished_blocks_and_parse_only_the_rest(qtbot) -> None:
    view = make_view(qtbot)
    text = long_reply()
    await stream(view, text[:5000], [320], final=False)
    # The live renders kept what they finished: finished pieces, then in the body less than a
    # piece's worth of finished blocks (rendered, not parsed again), then the last block.
    kept = "".join(d.source for d in view._done)
    assert 0 < len(kept) < message_body.LIVE_PIECE_CHARS
    assert view._frozen_chars > 3000
    open_block = view.text[view._frozen_chars + len(kept):]
    assert "\n\n" not in open_block.strip("\n")  # only the last block is left to parse
    assert view.body.toPlainText().startswith(blocks_of_text(kept)[:20])


def blocks_of_text(markdown: str) -> str:
    doc = QTextDocument()
    doc.setHtml(markdown_to_html(markdown))
    return doc.toPlainText()


def test_the_text_of_new_pieces_is_taken_out_of_a_plain_body(qtbot) -> None:  # type: ignore[no-untyped-def]
    from victor_gui.ui.widgets.auto_height_text import AutoHeightText

    body = AutoHeightText()
    qtbot.addWidget(body)
    long_line = "word " * 300  # 1,500 characters: shown as soft-broken lines of ~600
    head = f"First paragraph.\n\n{long_line}\n\n- an item\n\n"
    rest = f"Rest {long_line}\n\nlast line"
    for at in range(0, len(head + rest), 97):  # appended as frames would
        body.append_plain((head + rest)[at:at + 97])
    assert not body.drop_plain_prefix("Not the start.\n\n")  # not what it starts with: unchanged
    assert body.drop_plain_prefix(head)
    assert body.toPlainText().split() == rest.split()
    assert body.toPlainText().startswith("Rest word")
    body.append_plain(" more")  # appending goes on at the end as before
    assert body.toPlainText().split() == (rest + " more").split()
    assert not body.drop_plain_prefix(rest + " more")  # nothing would be left after it
