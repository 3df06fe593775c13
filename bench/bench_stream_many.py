"""Many streamed replies in one session: does memory come back? (target: RSS growth after the
first 20 replies ≤ 20 MB over 300).

The real window streams ``--replies`` rich replies (code, a table, reasoning) from the
llama-server simulator on 127.0.0.1, each stored as in the app, starting a new chat every
``--per-chat`` replies as a person would (the widgets of a closed chat must be freed). RSS is
read after reply 20 (widget classes, Pygments lexers and caches warm) and after the last.

    QT_QPA_PLATFORM=offscreen python -m bench.bench_stream_many [--replies 300] [--per-chat 10]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from bench.bench_scroll import RICH
from tests.servers.base import Script, free_port
from tests.servers.llamacpp import make_server


async def run(replies: int, per_chat: int) -> dict[str, float]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow

    proc = psutil.Process()
    rss: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp, make_server() as sim:
        os.environ["VICTOR_LLAMACPP_HOST"] = f"127.0.0.1:{sim.port}"
        client = make_client(LOCAL_TIMEOUTS)
        pool = ProviderPool(client)
        store, _ = await open_store(Path(tmp))
        window = MainWindow(pool, store)
        window.show()
        chat = window.chat
        await chat.start()
        done = asyncio.Event()
        chat.reply_finished.connect(lambda _status: done.set())
        t0 = time.perf_counter()
        for n in range(1, replies + 1):
            if n > 1 and (n - 1) % per_chat == 0:
                chat.new_chat()
                await asyncio.sleep(0)
            text = RICH.replace("{i}", str(n))
            sim.script(Script(text=text, reasoning="Think it through first.", pieces=len(text) // 6))
            done.clear()
            chat.input.setPlainText(f"question {n}")
            chat.send()
            await asyncio.wait_for(done.wait(), 30)
            if n in (20, replies):
                await asyncio.sleep(1.0)  # the final render and the store's writes settle
                gc.collect()
                rss[n] = proc.memory_info().rss / 2**20
        elapsed = time.perf_counter() - t0
        await chat.aclose()
        await window.conversations.aclose()
        await window.compare.aclose()
        window.close()
        await store.close()
        await pool.close()
        await client.aclose()
    return {"rss20": rss[20], "rss_end": rss[replies], "s": elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--replies", type=int, default=300)
    parser.add_argument("--per-chat", type=int, default=10)
    args = parser.parse_args()
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST"):
        os.environ[var] = f"127.0.0.1:{free_port()}"  # only the simulator answers
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import make_loop

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)
    loop = make_loop(app)
    with loop:
        r = loop.run_until_complete(run(args.replies, args.per_chat))
    growth = r["rss_end"] - r["rss20"]
    ok = growth <= 20
    print(f"{args.replies} streamed replies ({args.per_chat} per chat) in {r['s']:.0f} s: RSS after 20 "
          f"{r['rss20']:.0f} MB, after {args.replies} {r['rss_end']:.0f} MB, growth {growth:+.1f} MB "
          f"(target ≤ 20: {'PASS' if ok else 'FAIL'})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
