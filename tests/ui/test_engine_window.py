"""Run a local GGUF from the window with the REAL llama-server: model manager → "Run with
llama-server…" (the plan's flags, editable context) → Start → the server is in the chat picker →
a reply streams into the chat → Show log → Stop (gone from the picker). The binary comes from
Settings (``llama_server_path``), as a user sets it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.llama_build import binary_for_tests
from tests.support.tiny_gguf import make_tiny_gguf
from tests.ui.conftest import wait_until
from tests.ui.engine_chat import chat_with_engine, start_with_engine, stop_from_panel
from tests.ui.test_registry_picker import items, no_env  # noqa: F401 - the fixture is used by name
from victor_gui.services.engine_runner import RUNNING
from victor_gui.ui.engine_panel import RunEngineDialog
from victor_gui.ui.model_library_view import ModelLibraryView

pytestmark = [pytest.mark.llamacpp, pytest.mark.usefixtures("keep_running_when_closed")]


async def test_run_a_gguf_from_the_window_and_chat_with_it(no_env, window, tmp_path: Path) -> None:  # noqa: F811
    binary = binary_for_tests()
    model = await asyncio.to_thread(make_tiny_gguf, tmp_path / "tiny-chat.gguf")
    views = await start_with_engine(window, tmp_path, binary)
    chat = window.chat
    try:
        manager = views.open_view("models")
        assert isinstance(manager, ModelLibraryView) and manager.engines_panel is not None
        await manager.service.use_gguf(model)
        assert manager.run_button.isVisible()
        dialog = manager.run_file()
        assert isinstance(dialog, RunEngineDialog)
        await wait_until(lambda: dialog.start_button.isEnabled(), 10)
        flags = dialog.flags_text.toPlainText()
        assert str(binary) in flags and "-c 4096" in flags and "-ngl 0" in flags and "--jinja" in flags
        assert "CPU only" in dialog.verdict.text()
        dialog.ctx_spin.setValue(2048)  # the context is editable; the flags follow
        assert "-c 2048" in dialog.flags_text.toPlainText()
        dialog.start_button.click()
        await wait_until(lambda: dialog.engine is not None, 60)
        engine = dialog.engine
        assert engine is not None and engine.state == RUNNING and "-c 2048" in engine.command
        assert not dialog.isVisible()  # the dialog closes once the server answers
        # The engines list shows it.
        panel = manager.engines_panel
        assert panel.table.rowCount() == 1 and panel.table.item(0, 1).text() == engine.url
        estimate, measured = panel.table.item(0, 3).text().split(" / ")
        assert estimate and measured != "—"  # estimate and measured memory side by side
        # The chat picker offers it like any server; a reply streams from it.
        target, reply = await chat_with_engine(window, engine.url)
        assert reply.status == "complete", reply.error
        assert reply.content and chat.transcript.messages[-1].text == reply.content
        assert reply.endpoint is not None and engine.url in reply.endpoint
        # Show log: the command line first, then the server's own lines.
        panel.table.selectRow(0)
        log_dialog = panel.show_log()
        assert log_dialog is not None
        await wait_until(lambda: log_dialog.text.toPlainText().startswith("$ "), 10)
        assert "--jinja" in log_dialog.text.toPlainText().splitlines()[0]
        log_dialog.close()
        # Stop: the process ends and the server leaves the picker.
        await stop_from_panel(window, panel, engine, target)
    finally:
        await views.aclose()
