"""Chatting, from the window, with an engine the app started: wait for the registry to see it,
pick it in the chat's provider drop-down, send, and return the stored reply. Shared by the tests
that start a llama-server from the model manager, the downloads panel or the first-run offer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.servers.base import free_port
from tests.ui.conftest import stored_messages, wait_until
from tests.ui.test_registry_picker import items


async def start_with_engine(window: Any, tmp_path: Path, binary: Path, **settings: Any) -> Any:
    """The app's services, as after the first paint, on a settings.yaml naming ``binary`` as the
    llama-server (plus ``settings``); engine logs under ``tmp_path / "logs"``. Returns the
    window's ServerWindows (the caller closes it with ``aclose()``)."""
    path = tmp_path / "settings.yaml"
    path.write_text(yaml.safe_dump({"config_version": 3, "llama_server_path": str(binary), **settings}))
    views = window.server_windows
    chat = window.chat
    await views.start(chat.pool.http_client, on_registry=chat.start, settings_path=path,
                      gpu_detector=None, interval=0.5, scan_processes=False,
                      env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"}, engine_log_dir=tmp_path / "logs")
    return views


async def chat_with_engine(window: Any, url: str, text: str = "Say hello") -> tuple[Any, Any]:
    """Select the server at ``url`` in the chat's picker, send ``text``; returns ``(target, reply)``
    where ``target`` is the registry's entry and ``reply`` the stored assistant message."""
    registry = window.server_windows.endpoints
    chat = window.chat
    assert registry is not None
    await wait_until(lambda: any(t.working and t.members[0].key == url for t in registry.targets()), 20)
    target = next(t for t in registry.targets() if t.members[0].key == url)
    await wait_until(lambda: target.name in items(chat.provider_combo), 10)
    chat.select_provider(target.id)
    await wait_until(lambda: chat.current_choice() is not None
                     and chat.current_choice().display_name == target.name
                     and chat.model_combo.count() > 0, 20)
    chat.input.setPlainText(text)
    chat.send()
    await wait_until(lambda: not chat.running, 60)
    reply = next(m for m in await stored_messages(window) if m.role == "assistant")
    return target, reply


async def stop_from_panel(window: Any, panel: Any, engine: Any, target: Any) -> None:
    """Stop ``engine`` with the engines panel's Stop button: its process ends and its server
    (``target``) leaves the chat's picker."""
    from victor_gui.services.engine_runner import STOPPED

    panel.table.selectRow(panel._rows().index(engine))
    panel.stop_button.click()
    await wait_until(lambda: engine.state == STOPPED, 20)
    await wait_until(lambda: target.name not in items(window.chat.provider_combo), 10)
    assert engine.process is not None and engine.process.returncode is not None
