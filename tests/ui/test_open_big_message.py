"""Issue 16, finding 6: a 10 MB stored message opens in the chat pane without freezing the window
(its head shown, the rest a step per "Show more"), and without taking a gigabyte."""

from __future__ import annotations

import asyncio
import contextlib
import time

import psutil

from bench.bench_stream_render import rich_text
from tests.ui.conftest import wait_until
from victor_gui.ui import message_body, message_view

BIG_CHARS = 10_000_000


class _Watch:
    """The longest gap between event-loop turns (a 5 ms ticker) and the peak RSS growth."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.longest = 0.0
        self._task = asyncio.ensure_future(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now
            self.peak = max(self.peak, self.proc.memory_info().rss)

    async def stop(self) -> tuple[float, float]:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.longest, (self.peak - self.base) / 2**20


def _big_text() -> str:
    block = rich_text(4000) + "\n\n"  # prose, code, lists, tables: ~16 KB
    return (block * (BIG_CHARS // len(block) + 1))[:BIG_CHARS]


async def test_a_10mb_stored_message_opens_without_freezing(clean_env, window, store) -> None:
    big = _big_text()
    conv = await store.create_conversation("Huge")
    await store.add_message(conv.id, "user", "write a lot")
    await store.add_message(conv.id, "assistant", big, provider="llamacpp", model="m")
    # As in the app: rich text warmed up after the first paint, a chat already shown (first-use
    # costs of Qt's text and widget machinery are not what is measured here).
    await message_body.warm_up_rendering()
    small = await store.create_conversation("Small")
    await store.add_message(small.id, "assistant", rich_text(2000), provider="llamacpp", model="m")
    await window.chat.open_conversation(small.id)
    await asyncio.sleep(0.3)
    chat = window.chat
    await asyncio.sleep(0.1)
    watch = _Watch()
    t0 = time.perf_counter()
    await chat.open_conversation(conv.id)
    reply = chat.transcript.messages[-1]
    await wait_until(lambda: len(reply.pieces) > 5, limit_s=30)  # the head is rendered in pieces
    await asyncio.sleep(0.5)  # let the rendering finish
    opened_s = time.perf_counter() - t0
    longest, grown_mb = await watch.stop()
    print(f"\nopen 10 MB message: {opened_s:.2f} s, longest loop gap {longest * 1000:.0f} ms,"
          f" RSS +{grown_mb:.0f} MB")
    assert longest < 0.3, f"the window froze {longest:.2f} s"
    assert grown_mb < 300, f"opening took {grown_mb:.0f} MB"
    assert reply.text == big  # the whole body is there (edit, copy), only the head is shown
    assert len(reply.shown_text) <= message_view.STORED_HEAD_CHARS
    assert reply.shown_text and big.startswith(reply.shown_text)
    button = reply.more_button
    assert button.isVisibleTo(window) and "MB not shown" in button.text()

    watch = _Watch()
    shown, pieces = len(reply.shown_text), len(reply.pieces)
    button.click()
    assert len(reply.shown_text) > shown
    await wait_until(lambda: len(reply.pieces) > pieces + 20, limit_s=30)  # the step, rendered
    await asyncio.sleep(0.3)
    longest, grown_mb = await watch.stop()
    print(f"show more (100 K chars): longest loop gap {longest * 1000:.0f} ms, RSS +{grown_mb:.0f} MB")
    assert longest < 0.3
    assert len(reply.shown_text) <= shown + message_view.MORE_STEP_CHARS
    assert big.startswith(reply.shown_text) and reply.text == big
    assert reply.hidden_chars == len(big) - len(reply.shown_text)


def test_cut_at_block_prefers_paragraph_breaks() -> None:
    text = "a" * 90 + "\n\n" + "b" * 50
    assert message_body.cut_at_block(text, 100) == ("a" * 90 + "\n\n", "b" * 50)
    assert message_body.cut_at_block("x" * 150, 100) == ("x" * 100, "x" * 50)
    assert message_body.cut_at_block("short", 100) == ("short", "")


async def test_a_10mb_line_is_shown_plain_a_bounded_step_at_a_time(qtbot) -> None:
    view = message_view.MessageView("assistant", "m")
    qtbot.addWidget(view)
    view.resize(700, 400)
    view.show()
    line = "0123456789abcdef" * 625_000  # one 10 MB line (minified JSON): never Markdown
    t0 = time.perf_counter()
    view.set_stored_content(line)
    await view.render_markdown_async()
    took = time.perf_counter() - t0
    assert took < 0.3, f"{took:.2f} s on the loop"
    assert view.shown_text == line[: message_view.PLAIN_STEP_CHARS]
    assert "".join(view.body.toPlainText().split()) == view.shown_text  # on screen
    view.show_more()
    assert len(view.shown_text) == 2 * message_view.PLAIN_STEP_CHARS and view.text == line
