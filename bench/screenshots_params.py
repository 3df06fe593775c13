"""Screenshots of the chat's parameters panel, the assistant picker and the context meter at
amber, light and dark, under a real X server (Xvfb), against the llama.cpp simulator.

    python -m bench.screenshots_params --out /tmp/shots

Saves ``params-panel-{light,dark}.png``, ``assistant-picker-{light,dark}.png`` and
``context-meter-amber-{light,dark}.png``. Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bench.xvfb import close_window, grab_screen, run_shots, until
from tests.servers import llamacpp
from tests.servers.base import Script, free_port


async def shoot(out: Path) -> list[Path]:
    from PySide6.QtWidgets import QWidget

    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.assistants import Assistant, Assistants
    from victor_gui.services.context_window import AMBER_AT, draft_tokens
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.theme import apply_theme

    desk = llamacpp.make_server(model="qwen3-8b-instruct-q4_k_m", n_ctx=4096).start()
    desk.script(Script(text="Sure — a generator that reads the file in 64 KiB chunks keeps memory flat.",
                       repeat=5))
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST"):
        os.environ[var] = f"127.0.0.1:{free_port()}"
    os.environ["VICTOR_LLAMACPP_HOST"] = f"127.0.0.1:{desk.port}"
    folder = Path(tempfile.mkdtemp())
    store, _ = await open_store(folder / "data")
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    window = MainWindow(pool, store)
    window.assistants = Assistants(folder / "assistants.yaml")
    for assistant in (
        Assistant(name="Code reviewer", description="Terse, specific reviews of a diff.",
                  system_prompt="You review code. Point at lines, suggest the fix, skip praise.",
                  params={"temperature": 0.2, "top_k": 20, "min_p": 0.05, "seed": 42},
                  provider="llamacpp", model="qwen3-8b-instruct-q4_k_m"),
        Assistant(name="Translator (FR)", description="Everything into French, nothing else.",
                  system_prompt="Translate every message into French.", params={"temperature": 0.1}),
        Assistant(name="Brainstorm", description="Many ideas, loosely.",
                  params={"temperature": 1.1, "top_p": 0.95, "presence_penalty": 0.6}),
    ):
        await window.assistants.save(assistant)
    window.resize(1100, 720)
    window.show()
    chat = window.chat
    saved: list[Path] = []

    def grab(widget: QWidget, name: str) -> None:
        saved.append(grab_screen(widget, out / name))

    try:
        await chat.start()
        await until(lambda: chat.model_combo.currentText() != "")
        chat.input.setPlainText("How do I read a large file in Python without loading it all?")
        chat.send()
        await until(lambda: chat.conversation_id is not None and not chat.running)
        await chat.apply_params("You are a careful Python mentor.", {
            "temperature": 0.3, "top_p": 0.9, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1,
            "seed": 1234, "stop": ["<|end|>"], "max_tokens": 1024})
        for mode in ("light", "dark"):
            apply_theme(mode)
            dialog = window.open_chat_params()
            await until(lambda d=dialog: d.fields["top_k"].value() == 40)  # type: ignore[misc]
            await asyncio.sleep(0.4)
            grab(dialog, f"params-panel-{mode}.png")
            dialog.close()

            picker = window.open_assistants()
            await until(lambda p=picker: p.list.count() == 3)  # type: ignore[misc]
            await asyncio.sleep(0.4)
            grab(picker, f"assistant-picker-{mode}.png")
            picker.close()

        await until(lambda: chat.meter.use is not None)
        budget = chat.meter.use.budget if chat.meter.use else 3072
        draft = "Please review this function and explain each line. "
        while chat.meter.history + draft_tokens(draft) < budget * (AMBER_AT + 0.05):
            draft += "Please review this function and explain each line. "
        chat.input.setPlainText(draft)
        await until(lambda: chat.meter.level == "amber")
        for mode in ("light", "dark"):
            apply_theme(mode)
            await asyncio.sleep(0.4)
            grab(window, f"context-meter-amber-{mode}.png")
    finally:
        await close_window(window, pool, client, store)
        desk.stop()
    return saved


if __name__ == "__main__":
    raise SystemExit(run_shots("bench.screenshots_params", __doc__, shoot))
