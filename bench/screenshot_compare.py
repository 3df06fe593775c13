"""A screenshot of the compare view: three panes streaming side by side from three local
simulators (llama.cpp, vLLM, LM Studio) at different speeds, under a real X server (Xvfb).

    python -m bench.screenshot_compare --out /tmp/shots

Without ``DISPLAY`` it re-runs itself under ``xvfb-run -a``. Saves ``compare-mid-stream.png``
(the fastest pane already finished with its stats line, the other two mid-stream). Only for
people and the README; nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

from bench.xvfb import until
from tests.servers import llamacpp, lmstudio, vllm
from tests.servers.base import Script, free_port

REPLY = """A **mutex** lets one thread at a time into a critical section; a **semaphore** counts,
so up to *n* threads may enter.

- Use a mutex to guard shared state (a cache, a counter).
- Use a semaphore to cap concurrency (at most 4 downloads at once).

```python
sem = asyncio.Semaphore(4)
async with sem:
    await fetch(url)
```

A mutex also has an owner: only the thread that locked it may unlock it.
"""

# (simulator module, env var, model, seconds between pieces): three speeds side by side.
SERVERS = [
    (llamacpp, "VICTOR_LLAMACPP_HOST", "qwen3-8b-instruct-q4_k_m", 0.012),
    (vllm, "VICTOR_VLLM_HOST", "Qwen/Qwen3-8B", 0.03),
    (lmstudio, "VICTOR_LM_STUDIO_HOST", "llama-3.2-3b-instruct", 0.05),
]
PROVIDERS = ["llamacpp", "vllm", "lmstudio"]





async def shoot(out: Path) -> Path:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.ui.main_window import MainWindow

    os.environ["OLLAMA_HOST"] = f"127.0.0.1:{free_port()}"
    sims = []
    for module, var, model, delay in SERVERS:
        sim = module.make_server(model=model).start()
        sim.script(Script(text=REPLY, pieces=len(REPLY) // 4, delay_s=delay))
        os.environ[var] = f"127.0.0.1:{sim.port}"
        sims.append(sim)
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    window = MainWindow(pool)
    window.resize(1280, 760)
    window.show()
    try:
        await window.chat.start()
        window.chat.input.setPlainText("Mutex or semaphore: when do I use which?")
        window.compare.split_action.trigger()  # Ctrl+\: two panes
        window.compare.split_action.trigger()  # again: a third
        compare = window.compare.view
        for pane, name, (_m, _v, model, _d) in zip(compare.panes, PROVIDERS, SERVERS, strict=True):
            pane.picker.select_provider(name)
            await until(lambda p=pane, m=model: p.picker.current_model() == m)
        compare.send()
        slowest = compare.panes[-1].slot
        await until(lambda: slowest.state is not None
                    and len(slowest.state.content) >= len(REPLY) * 0.4)
        await asyncio.sleep(0.05)  # one more frame
        path = out / "compare-mid-stream.png"
        window.grab().save(str(path))
        compare.stop_all()
        await compare.aclose()
        await window.chat.aclose()
    finally:
        await pool.close()
        await client.aclose()
        window.close()
        for sim in sims:
            sim.stop()
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("screenshots-out"))
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        if shutil.which("xvfb-run") is None:
            print("No DISPLAY and no xvfb-run; set QT_QPA_PLATFORM=offscreen to render without X")
            return 2
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1400x900x24", sys.executable, "-m",
               "bench.screenshot_compare", "--out", str(args.out)]
        return subprocess.call(cmd)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import make_loop

    app = QApplication(sys.argv[:1])
    loop = make_loop(app)
    try:
        print(loop.run_until_complete(shoot(args.out)))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
