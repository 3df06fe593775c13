"""Screenshots of the real window under a real X server (Xvfb), streaming from a local simulator.

    python -m bench.screenshots --out /tmp/shots

Without ``DISPLAY`` it re-runs itself under ``xvfb-run -a``. It saves:

* ``01-no-server.png``: first start with no local server and no key (the guidance line);
* ``02-mid-stream.png``: a reply streaming (reasoning box, text arriving, Stop enabled);
* ``03-finished.png``: the same reply rendered as Markdown, with its stats line;
* ``04-settings.png``: the Settings dialog, API keys page (an in-memory keyring, one key saved,
  one from the environment);
* ``05-narrow.png``: the finished chat with the window at its minimum width (titles and stats
  wrap, nothing cut at the right edge).

Step 2 runs over a temporary conversation store holding a few earlier chats (the list on the
left).

Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

from bench.xvfb import run_shots
from tests.servers.base import Script, free_port
from tests.servers.llamacpp import make_server

REPLY = """Here is a small **Python** function that reads a file in chunks, so a large file never
has to fit in memory:

```python
def read_chunks(path, size=64 * 1024):
    with open(path, "rb") as handle:
        while chunk := handle.read(size):
            yield chunk
```

Why this works:

1. `open(..., "rb")` reads bytes, so no decoding cost per chunk.
2. The walrus operator ends the loop on the empty `bytes` at end of file.
3. Being a generator, it hands out one chunk at a time.

| chunk size | typical use |
|---|---|
| 4 KiB | small config files |
| 64 KiB | logs, CSV |
| 1 MiB | media, archives |

Call it with `for chunk in read_chunks("big.log"): ...` and process each piece as it comes.
"""

REASONING = ("The user wants to read a big file. A generator with a fixed chunk size is the "
             "idiomatic answer; mention binary mode and the walrus operator.")


EARLIER_CHATS = (
    ("Plan a three-day trip to Lisbon", "Day one: Alfama and the castle…"),
    ("Explain Rust lifetimes simply", "A lifetime names how long a borrow is valid…"),
    ("SQL: rank rows within groups", "Use a window function: RANK() OVER (PARTITION BY …)"),
    ("Draft a polite reminder email", "Subject: A gentle reminder about Friday's report…"),
)


async def _fill(store) -> None:  # type: ignore[no-untyped-def]
    for title, answer in EARLIER_CHATS:
        conv = await store.create_conversation(title)
        await store.add_message(conv.id, "user", title)
        await store.add_message(conv.id, "assistant", answer, provider="ollama", model="qwen3:8b")


def _free_env() -> None:
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST", "VICTOR_LLAMACPP_HOST"):
        os.environ[var] = f"127.0.0.1:{free_port()}"


async def shoot(out: Path) -> list[Path]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.ui.main_window import MainWindow

    saved: list[Path] = []

    def grab(window: MainWindow, name: str) -> None:
        # No processEvents() here: re-entering the Qt loop from inside a task makes qasync run
        # other tasks inside this one. window.grab() paints synchronously anyway.
        path = out / name
        window.grab().save(str(path))
        saved.append(path)

    client = make_client(LOCAL_TIMEOUTS)

    # 1. Nothing running, no key.
    _free_env()
    pool = ProviderPool(client)
    window = MainWindow(pool)
    window.resize(1100, 720)
    window.show()
    await window.chat.start()
    await asyncio.sleep(0.3)
    grab(window, "01-no-server.png")
    await window.chat.aclose()
    await pool.close()
    window.close()

    # 2. A llama.cpp-style server with two models, streaming a reply at a readable pace, over a
    #    store with a few earlier chats.
    from victor_gui.storage import open_store

    data = tempfile.TemporaryDirectory()
    store, _notice = await open_store(Path(data.name))
    await _fill(store)
    with make_server() as sim:
        sim.models = ["qwen3-8b-instruct-q4_k_m", "llama-3.2-3b-instruct"]
        sim.model = sim.models[0]  # the name its replies report (the stats line)
        sim.script(Script(text=REPLY, reasoning=REASONING, pieces=len(REPLY) // 4, delay_s=0.012))
        os.environ["VICTOR_LLAMACPP_HOST"] = f"127.0.0.1:{sim.port}"
        pool = ProviderPool(client)
        window = MainWindow(pool, store)
        window.resize(1100, 720)
        window.show()
        chat = window.chat
        await chat.start()
        chat.input.setPlainText("How do I read a huge file in Python without loading it all?")
        finished = asyncio.Event()
        chat.reply_finished.connect(lambda status: finished.set())
        chat.send()
        reply = chat.transcript.messages[-1]
        reply.reasoning_toggle.setChecked(True)
        while len(reply.text) < len(REPLY) * 0.45:  # noqa: ASYNC110 (polling a widget)
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)  # one more frame
        grab(window, "02-mid-stream.png")
        await finished.wait()
        reply.reasoning_toggle.setChecked(False)
        await asyncio.sleep(0.5)  # Markdown is parsed in a worker thread, then swapped in
        grab(window, "03-finished.png")
        window.resize(window.minimumWidth(), 720)
        await asyncio.sleep(0.3)  # layouts settle (wrapped labels take a pass or two)
        grab(window, "05-narrow.png")
        window.resize(1100, 720)

        # 4. Settings, API keys page: an in-memory keyring with one key saved, one key in the env.
        from tests.config.memory_keyring import MemoryKeyring, use_backend
        from victor_gui.config.secrets import KeyringStore, install_keyring_store

        os.environ["OPENAI_API_KEY"] = "sk-screenshot-not-a-real-key"
        with use_backend(MemoryKeyring()):
            keys = install_keyring_store(KeyringStore())
            keys.set_key("anthropic", "sk-ant-screenshot-not-a-real-key")
            window.keyring_store = keys
            dialog = window.open_settings()
            dialog.resize(820, 560)
            while dialog.keys.rows["anthropic"].status.text() == "…":  # noqa: ASYNC110
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            path = out / "04-settings.png"
            dialog.grab().save(str(path))
            saved.append(path)
            dialog.close()
        await chat.aclose()
        await window.conversations.aclose()
        await pool.close()
        window.close()
    await store.close()
    data.cleanup()
    await client.aclose()
    return saved


def main() -> int:
    return run_shots("bench.screenshots", __doc__, shoot)


if __name__ == "__main__":
    sys.exit(main())
