"""Screenshots of the grouped provider picker, open, in light and dark, under a real X server:
hand-added endpoints by name with live status dots (one up, one down), a group of two, the
down default ports folded into one "Not running" line, clouds with a key, then clouds without.

    python -m bench.screenshots_picker --out /work/shots

Without ``DISPLAY`` it re-runs itself under ``xvfb-run -a``. Saves ``picker-light.png`` and
``picker-dark.png``. Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

import yaml

from bench.xvfb import run_shots, until
from tests.servers import llamacpp, vllm
from tests.servers.base import free_port

SEED_VARS = ("OLLAMA_HOST", "OLLAMA_ENDPOINTS", "VICTOR_LM_STUDIO_HOST", "LMSTUDIO_ENDPOINTS",
             "VICTOR_VLLM_HOST", "VICTOR_LLAMACPP_HOST")





async def shoot(out: Path) -> list[Path]:
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.theme import apply_theme

    for var in SEED_VARS:
        os.environ.pop(var, None)
    os.environ["OPENAI_API_KEY"] = "sk-screenshot-only-0000000000"  # one cloud with a key
    desk = llamacpp.make_server(model="qwen3-8b-instruct-q4_k_m").start()
    lab = vllm.make_server(model="Qwen/Qwen3-8B").start()
    settings = Path(tempfile.mkdtemp()) / "settings.yaml"
    settings.write_text(yaml.safe_dump({"config_version": 3, "endpoints": [
        {"name": "Desk llama.cpp", "kind": "llamacpp", "url": desk.url},
        {"name": "Attic box", "kind": "ollama", "url": f"http://127.0.0.1:{free_port()}"},
        {"name": "Lab vLLM", "kind": "vllm", "url": lab.url, "group": "Lab GPUs"},
        {"name": "Lab vLLM 2", "kind": "vllm", "url": f"http://127.0.0.1:{free_port()}", "group": "Lab GPUs"},
    ]}))
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    window = MainWindow(pool)
    window.resize(1100, 720)
    window.show()
    saved: list[Path] = []
    try:
        await window.server_windows.start(client, on_registry=window.chat.start, settings_path=settings,
                                          env={}, scan_processes=False, gpu_detector=None, interval=30.0)
        registry = window.server_windows.endpoints
        assert registry is not None
        chat = window.chat
        await until(lambda: all(m.status is not None and m.state.value != "unknown"
                                for m in registry.endpoints()))
        await until(lambda: chat.model_combo.count() > 0)
        await until(lambda: any(c.has_key for c in chat._clouds))
        for mode in ("light", "dark"):
            apply_theme(mode)
            await asyncio.sleep(0.2)
            chat.provider_combo.showPopup()
            await asyncio.sleep(0.5)
            QApplication.processEvents()
            screen = QGuiApplication.primaryScreen()
            path = out / f"picker-{mode}.png"
            geometry = window.frameGeometry()
            shot = screen.grabWindow(0, geometry.x(), geometry.y(), geometry.width(), geometry.height())
            shot.save(str(path))
            saved.append(path)
            chat.provider_combo.hidePopup()
            await asyncio.sleep(0.2)
    finally:
        await window.server_windows.aclose()
        await window.chat.aclose()
        await pool.close()
        await client.aclose()
        window.close()
        desk.stop()
        lab.stop()
    return saved


if __name__ == "__main__":
    raise SystemExit(run_shots("bench.screenshots_picker", __doc__, shoot))
