"""Streaming into the chat pane: throughput against raw httpx, loop gaps, idle memory.

A paced local SSE server (``bench/paced_sim.py``, in its own process) sends the same
N-token stream (default 20,000) to:

1. raw httpx (``aiter_lines`` on a plain asyncio loop, counting ``data:`` lines): the ceiling;
2. the real chat pane in the real main window (offscreen unless ``QT_QPA_PLATFORM`` says
   otherwise): send → last token rendered in the transcript.

Reported: tokens/s of both and their ratio (target ≥ 0.95), the qasync loop's longest gap and
p99 gap while streaming (a ticker task asking for a 1 ms sleep; targets ≤ 50 ms and ≤ 16 ms,
≤ 12 ms with ``--rich``, when streaming ≥ 5,000 tokens/s), then RSS and CPU with the chat open
and idle (≤ 150 MB).

    python -m bench.bench_stream_render [--tokens 20000] [--pace 10000] [--events-per-write 16] [--rich]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time

import httpx
import psutil

from bench.paced_sim import SSESimServer, make_server
from tests.servers.base import Script, free_port


def reply_text(tokens: int, paragraph_tokens: int) -> str:
    """``tokens`` short tokens in paragraphs of ``paragraph_tokens`` (0: one 80 kB paragraph, the
    pathological case: Qt lays a paragraph out whole, so appending to a huge one costs more)."""
    # Every token is four characters: the simulator cuts the text into equal pieces.
    return "".join("to\n\n" if paragraph_tokens and (i + 1) % paragraph_tokens == 0 else "tok "
                   for i in range(tokens))


def rich_text(tokens: int) -> str:
    """``tokens`` × 4 characters of the Markdown models write: prose with inline marks, fenced
    Python, a list, a table (Markdown and Pygments work per live render, unlike plain prose)."""
    para = ("The **function** below uses `numpy` and [the docs](https://numpy.org) say why; "
            "each *step* is explained after it. ") * 3
    code = "```python\n" + "".join(f"def step_{i}(x: float) -> float:\n    return x * {i} + 1  # scale\n"
                                    for i in range(12)) + "```"
    items = "\n".join(f"{i}. Item {i} with *emphasis* and `code`" for i in range(1, 8))
    table = "| name | value |\n|---|---|\n" + "\n".join(f"| row {i} | {i * 3} |" for i in range(6))
    block = "\n\n".join([para, code, items, table, "### Next part"]) + "\n\n"
    return (block * (tokens * 4 // len(block) + 1))[: tokens * 4]


def stream_text(args: argparse.Namespace) -> str:
    return rich_text(args.tokens) if args.rich else reply_text(args.tokens, args.paragraph_tokens)


def make_sim(args: argparse.Namespace, port: int = 0) -> SSESimServer:
    server = make_server(port, events_per_write=args.events_per_write, short_reply_to="warm up")
    delay = args.events_per_write / args.pace if args.pace else 0.0
    text = stream_text(args)
    server.default_script = Script(text=text, pieces=args.tokens, delay_s=delay)
    return server.start()


async def raw_httpx(url: str) -> tuple[int, float]:
    """(tokens, seconds) reading the stream with bare httpx."""
    async with httpx.AsyncClient(timeout=60) as client:
        start = time.perf_counter()
        count = 0
        async with client.stream("POST", f"{url}/v1/chat/completions",
                                 json={"model": "sim-model", "stream": True, "messages": []}) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    if line == "data: [DONE]":
                        break
                    count += 1
        return count, time.perf_counter() - start


async def pane_run(url_port: int, tokens: int, text: str) -> dict[str, float]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.ui.main_window import MainWindow

    os.environ["VICTOR_LLAMACPP_HOST"] = f"127.0.0.1:{url_port}"
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    import tempfile

    from victor_gui.storage import open_store

    data = tempfile.TemporaryDirectory()  # every message is stored as it streams, as in the app
    store, _notice = await open_store(data.name)
    window = MainWindow(pool, store)
    window.show()
    chat = window.chat
    await chat.start()
    from victor_gui.ui.loop import freeze_startup_objects
    from victor_gui.ui.message_body import warm_up_rendering

    await warm_up_rendering()  # as the app does after its first paint
    freeze_startup_objects()
    assert chat.current_choice().name == "llamacpp", chat.status_label.text()

    gaps: list[float] = []
    n_streaming: list[int] = []  # how many of the gaps were measured before the last token
    streaming = asyncio.Event()
    done = asyncio.Event()

    async def ticker() -> None:
        # Runs from send until 1 s after the last token, so the final Markdown render (parsed
        # in a worker thread, then swapped in) is measured too.
        await streaming.wait()
        last = time.perf_counter()
        end_after: float | None = None
        while end_after is None or last < end_after:
            if end_after is None and done.is_set():
                end_after = time.perf_counter() + 1.0
                n_streaming.append(len(gaps))
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    # One short exchange first, as a person's first message would, so widget classes and the
    # connection are warm (the raw reader's figure is its best of three runs, warm as well).
    chat.input.setPlainText("warm up")
    warm = asyncio.Event()
    chat.reply_finished.connect(lambda status: warm.set())
    chat.send()
    await asyncio.wait_for(warm.wait(), 30)
    await asyncio.sleep(0.3)

    tick = asyncio.get_running_loop().create_task(ticker())
    chat.reply_finished.connect(lambda status: done.set())
    chat.input.setPlainText("stream please")
    start = time.perf_counter()
    chat.send()
    streaming.set()
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    await tick
    view = chat.transcript.messages[-1]
    assert chat.generation is not None
    state = chat.generation.state
    assert state.status.value == "done", (state.status, state.error)
    assert view.text == text, "transcript does not hold the whole reply"

    proc = psutil.Process()
    await asyncio.sleep(2.0)  # let the window settle: markdown render, layout, GC
    cpu0 = proc.cpu_times()
    t0 = time.perf_counter()
    await asyncio.sleep(3.0)
    cpu1 = proc.cpu_times()
    idle_cpu = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (time.perf_counter() - t0) * 100
    rss = proc.memory_info().rss / 2**20
    split = n_streaming[0] if n_streaming else len(gaps)
    during_max = max(gaps[:split], default=0.0) * 1000
    after_max = max(gaps[split:], default=0.0) * 1000
    gaps_ms = sorted(g * 1000 for g in gaps)
    result = {
        "pane_tps": tokens / elapsed, "pane_s": elapsed,
        "gap_max_ms": gaps_ms[-1] if gaps_ms else 0.0,
        "gap_p99_ms": gaps_ms[int(len(gaps_ms) * 0.99) - 1] if gaps_ms else 0.0,
        "gap_median_ms": statistics.median(gaps_ms) if gaps_ms else 0.0,
        "ticks": len(gaps_ms), "during_max_ms": during_max, "after_max_ms": after_max,
        "idle_rss_mb": rss, "idle_cpu_pct": idle_cpu,
        "completion_tokens": state.completion_tokens,
        "ttft_ms": state.ttft_ms or 0.0,
        "gen_s": (state.finished_at or 0) - (state.started_at or 0),
    }
    await chat.aclose()
    await window.conversations.aclose()
    await store.close()
    data.cleanup()
    await pool.close()
    await client.aclose()
    window.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=20_000)
    parser.add_argument("--pace", type=float, default=10_000.0,
                        help="server tokens/s (0: as fast as it can; then the client is CPU-bound)")
    parser.add_argument("--events-per-write", type=int, default=16)
    parser.add_argument("--paragraph-tokens", type=int, default=60,
                        help="tokens per paragraph, like prose (0: one 80 kB paragraph)")
    parser.add_argument("--rich", action="store_true",
                        help="stream Markdown with code, lists and tables instead of plain prose")
    parser.add_argument("--no-live-markdown", action="store_true",
                        help="stream plain text only (Markdown once at the end), for comparison")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:  # the simulator's own process (see below)
        sim = make_sim(args, args.serve)
        print("READY", flush=True)
        sys.stdin.read()  # until the parent closes our stdin
        sim.stop()
        return 0
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST"):
        os.environ[var] = f"127.0.0.1:{free_port()}"  # only the simulator answers

    # The simulator runs in its own process: in this one its thread would wait for the GIL
    # whenever the UI thread works, and the pane would be measured against a slowed server.
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.bench_stream_render", "--serve", str(port),
                               "--tokens", str(args.tokens), "--pace", str(args.pace),
                               "--events-per-write", str(args.events_per_write),
                               "--paragraph-tokens", str(args.paragraph_tokens)]
                              + (["--rich"] if args.rich else []),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True)
    assert server.stdout is not None and server.stdin is not None
    assert server.stdout.readline().strip() == "READY"
    url = f"http://127.0.0.1:{port}"
    try:
        raw_runs = [asyncio.run(raw_httpx(url)) for _ in range(3)]
        raw_tokens, raw_s = min(raw_runs, key=lambda r: r[1])
        assert raw_tokens >= args.tokens, raw_tokens  # + the role and usage events

        from PySide6.QtWidgets import QApplication

        from victor_gui.ui.loop import make_loop

        if args.no_live_markdown:
            import victor_gui.ui.message_body as message_body

            message_body.LIVE_TAIL_CHARS = -1
        app = QApplication(sys.argv[:1])
        loop = make_loop(app)
        try:
            r = loop.run_until_complete(pane_run(port, args.tokens,
                                                 stream_text(args)))
        finally:
            loop.close()
    finally:
        server.stdin.close()
        server.wait(timeout=10)

    raw_tps = args.tokens / raw_s
    ratio = r["pane_tps"] / raw_tps
    print(f"stream            {args.tokens} tokens, server pace "
          f"{'unpaced' if not args.pace else f'{args.pace:.0f} tok/s'}, "
          f"{args.events_per_write} events/write, "
          + ("rich Markdown (code, lists, tables)" if args.rich
             else f"paragraphs of {args.paragraph_tokens or '∞'} tokens"))
    print(f"raw httpx         {raw_tps:10.0f} tok/s  ({raw_s * 1000:.0f} ms, best of 3)")
    print(f"chat pane         {r['pane_tps']:10.0f} tok/s  "
          f"({r['pane_s'] * 1000:.0f} ms, send → last token shown)")
    print(f"  of which        TTFT {r['ttft_ms']:.0f} ms, generation task {r['gen_s'] * 1000:.0f} ms")
    ok_ratio = ratio >= 0.95
    print(f"ratio             {ratio:10.2f}   (target ≥ 0.95: {'PASS' if ok_ratio else 'FAIL'})")
    fast = r["pane_tps"] >= 5000
    # Issue 14 item 6: a rich stream (code, lists, tables) holds p99 to 12 ms; plain text to 16.
    p99_target = 12 if args.rich else 16
    ok_gap = r["gap_max_ms"] <= 50 and r["gap_p99_ms"] <= p99_target
    print(f"loop gaps         max {r['gap_max_ms']:.1f} ms, p99 {r['gap_p99_ms']:.1f} ms, "
          f"median {r['gap_median_ms']:.1f} ms over {r['ticks']} ticks "
          f"(targets max ≤ 50, p99 ≤ {p99_target} at ≥ 5000 tok/s: {'PASS' if ok_gap and fast else 'FAIL'})")
    print(f"  longest gap     {r['during_max_ms']:.1f} ms while streaming, "
          f"{r['after_max_ms']:.1f} ms in the second after (final Markdown render)")
    ok_rss = r["idle_rss_mb"] <= 150
    print(f"idle, chat open   RSS {r['idle_rss_mb']:.0f} MB (target ≤ 150: {'PASS' if ok_rss else 'FAIL'}), "
          f"CPU {r['idle_cpu_pct']:.1f} %")
    return 0 if (ok_ratio and ok_gap and fast and ok_rss) else 1


if __name__ == "__main__":
    sys.exit(main())
