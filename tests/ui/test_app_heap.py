"""The running app gives freed heap pages back to the OS once start-up is done, after the
first-run offer opened and again after a chat was opened (issue 14 item 6: idle memory;
:mod:`victor_gui.core.heap`).

The real ``App`` in a fresh interpreter, on a data folder holding one chat, with every local
server address on a closed port and no keyring, as a first launch on a machine without servers."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.servers.base import free_port
from tests.support.app_env import isolated_dirs_env
from victor_gui.core.heap import can_release

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import asyncio, json, sys

from PySide6.QtWidgets import QApplication

from victor_gui.ui.app import App

qapp = QApplication(sys.argv[:1])
app = App(qapp)
app.heap.delay_s = 0.5
seen = {}
windows = app.window.server_windows


async def main():
    await app.ready.wait()
    for _ in range(200):
        if windows.first_run is not None:
            break
        await asyncio.sleep(0.1)
    # After the first health round the offer opens by itself where no server answers (here,
    # unless the process scan finds one: under pytest other tests' servers may be listening).
    await windows.first_run.needed()
    await asyncio.sleep(1.5)
    seen["after_start"] = app.heap.trims
    offered_at = app.loop.time()
    windows.first_run_action.trigger()  # Help → Get a model…: the offer, built afresh
    seen["offer"] = windows.first_run_panel is not None
    await asyncio.sleep(1.5)
    seen["trim_after_offer"] = app.heap.last_trim is not None and app.heap.last_trim > offered_at
    seen["before_open"] = app.heap.trims
    chats = await app.store.list_conversations()
    await app.window.chat.open_conversation(chats[0].id)
    await asyncio.sleep(1.5)
    seen["after_open"] = app.heap.trims
    seen["shown"] = len(app.window.chat.transcript.messages)
    print(json.dumps(seen), flush=True)
    app.window.close()
    app.loop.stop()


app.loop.create_task(main())
app.run()
"""


async def _seed(data_home: Path) -> None:
    from victor_gui.storage import open_store

    store, _ = await open_store(data_home / "victor_gui")
    conv = await store.create_conversation("One chat")
    await store.add_message(conv.id, "user", "Show me code")
    await store.add_message(conv.id, "assistant",
                            "```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    await store.close()


@pytest.mark.skipif(not can_release(), reason="only glibc (Linux) has malloc_trim")
def test_the_app_trims_after_start_up_the_offer_and_opening_a_chat(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               **isolated_dirs_env(tmp_path / "home", tmp_path / "config", tmp_path / "data"))
    for var in ("VICTOR_LLAMACPP_HOST", "OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST"):
        env[var] = f"127.0.0.1:{free_port()}"  # nothing answers there
    asyncio.run(_seed(tmp_path / "data"))
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["shown"] == 2  # the chat really opened
    assert seen["after_start"] >= 1  # start-up's burst (the offer may open within it)
    assert seen["offer"] and seen["trim_after_offer"]  # the offer's allocations are trimmed too
    assert seen["before_open"] == seen["after_start"] + 1  # once for the offer
    assert seen["after_open"] == seen["before_open"] + 1  # and once for the opened chat
