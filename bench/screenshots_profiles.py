"""Screenshots of profiles in the chat window, in light and dark, under a real X server: the
profile drop-down open (one broken profile greyed with its file:line problem), and a transcript
where a profile's first target was down and its fallback answered (the stored note between the
question and the reply).

    python -m bench.screenshots_profiles --out /work/shots

Without ``DISPLAY`` it re-runs itself under ``xvfb-run -a``. Saves ``profiles-open-{light,dark}.png``
and ``profiles-fallback-{light,dark}.png``. Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from bench.xvfb import close_window, grab_screen, run_shots, until
from tests.servers import llamacpp
from tests.servers.base import Script, free_port

PROFILES = """\
profiles:
  desk-fast:
    provider: llamacpp
    model: qwen3-8b-instruct-q4_k_m
    base_url: {desk}/v1
    temperature: 0.2
    description: The desk GPU, low temperature
  resilient:
    provider: llamacpp
    model: qwen3-8b-instruct-q4_k_m
    base_url: http://127.0.0.1:{dead}/v1
    fallback:
      - provider: llamacpp
        base_url: {desk}/v1
  team-gpt:
    provider: openai
    model: gpt-4o
    track_costs: true
  broken:
    provider: ollama
    model: llama3.2
    temperature: 9
"""





async def shoot(out: Path) -> list[Path]:

    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool
    from victor_gui.storage import open_store
    from victor_gui.ui.main_window import MainWindow
    from victor_gui.ui.theme import apply_theme

    desk = llamacpp.make_server(model="qwen3-8b-instruct-q4_k_m").start()
    desk.script(Script(text="Yes — the desk GPU answered after the first server did not. "
                            "The note below says which one failed and why."))
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST"):
        os.environ[var] = f"127.0.0.1:{free_port()}"
    os.environ["VICTOR_LLAMACPP_HOST"] = f"127.0.0.1:{desk.port}"
    folder = Path(tempfile.mkdtemp())
    victor_file = folder / "profiles.yaml"
    victor_file.write_text(PROFILES.format(desk=desk.url, dead=free_port()), encoding="utf-8")
    store, _ = await open_store(folder / "data")
    client = make_client(LOCAL_TIMEOUTS)
    pool = ProviderPool(client)
    window = MainWindow(pool, store)
    window.resize(1100, 720)
    window.show()
    chat = window.chat
    chat.profile_files = (victor_file, folder / "app-profiles.yaml")
    saved: list[Path] = []

    def grab(name: str) -> None:
        saved.append(grab_screen(window, out / name))

    try:
        await chat.start()
        assert chat.profiles_loading is not None
        await chat.profiles_loading
        for mode in ("light", "dark"):
            apply_theme(mode)
            await asyncio.sleep(0.2)
            chat.profile_combo.showPopup()
            await asyncio.sleep(0.5)
            grab(f"profiles-open-{mode}.png")
            chat.profile_combo.hidePopup()
            await asyncio.sleep(0.2)

        index = chat.profile_combo.findData("resilient")
        chat.profile_combo.setCurrentIndex(index)
        chat.profile_combo.activated.emit(index)
        await until(lambda: chat.controller.profile_name == "resilient")
        chat.input.setPlainText("Is anyone answering tonight?")
        chat.send()
        await until(lambda: chat.conversation_id is not None and not chat.running and chat.transcript.notes)
        for mode in ("light", "dark"):
            apply_theme(mode)
            await asyncio.sleep(0.4)
            grab(f"profiles-fallback-{mode}.png")
    finally:
        await close_window(window, pool, client, store)
        desk.stop()
    return saved


if __name__ == "__main__":
    raise SystemExit(run_shots("bench.screenshots_profiles", __doc__, shoot))
