"""The chat picker over the server registry, real widgets offscreen: hand-added endpoints under
their names with live status dots, model lists from the health monitor (one probe per endpoint
per start-up cycle, dashboard and chat together), a down endpoint's diagnosis inline, and a REAL
llama-server added by hand answering into the conversation store."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from PySide6.QtCore import Qt

from tests.servers.base import free_port
from tests.support.llama_build import binary_for_tests
from tests.support.llama_server import LlamaServer, start_llama_server
from tests.support.recording import make_llamacpp
from tests.support.tiny_gguf import make_tiny_gguf
from tests.ui.conftest import stored_messages, wait_until
from victor_gui.providers.catalog import SPECS
from victor_gui.providers.keys import set_secret_store
from victor_gui.ui.model_picker import NOT_RUNNING

SEED_VARS = ("OLLAMA_HOST", "OLLAMA_ENDPOINTS", "VICTOR_LM_STUDIO_HOST", "LMSTUDIO_ENDPOINTS",
             "VICTOR_VLLM_HOST", "VICTOR_LLAMACPP_HOST")


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """NO seed variable set, no keys: only settings.yaml names servers."""
    for var in SEED_VARS:
        monkeypatch.delenv(var, raising=False)
    for spec in SPECS:
        for var in spec.key_env_vars:
            monkeypatch.delenv(var, raising=False)
    set_secret_store(None)
    yield


def write_settings(path: Path, endpoints: list[dict[str, object]]) -> Path:
    path.write_text(yaml.safe_dump({"config_version": 3, "endpoints": endpoints}))
    return path


def items(combo) -> list[str]:  # type: ignore[no-untyped-def]
    return [combo.itemText(i) for i in range(combo.count())]


async def start_app_services(window, settings: Path, **options) -> None:  # type: ignore[no-untyped-def]
    """What the app does after the first paint: the registry (dashboard's service) is built and
    handed to the chat. Default ports are pointed away from this machine's own servers."""
    options.setdefault("env", {"OLLAMA_HOST": f"127.0.0.1:{free_port()}"})
    options.setdefault("scan_processes", False)
    await window.server_windows.start(window.chat.pool.http_client, on_registry=window.chat.start,
                                      settings_path=settings, gpu_detector=None, interval=30.0, **options)


async def test_start_up_sends_one_probe_per_endpoint(no_env, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with make_llamacpp(model="tiny-a") as sim:
        settings = write_settings(tmp_path / "settings.yaml",
                                  [{"name": "Desk box", "kind": "llamacpp", "url": sim.url}])
        chat = window.chat
        await start_app_services(window, settings)
        window.server_windows.open_view("endpoints")  # the dashboard is open too
        await wait_until(lambda: items(chat.model_combo) == ["tiny-a"], 10)
        await asyncio.sleep(0.5)
        paths = Counter(r.path for r in sim.requests)
        await window.server_windows.aclose()
    # Before the registry: 3 rounds (9 requests). Now one probe (4 requests), nothing else.
    assert paths["/v1/models"] == 1 and len(sim.requests) == 4, paths
    assert chat.current_choice().display_name == "Desk box"


async def test_picker_groups_with_dots_and_says_why_a_server_is_down(no_env, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dead = f"http://127.0.0.1:{free_port()}"
    with make_llamacpp(model="tiny-a") as sim:
        settings = write_settings(tmp_path / "settings.yaml", [
            {"name": "Desk box", "kind": "llamacpp", "url": sim.url},
            {"name": "Attic server", "kind": "vllm", "url": dead},
        ])
        chat = window.chat
        await start_app_services(window, settings)
        registry = window.server_windows.endpoints
        await wait_until(lambda: items(chat.model_combo) == ["tiny-a"], 10)
        await wait_until(lambda: all(m.status is not None and m.state.value != "unknown"
                                     for m in registry.endpoints()), 10)
        await wait_until(lambda: "Attic server — not answering" in items(chat.provider_combo))
        labels = items(chat.provider_combo)
        combo = chat.provider_combo
        assert labels[:2] == ["Desk box", "Attic server — not answering"]  # hand-added first
        assert not combo.itemIcon(0).isNull() and not combo.itemIcon(1).isNull()  # status dots
        # The default ports nothing answers on: one line.
        folded = combo.findData(NOT_RUNNING)
        assert folded >= 0 and combo.itemText(folded).startswith("Not running (default ports):")
        # Keyless clouds are last, after a separator, with how to add a key in their tooltip.
        anthropic = combo.findData("anthropic")
        assert anthropic > folded
        assert "Settings" in combo.itemData(anthropic, Qt.ItemDataRole.ToolTipRole)
        # Choosing the down endpoint says so inline, in the dashboard's words.
        chat.select_provider("endpoint:Attic server")
        target = registry.target("endpoint:Attic server")
        await wait_until(lambda: "not answering" in chat.status_label.text())
        assert target is not None and target.diagnosis and target.diagnosis in chat.status_label.text()
        await window.server_windows.aclose()


@pytest.mark.llamacpp
async def test_real_llama_server_added_by_hand_answers_in_the_chat(no_env, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    binary = binary_for_tests()
    model = await asyncio.to_thread(make_tiny_gguf, tmp_path / "tiny.gguf")
    # A random port (not 8080), and no variable names it: only settings.yaml does.
    server: LlamaServer = await asyncio.to_thread(start_llama_server, model, binary=binary, ctx=1024)
    try:
        settings = write_settings(tmp_path / "settings.yaml",
                                  [{"name": "Workbench llama", "kind": "llamacpp", "url": server.base_url}])
        chat = window.chat
        await start_app_services(window, settings)
        await wait_until(lambda: chat.current_choice() is not None
                         and chat.current_choice().display_name == "Workbench llama", 20)
        await wait_until(lambda: chat.model_combo.count() > 0, 20)
        combo = chat.provider_combo
        assert combo.itemText(0) == "Workbench llama" and not combo.itemIcon(0).isNull()
        assert chat.current_choice().target.dot == "green"
        chat.input.setPlainText("Say hello")
        chat.send()
        reply = chat.transcript.messages[-1]
        await wait_until(lambda: not chat.running, 60)
        messages = await stored_messages(window)
        stored = next(m for m in messages if m.role == "assistant")
        assert stored.status == "complete", stored.error
        assert stored.content and reply.text == stored.content  # streamed into the view, stored
        assert stored.endpoint is None or server.base_url in stored.endpoint
        assert stored.meta is not None and stored.meta.get("answered_by") == "Workbench llama"
        assert reply.header.text().startswith("Workbench llama")  # the header says its name
    finally:
        await window.server_windows.aclose()
        await asyncio.to_thread(server.stop)


async def test_dots_follow_the_registry_and_compare_starts_on_distinct_targets(  # type: ignore[no-untyped-def]
        no_env, window, tmp_path) -> None:
    with make_llamacpp(model="tiny-a") as desk, make_llamacpp(model="tiny-b") as lab:
        settings = write_settings(tmp_path / "settings.yaml", [
            {"name": "Desk box", "kind": "llamacpp", "url": desk.url},
            {"name": "Lab box", "kind": "llamacpp", "url": lab.url},
        ])
        chat = window.chat
        await start_app_services(window, settings)
        registry = window.server_windows.endpoints
        await wait_until(lambda: items(chat.provider_combo)[:2] == ["Desk box", "Lab box"], 10)
        # Compare: two panes, on the two working servers (not twice the same).
        window.compare.split_action.trigger()
        panes = window.compare.view.panes
        assert [p.picker.current_choice().display_name for p in panes] == ["Desk box", "Lab box"]
        window.compare.leave()
        # The Lab box goes away: its dot turns red once the monitor sees it, in place.
        lab.stop()
        registry.spawn(registry.monitor.refresh_now())  # the dashboard's Refresh now
        await wait_until(lambda: chat.provider_combo.itemText(1) == "Lab box — not answering", 10)
        assert registry.target("endpoint:Lab box").dot == "red"  # type: ignore[union-attr]
        await window.server_windows.aclose()


async def test_a_hidden_endpoint_comes_back_from_the_dashboard(no_env, window, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Remove on a server the seed's variable names hides it (saved); "Show hidden (1)" on the
    dashboard brings it back (saved too), and the chat offers it again."""
    with make_llamacpp(model="tiny-a") as sim:
        settings = write_settings(tmp_path / "settings.yaml", [])
        await start_app_services(window, settings, env={"VICTOR_LLAMACPP_HOST": sim.url})
        chat, registry = window.chat, window.server_windows.endpoints
        dash = window.server_windows.open_view("endpoints")
        # The variable's server and the default port 8080 are one "llama.cpp" target.
        offered = "llama.cpp — 1 of 2 answering"
        await wait_until(lambda: sim.url in dash.cards and offered in items(chat.provider_combo), 10)
        assert dash.unhide_button.isHidden()
        await registry.remove_endpoint(sim.url)  # what Remove → Yes does for a discovered server
        await wait_until(lambda: sim.url not in dash.cards and offered not in items(chat.provider_combo), 10)
        assert dash.unhide_button.text() == "Show hidden (1)" and not dash.unhide_button.isHidden()
        assert yaml.safe_load(settings.read_text())["hidden_endpoints"] == [sim.url]
        await dash.unhide_all()
        await wait_until(lambda: sim.url in dash.cards and offered in items(chat.provider_combo), 10)
        assert dash.unhide_button.isHidden()
        assert yaml.safe_load(settings.read_text())["hidden_endpoints"] == []
        await window.server_windows.aclose()
