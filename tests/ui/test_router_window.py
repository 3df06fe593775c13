"""llama-server ROUTER mode from the window, with the REAL binary and two tiny GGUFs in the
user's model folder: model manager → "Serve all my models…" (each model's plan, the router's
command) → Start → the manager shows the router's models, both ``unloaded`` → Load one (the list
says ``loading`` then ``loaded``) → the chat picker lists both; picking the OTHER one in the chat
says it is not loaded yet, and a reply streams (the router loads it on request) → Unload → Stop
(gone from the picker)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.llama_build import binary_for_tests
from tests.support.tiny_gguf import make_tiny_gguf
from tests.ui.conftest import stored_messages, wait_until
from tests.ui.engine_chat import start_with_engine, stop_from_panel
from tests.ui.test_registry_picker import items, no_env  # noqa: F401 - the fixture is used by name
from victor_gui.services.engine_router import RouterPlan
from victor_gui.services.engine_runner import RUNNING
from victor_gui.ui.model_library_view import ModelLibraryView
from victor_gui.ui.router_panel import RouterDialog
from victor_gui.ui.widgets.stacked_bar import human_bytes

pytestmark = [pytest.mark.llamacpp, pytest.mark.usefixtures("keep_running_when_closed")]


def _status_column(view: ModelLibraryView) -> dict[str, str]:
    return {view.table.item(r, 0).text(): view.table.item(r, 5).text() for r in range(view.table.rowCount())}


async def test_serve_all_my_models_load_chat_unload_stop(no_env, window, tmp_path: Path,  # noqa: F811
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    binary = binary_for_tests()
    folder = tmp_path / "models"
    folder.mkdir()
    await asyncio.to_thread(make_tiny_gguf, folder / "tiny-a.gguf")
    await asyncio.to_thread(make_tiny_gguf, folder / "tiny-b.gguf", n_ctx_train=2048)
    (folder / "notes.txt").write_text("not a model")
    # Only this folder: no other app's library.
    views = await start_with_engine(window, tmp_path, binary,
                                    model_folders={"folders": [str(folder)], "reuse_libraries": False})
    chat = window.chat
    try:
        manager = views.open_view("models")
        assert isinstance(manager, ModelLibraryView) and manager.serve_button.isVisible()
        dialog = manager.serve_all()
        assert isinstance(dialog, RouterDialog)
        await wait_until(lambda: dialog.start_button.isEnabled(), 20)
        rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 2).text()
                for r in range(dialog.table.rowCount())}
        assert rows == {"tiny-a": "4,096", "tiny-b": "2,048"}  # each its own plan (tiny-b trained for 2k)
        command = dialog.flags_text.toPlainText()
        assert str(binary) in command and "--models-preset" in command and "--models-max 1" in command
        assert " -m " not in command  # router mode: no model on the command line
        dialog.start_button.click()
        await wait_until(lambda: dialog.engine is not None, 60)
        engine = dialog.engine
        assert engine is not None and engine.state == RUNNING and isinstance(engine.plan, RouterPlan)
        preset = engine.plan.preset_path
        assert preset is not None
        text = preset.read_text()
        assert "[tiny-a]" in text and f"model = {folder / 'tiny-a.gguf'}" in text
        assert "ctx-size = 2048" in text.split("[tiny-b]", 1)[1]
        panel = manager.engines_panel
        assert panel is not None and panel.table.rowCount() == 1
        assert panel.table.item(0, 1).text() == engine.url
        assert engine.measured is not None
        router_alone = engine.measured.total_bytes

        # The manager follows the new router: its models, none loaded.
        service = manager.service
        await wait_until(lambda: service.base_url == engine.url and len(service.models) == 2, 20)
        assert _status_column(manager) == {"tiny-a": "unloaded", "tiny-b": "unloaded"}
        assert {m.name: m.context_length for m in service.models} == {"tiny-a": 4096, "tiny-b": 2048}

        # Load from the window: the status goes loading → loaded.
        seen: list[str] = []
        service.subscribe(lambda event, _p: seen.append(_status_column(manager).get("tiny-a", ""))
                          if event == "models" else None)
        manager.table.selectRow(0)
        await wait_until(lambda: service.selected == "tiny-a" and manager.load_button.isEnabled(), 10)
        manager.load_button.click()
        await wait_until(lambda: _status_column(manager).get("tiny-a") == "loaded", 60)
        assert "loading" in seen
        # The panel measures again: the loaded model's process counts with the router.
        await wait_until(lambda: engine.measured is not None
                         and engine.measured.total_bytes > router_alone + (4 << 20), 10)
        await wait_until(lambda: panel.table.item(0, 3).text().split(" / ")[1]
                         == human_bytes(engine.measured.total_bytes), 5)
        assert "Loading tiny-a: done" in manager.message.text()

        # The chat picker lists both; picking the unloaded one loads it on request.
        registry = views.endpoints
        await wait_until(lambda: any(t.working and t.members[0].key == engine.url
                                     for t in registry.targets()), 20)
        target = next(t for t in registry.targets() if t.members[0].key == engine.url)
        await wait_until(lambda: target.name in items(chat.provider_combo), 10)
        chat.select_provider(target.id)
        await wait_until(lambda: sorted(items(chat.model_combo)) == ["tiny-a", "tiny-b"], 20)
        chat.model_combo.setCurrentIndex(chat.model_combo.findText("tiny-b"))
        assert "tiny-b was not in memory when chosen: llama-server loads it" in chat.status_label.text()
        chat.input.setPlainText("Say hello")
        chat.send()
        await wait_until(lambda: not chat.running, 90)
        reply = next(m for m in await stored_messages(window) if m.role == "assistant")
        assert reply.status == "complete", reply.error
        assert reply.content and reply.model == "tiny-b"
        # At most one model in memory: the router let tiny-a go for tiny-b.
        await service.refresh()
        assert _status_column(manager) == {"tiny-a": "unloaded", "tiny-b": "loaded"}

        # Unload from the window.
        row = next(r for r in range(manager.table.rowCount()) if manager.table.item(r, 0).text() == "tiny-b")
        manager.table.selectRow(row)
        await wait_until(lambda: service.selected == "tiny-b" and manager.unload_button.isEnabled(), 10)
        manager.unload_button.click()
        await wait_until(lambda: _status_column(manager).get("tiny-b") == "unloaded", 30)

        # Stop: the router and its children end; the server leaves the picker.
        await stop_from_panel(window, panel, engine, target)
    finally:
        await views.aclose()
