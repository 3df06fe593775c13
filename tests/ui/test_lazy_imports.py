"""Opening the window with one chat does not load what only attachments, search or keys need
(issue 14 item 6: idle memory). Each of these was loaded at start-up before: NumPy (~14 MB of
RSS) through the retrieval code, Pillow through the image preparation, keyring (~11 MB) through
the secrets module, rich and click through httpx's command-line tool, multiprocessing through
the document worker.

Checked in a fresh interpreter, since the test process itself has imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

LAZY = ("PIL", "numpy", "pypdf", "docx", "pptx", "openpyxl", "keyring", "rich", "click", "multiprocessing")

CHILD = r"""
import asyncio, json, sys, tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

from victor_gui.ui import app as app_module
from victor_gui.ui.loop import make_loop


async def main(tmp: str) -> None:
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.message_body import warm_up_rendering

    await asyncio.to_thread(app_module._warm_imports)  # what the app imports after its first paint
    store, _ = await open_store(Path(tmp))
    conv = await store.create_conversation("One chat")
    await store.add_message(conv.id, "user", "Show me **code**")
    await store.add_message(conv.id, "assistant",
                            "Here:\n\n```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    window = MainWindow(None, store)
    window.show()
    await warm_up_rendering()
    await window.chat.open_conversation(conv.id)
    window.repaint()
    await asyncio.sleep(0.3)  # the stored reply's Markdown render
    shown = [v.text for v in window.chat.transcript.messages]
    print(json.dumps({"modules": sorted({m.split(".")[0] for m in sys.modules}), "shown": shown}))
    await window.chat.aclose()
    await window.conversations.aclose()
    window.close()
    await store.close()


app = QApplication(sys.argv[:1])
app.setQuitOnLastWindowClosed(False)
loop = make_loop(app)
with tempfile.TemporaryDirectory() as tmp, loop:
    loop.run_until_complete(main(tmp))
"""


def run_child(code: str, tmp_path: Path) -> Any:
    """Run ``code`` in a fresh interpreter (offscreen, state under ``tmp_path``); its last
    stdout line, read as JSON."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_STATE_HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_window_with_one_chat_open_loads_no_attachment_search_or_key_modules(tmp_path: Path) -> None:
    result = run_child(CHILD, tmp_path)
    # The chat really opened and rendered (Markdown and Pygments loaded, both messages shown).
    assert result["shown"][-2:] == ["Show me **code**",
                                    "Here:\n\n```python\nprint(1)\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"]
    assert {"markdown_it", "pygments", "httpx", "pydantic"} <= set(result["modules"])
    assert [m for m in LAZY if m in result["modules"]] == []
