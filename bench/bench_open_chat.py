"""Opening a long stored chat in the window: time from the click to the page on screen.

Builds a 5,000-message conversation in a temporary store (one JSON import), then times
``ChatPane.open_conversation`` plus the layout/paint that follows, a few times. Only the last
page (``stored_render.PAGE`` messages) is made into widgets, so this should not grow with the
chat's length.

    QT_QPA_PLATFORM=offscreen python -m bench.bench_open_chat [--messages 5000] [--runs 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


async def build(store, n: int) -> int:  # type: ignore[no-untyped-def]
    from victor_gui.storage.export import export_json, import_json

    conv = await store.create_conversation("Long chat")
    await store.add_message(conv.id, "user", "seed")
    doc = json.loads(await export_json(store, [conv.id]))
    template = doc["conversations"][0]["messages"][0]
    messages = []
    for i in range(n):
        m = dict(template)
        m["role"] = "user" if i % 2 == 0 else "assistant"
        body = "some **markdown** text and a list\n\n- one\n- two\n" if i % 2 else "a question?"
        m["content"] = f"Message {i}: {body}"
        m["position"] = i
        messages.append(m)
    doc["conversations"][0]["messages"] = messages
    await store.delete_conversation(conv.id)
    ids = await import_json(store, json.dumps(doc))
    return ids[0]


async def main(n: int, runs: int) -> None:
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        store, _ = await open_store(Path(tmp))
        t = time.perf_counter()
        cid = await build(store, n)
        print(f"built {len(await store.get_messages(cid))} messages in {time.perf_counter() - t:.1f} s")
        window = MainWindow(None, store)
        window.show()
        times = []
        for _ in range(runs):
            window.chat.new_chat()
            await asyncio.sleep(0.05)
            t = time.perf_counter()
            await window.chat.open_conversation(cid)
            window.repaint()  # layout and paint of the page, synchronously
            times.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.05)
        print(f"open {n}-message chat: median {statistics.median(times):.0f} ms "
              f"(runs: {', '.join(f'{x:.0f}' for x in times)}); widgets built: "
              f"{len(window.chat.transcript.messages)}")
        await window.chat.aclose()
        await window.conversations.aclose()
        window.close()
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import make_loop

    app = QApplication(sys.argv)
    app.setQuitOnLastWindowClosed(False)
    loop = make_loop(app)
    with loop:
        loop.run_until_complete(main(args.messages, args.runs))
