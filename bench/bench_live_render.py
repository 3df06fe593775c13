"""Live Markdown rendering alone, replayed at a fixed pace: the loop's work per turn.

``bench_stream_render --rich`` measures the whole path (HTTP, the session, the store), and on a
shared machine its figures move with everyone else's load: the pace the text arrives at, and so
how it is cut into frames, changes from run to run. Here the same rich reply
(:func:`bench.bench_stream_render.rich_text`) is fed to a reply view in a transcript, in a shown
window, through the app's own :class:`~victor_gui.ui.reply_stream.FrameBuffer` at a fixed
pace (``--chars`` per 16 ms frame; 640 is 10,000 tok/s of 4-character tokens), then rendered
as the reply ends. A 1 ms ticker on the loop (as in ``bench_stream_render``) records, between
two ticks, the wall time and the main thread's CPU time (``time.thread_time``: what the UI
thread itself did in that turn, which other processes' load does not add to). Reported: p99
and max of both per run, and the medians over ``--runs`` runs.

    python -m bench.bench_live_render [--tokens 20000] [--chars 640] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(int(len(ordered) * 0.99) - 1, 0)]


async def one_run(transcript: object, text: str, chars: int) -> dict[str, float]:
    from victor_gui.ui.reply_stream import FRAME_MS, FrameBuffer
    from victor_gui.ui.transcript import Transcript

    assert isinstance(transcript, Transcript)
    transcript.add_message("user", "You", "stream please")
    view = transcript.add_message("assistant", "bench · model")
    await asyncio.sleep(0.2)
    wall: list[float] = []
    cpu: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now, now_cpu = time.perf_counter(), time.thread_time()
            wall.append((now - last) * 1000)
            cpu.append((now_cpu - last_cpu) * 1000)
            last, last_cpu = now, now_cpu

    tick = asyncio.get_running_loop().create_task(ticker())
    buffer = FrameBuffer()
    start = time.perf_counter()
    for frame, at in enumerate(range(0, len(text), chars)):
        buffer.add(text[at:at + chars], None, False)
        buffer.flush(view, None, lambda _state: "")
        await asyncio.sleep(max(0.0, start + (frame + 1) * FRAME_MS / 1000 - time.perf_counter()))
    if view._live_task is not None:
        await view._live_task
    await view.render_markdown_async()  # the reply ends: what is still plain is rendered
    await asyncio.sleep(0.5)
    stop.set()
    await tick
    assert view.text == text
    return {"cpu_p99": p99(cpu), "cpu_max": max(cpu), "wall_p99": p99(wall), "wall_max": max(wall),
            "s": time.perf_counter() - start}


async def run(args: argparse.Namespace) -> list[dict[str, float]]:
    from PySide6.QtWidgets import QMainWindow

    from bench.bench_stream_render import rich_text
    from victor_gui.ui.loop import freeze_startup_objects
    from victor_gui.ui.message_body import warm_up_rendering
    from victor_gui.ui.theme import apply_theme
    from victor_gui.ui.transcript import Transcript

    window = QMainWindow()
    window.resize(1100, 720)  # the main window's size: the transcript as wide as in the app
    apply_theme("light")
    transcript = Transcript()
    window.setCentralWidget(transcript)
    window.show()
    await warm_up_rendering()
    freeze_startup_objects()
    text = rich_text(args.tokens)
    results = []
    for n in range(args.runs):
        r = await one_run(transcript, text, args.chars)
        print(f"run {n + 1}: main-thread CPU per turn p99 {r['cpu_p99']:.1f} ms, max {r['cpu_max']:.1f}; "
              f"wall p99 {r['wall_p99']:.1f} ms, max {r['wall_max']:.1f} ({r['s']:.1f} s)", flush=True)
        results.append(r)
    window.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--chars", type=int, default=640, help="characters per 16 ms frame")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import make_loop

    app = QApplication(sys.argv[:1])
    loop = make_loop(app)
    try:
        results = loop.run_until_complete(run(args))
    finally:
        loop.close()
    print(f"median of {len(results)}: CPU p99 {statistics.median(r['cpu_p99'] for r in results):.1f} ms, "
          f"wall p99 {statistics.median(r['wall_p99'] for r in results):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
