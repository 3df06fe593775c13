"""Scrolling a long chat of rich replies: frame time while scrolling (target p99 ≤ 16 ms).

Builds a 2,000-message conversation (every reply has code, a table and a list) in a temporary
store, opens it in the real window, loads earlier pages until ``--loaded`` messages are widgets
(the transcript makes widgets a page at a time), waits for their Markdown, then scrolls the
transcript from the bottom to the top and back in wheel-sized steps. One frame: the scroll step
plus a synchronous repaint of the visible transcript.

    QT_QPA_PLATFORM=offscreen python -m bench.bench_scroll [--messages 2000] [--loaded 300]
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

RICH = """Here is how to do it:

```python
def step_{i}(x: float) -> float:
    return x * {i} + 1  # scale
```

| option | effect |
|---|---|
| `--fast` | skip checks |
| `--safe` | keep them |

1. read the **input**
2. call `step_{i}`
"""


async def build(store, n: int) -> int:  # type: ignore[no-untyped-def]
    from victor_gui.storage.export import export_json, import_json

    conv = await store.create_conversation("Long rich chat")
    await store.add_message(conv.id, "user", "seed")
    doc = json.loads(await export_json(store, [conv.id]))
    template = doc["conversations"][0]["messages"][0]
    messages = []
    for i in range(n):
        m = dict(template)
        m["role"] = "user" if i % 2 == 0 else "assistant"
        m["content"] = f"Question {i}: how?" if i % 2 == 0 else RICH.replace("{i}", str(i))
        m["position"] = i
        messages.append(m)
    doc["conversations"][0]["messages"] = messages
    await store.delete_conversation(conv.id)
    ids = await import_json(store, json.dumps(doc))
    return int(ids[0])


async def run(n: int, loaded: int, step_px: int) -> dict[str, float]:
    from PySide6.QtWidgets import QApplication

    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow

    with tempfile.TemporaryDirectory() as tmp:
        store, _ = await open_store(Path(tmp))
        cid = await build(store, n)
        window = MainWindow(None, store)
        window.resize(1100, 720)
        window.show()
        chat = window.chat
        await chat.open_conversation(cid)
        transcript = chat.transcript
        while len(transcript.messages) < loaded and transcript.earlier_button.isVisible():
            await chat.load_earlier()
        await asyncio.sleep(1.5)  # their Markdown renders (worker thread, then swapped in)
        QApplication.processEvents()
        bar = transcript.verticalScrollBar()
        view = transcript.viewport()
        frames: list[float] = []
        positions = list(range(bar.maximum(), bar.minimum(), -step_px)) + \
            list(range(bar.minimum(), bar.maximum(), step_px))
        for value in positions:
            t = time.perf_counter()
            bar.setValue(value)
            view.repaint()
            QApplication.processEvents()
            frames.append((time.perf_counter() - t) * 1000)
        result = {"widgets": float(len(transcript.messages)), "frames": float(len(frames)),
                  "p50": statistics.median(frames),
                  "p99": sorted(frames)[max(0, int(len(frames) * 0.99) - 1)], "max": max(frames)}
        await chat.aclose()
        await window.conversations.aclose()
        window.close()
        await store.close()
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--loaded", type=int, default=300)
    parser.add_argument("--step", type=int, default=120, help="pixels per frame (a wheel notch)")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import make_loop

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    loop = make_loop(app)
    with loop:
        r = loop.run_until_complete(run(args.messages, args.loaded, args.step))
    ok = r["p99"] <= 16
    print(f"scroll {args.messages}-message rich chat ({r['widgets']:.0f} messages as widgets), "
          f"{r['frames']:.0f} frames of {args.step} px: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms, "
          f"max {r['max']:.1f} ms (target p99 ≤ 16: {'PASS' if ok else 'FAIL'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
