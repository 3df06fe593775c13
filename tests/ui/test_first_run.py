"""Issue 17's first-run offer, from an EMPTY machine to a streamed reply, with the REAL
llama-server: no endpoint configured, nothing listening where discovery looks, a fresh HOME (no
model library, no build cache), the Hub simulator on 127.0.0.1 serving a real tiny GGUF under a
recommended repo id (the settings' override of the list). The offer opens by itself after the
first health round; "Download and run" downloads (verified), starts the engine with the plan's
flags, and the chat takes that server and model with the input focused; a reply streams.
Then (a): a GGUF already in a models folder → "Run…" → Start → the same."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.servers.base import free_port
from tests.servers.hub import HubFile, HubRepo, HubServer
from tests.support.llama_build import binary_for_tests
from tests.support.tiny_gguf import make_tiny_gguf
from tests.ui.conftest import wait_until
from tests.ui.engine_chat import chat_with_engine
from tests.ui.test_registry_picker import no_env  # noqa: F401 - the fixture is used by name
from victor_gui.services.engine_runner import RUNNING, STOPPED
from victor_gui.services.settings_service import SettingsService
from victor_gui.ui.engine_panel import RunEngineDialog
from victor_gui.ui.first_run_panel import FirstRunPanel

pytest.importorskip("huggingface_hub")
pytestmark = [pytest.mark.llamacpp, pytest.mark.usefixtures("keep_running_when_closed")]
REPO = "Qwen/Qwen3-0.6B-GGUF"  # one of the built-in recommendations
FILE = "Qwen3-0.6B-F16.gguf"
ABSENT = "Qwen/Qwen3-1.7B-GGUF"  # recommended too, but this Hub does not have it


@pytest.fixture
def empty_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_env: None) -> Iterator[Path]:  # noqa: F811
    """A fresh HOME and caches: no LM Studio, llama.cpp or Hugging Face library, no build cache.
    The test build of llama-server is found first (under the real cache) and set in Settings."""
    binary = binary_for_tests()
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    for var in ("HF_TOKEN", "HF_API_KEY", "HF_HOME", "HF_HUB_CACHE", "LLAMA_CACHE", "VICTOR_LLAMA_CACHE"):
        monkeypatch.delenv(var, raising=False)
    settings = {"config_version": 3, "llama_server_path": str(binary)}
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump(settings))
    yield home


@pytest.fixture
def tiny_hub(tmp_path: Path) -> Iterator[HubServer]:
    gguf = make_tiny_gguf(tmp_path / "src" / FILE)
    with HubServer([HubRepo(REPO, [HubFile(FILE, Path(gguf))], downloads=5)]) as hub:
        yield hub


async def start_services(window: Any, tmp_path: Path, models_dir: Path) -> SettingsService:
    settings_file = tmp_path / "settings.yaml"  # written by empty_machine
    settings = SettingsService(settings_file)
    await settings.load()
    await settings.update(model_folders={"folders": [str(models_dir)], "reuse_libraries": True},
                          first_run={"recommended": [ABSENT, REPO]})
    await window.server_windows.start(
        window.chat.pool.http_client, settings=settings, on_registry=window.chat.start,
        settings_path=settings_file, gpu_detector=None, interval=0.5, scan_processes=False,
        include_defaults=False, env={"OLLAMA_HOST": f"127.0.0.1:{free_port()}"},  # discovered, down
        engine_log_dir=tmp_path / "logs", downloads_state=tmp_path / "downloads.json", offer_first_run=True)
    return settings


async def chat_replies(window: Any, engine: Any) -> None:
    """The chat uses ``engine``'s server, its input has the focus, and a reply streams in."""
    chat = window.chat
    choice = chat.current_choice()
    assert choice is not None and choice.target is not None and choice.target.members[0].key == engine.url
    assert window.focusWidget() is chat.input
    _target, reply = await chat_with_engine(window, engine.url)  # the picker already shows it: sends
    assert reply.status == "complete", reply.error
    assert reply.content and reply.endpoint is not None and engine.url in reply.endpoint


def the_panel(window: Any) -> FirstRunPanel:
    panel = window.server_windows.first_run_panel
    assert isinstance(panel, FirstRunPanel)
    return panel


async def test_empty_machine_offer_download_and_run_then_chat(window, empty_machine: Path,  # type: ignore[no-untyped-def]
                                                              tiny_hub: HubServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", tiny_hub.url)
    models_dir = tmp_path / "models"
    views = window.server_windows
    await start_services(window, tmp_path, models_dir)
    try:
        # The offer opens by itself once the first health round found nothing working.
        await wait_until(lambda: views.first_run_panel is not None, 40)
        panel = the_panel(window)
        await wait_until(lambda: views.first_run.offer is not None, 30)
        offer = views.first_run.offer
        assert offer.local == [] and not offer.engine_missing
        assert offer.recommendation is not None and offer.recommendation.repo_id == REPO
        assert panel.rec_badge.text() == "CPU only (no GPU found)"  # the Hub browser's badge
        assert FILE in panel.rec_title.text() and not panel.engine_frame.isVisible()
        assert panel.download_button.isEnabled()

        panel.download_button.click()
        await wait_until(lambda: views.first_run_selected is not None, 90)
        assert views.first_run_selected is True
        downloaded = models_dir / REPO / FILE
        assert downloaded.is_file()
        [engine] = views.engines.engines
        assert engine.state == RUNNING and engine.plan.model == str(downloaded)
        assert "--jinja" in engine.args and "--host" in engine.args  # the plan's flags
        await wait_until(lambda: views.first_run_panel is None, 5)  # closed once the chat had it
        await chat_replies(window, engine)
        await views.engines.stop(engine)
        assert engine.state == STOPPED
    finally:
        await views.aclose()


async def test_a_gguf_on_disk_is_offered_with_its_badge_and_runs(window, empty_machine: Path,  # type: ignore[no-untyped-def]
                                                                 tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # the Hub is unreachable
    models_dir = tmp_path / "models"
    local = make_tiny_gguf(models_dir / "victor-tests" / "Tiny-GGUF" / "Tiny-F16.gguf")
    views = window.server_windows
    await start_services(window, tmp_path, models_dir)
    try:
        await wait_until(lambda: views.first_run_panel is not None
                         and views.first_run.offer is not None, 30)
        panel = the_panel(window)
        offer = views.first_run.offer
        assert [c.model.path for c in offer.local] == [Path(local)]
        assert offer.recommendation is None and "not reachable" in offer.recommendation_note
        assert "not reachable" in panel.rec_title.text() and not panel.download_button.isVisible()
        assert panel.local_box.isVisible() and len(panel.run_buttons) == 1

        panel.run_buttons[0].click()
        dialog = views.run_dialog
        assert isinstance(dialog, RunEngineDialog) and dialog.model == str(local)
        await wait_until(lambda: dialog.start_button.isEnabled(), 15)
        dialog.start_button.click()
        await wait_until(lambda: views.first_run_selected is not None, 90)
        assert views.first_run_selected is True
        engine = dialog.engine
        assert engine is not None and engine.state == RUNNING
        await chat_replies(window, engine)
        await views.engines.stop(engine)
    finally:
        await views.aclose()


async def test_dont_show_again_is_kept_and_the_menu_still_opens_it(window, empty_machine: Path,  # type: ignore[no-untyped-def]
                                                                   tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    views = window.server_windows
    settings = await start_services(window, tmp_path, tmp_path / "models")
    try:
        await wait_until(lambda: views.first_run_panel is not None, 30)
        the_panel(window).dismiss_box.setChecked(True)
        await wait_until(lambda: settings.settings.first_run.dismissed, 5)
        reread = SettingsService(tmp_path / "settings.yaml")
        assert (await reread.load()).first_run.dismissed  # on disk, through the settings owner
        the_panel(window).close_button.click()
        await wait_until(lambda: views.first_run_panel is None, 5)
        assert not await views.first_run.needed()  # dismissed: no offer at the next start
        help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
        assert views.first_run_action in help_menu.actions()
        views.first_run_action.trigger()  # Help → Get a model… (also in the Servers menu)
        panel = the_panel(window)
        assert panel.dismiss_box.isChecked()
        await wait_until(lambda: views.first_run.offer is not None, 30)
        assert panel.status.text().startswith("Pick one")
    finally:
        await views.aclose()


async def test_no_engine_the_panel_says_so_and_install_runs_the_installer(  # type: ignore[no-untyped-def]
        window, empty_machine: Path, tiny_hub: HubServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", tiny_hub.url)
    (tmp_path / "settings.yaml").write_text(yaml.safe_dump({"config_version": 3}))  # no llama_server_path
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not (Path(d) / "llama-server").exists()]
    monkeypatch.setenv("PATH", os.pathsep.join(path))
    monkeypatch.setenv("VICTOR_LLAMA_CACHE", str(tmp_path / "no-cache"))
    monkeypatch.setenv("VICTOR_PYPI_URL", f"http://127.0.0.1:{free_port()}")  # never the real PyPI
    views = window.server_windows
    await start_services(window, tmp_path, tmp_path / "models")
    try:
        await wait_until(lambda: views.first_run_panel is not None and views.first_run.offer is not None, 30)
        panel = the_panel(window)
        assert views.first_run.offer.engine_missing
        assert panel.engine_frame.isVisible()
        assert "No engine to run a model with yet" in panel.engine_label.text()
        assert panel.install_button.isVisible() and not panel.download_button.isEnabled()
        panel.install_button.click()  # the real installer: tools checked, then PyPI (unreachable here)
        await wait_until(lambda: panel.install_button.isEnabled(), 30)
        assert "PyPI" in panel.progress_label.text(), panel.progress_label.text()
        assert views.first_run.offer.engine_missing  # nothing was installed
    finally:
        await views.aclose()
