"""Screenshots of the look (issue 14), light and dark, under a real X server:

* ``look-chat-MODE.png``: a chat with reasoning (unfolded), a tool call (unfolded), code with
  syntax colours and a table, in the window with its sidebar;
* ``look-settings-MODE.png``: the Settings dialog;
* ``look-compare-MODE.png``: compare mode;
* ``look-dashboard-MODE.png``: the local servers' dashboard, a llama.cpp simulator up and one
  address where nothing listens.

    python -m bench.screenshots_look --out shots

Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bench.screenshots import REASONING, REPLY
from bench.screenshots_tools import _fill
from bench.xvfb import run_shots


async def shoot(out: Path) -> list[Path]:
    from PySide6.QtCore import Qt

    from tests.servers.base import free_port
    from tests.servers.llamacpp import make_server
    from victor_gui.providers.http import LOCAL_TIMEOUTS, PROBE_TIMEOUTS, make_client
    from victor_gui.services.endpoints_service import EndpointsService
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.sizing.hardware import GpuReport, RamInfo
    from victor_gui.storage import open_store
    from victor_gui.ui.dashboard import Dashboard
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.theme import apply_theme
    from victor_gui.ui.tool_views import ToolCallBlock

    home = tempfile.TemporaryDirectory()
    os.environ["XDG_CONFIG_HOME"] = str(Path(home.name) / "config")
    os.environ["XDG_DATA_HOME"] = str(Path(home.name) / "data")
    saved: list[Path] = []
    sim = make_server()
    sim.start()
    os.environ["VICTOR_LLAMACPP_HOST"] = f"127.0.0.1:{sim.port}"
    client = make_client(LOCAL_TIMEOUTS)
    probe = make_client(PROBE_TIMEOUTS)
    pool = ProviderPool(client)
    store, _notice = await open_store(Path(home.name) / "chats")
    conv_id = await _fill(store)
    await store.add_message(conv_id, "user", "And how do I read a big file in Python?")
    await store.add_message(conv_id, "assistant", REPLY, reasoning=REASONING,
                            provider="llamacpp", model="qwen3-8b-instruct-q4_k_m")
    for title in ("Trip to Lisbon", "SQL window functions", "Fix the flaky test"):
        await store.create_conversation(title)

    async def detect() -> GpuReport:
        return GpuReport(ram=RamInfo(32 << 30, 14 << 30), notes=["nvidia: nvidia-smi not found"])

    endpoints = EndpointsService(probe, settings_path=Path(home.name) / "settings.yaml", discover_fn=None,
                                 gpu_detector=detect, interval=5, tick_s=5)
    window = MainWindow(pool, store)
    window.resize(1100, 760)
    window.show()
    chat = window.chat
    await chat.start()

    def grab(widget, name: str) -> None:  # type: ignore[no-untyped-def]
        path = out / name
        widget.grab().save(str(path))
        saved.append(path)

    dash = None
    try:
        await endpoints.start()
        endpoints.watch([f"http://127.0.0.1:{sim.port}", f"http://127.0.0.1:{free_port()}"])
        await endpoints.refresh_now()
        for mode in ("light", "dark"):
            apply_theme(mode)
            await window.conversations.refresh()
            await chat.open_conversation(conv_id)
            window.conversations.set_current(conv_id)
            await asyncio.sleep(0.6)
            blocks = [w for w in chat.transcript.items if isinstance(w, ToolCallBlock)]
            if blocks:
                blocks[0].set_expanded(True)
            last = chat.transcript.messages[-1]
            last.reasoning_toggle.setChecked(True)
            await asyncio.sleep(0.3)
            chat.transcript.scroll_to(blocks[0] if blocks else last)
            await asyncio.sleep(0.4)
            window.resize(1100, 1180)  # the whole exchange in one shot
            await asyncio.sleep(0.4)
            grab(window, f"look-chat-{mode}.png")
            window.resize(1100, 760)

            settings = window.open_settings()
            settings.resize(820, 620)
            await asyncio.sleep(0.6)
            grab(settings, f"look-settings-{mode}.png")
            settings.close()

            window.compare.enter()
            await asyncio.sleep(0.6)
            grab(window, f"look-compare-{mode}.png")
            window.compare.leave()
            await asyncio.sleep(0.2)

            if dash is None:
                dash = Dashboard(endpoints, window)
                dash.setWindowFlag(Qt.WindowType.Window, True)
                dash.resize(900, 600)
            dash.show()
            await asyncio.sleep(0.6)
            grab(dash, f"look-dashboard-{mode}.png")
            dash.hide()
    finally:
        await endpoints.close()
        await chat.aclose()
        await window.conversations.aclose()
        await window.compare.aclose()
        await pool.close()
        await client.aclose()
        await probe.aclose()
        await store.close()
        window.close()
        sim.stop()
        home.cleanup()
    return saved


if __name__ == "__main__":
    raise SystemExit(run_shots("bench.screenshots_look", __doc__, shoot))
