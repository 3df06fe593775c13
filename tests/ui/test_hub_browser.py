"""The "Find models on Hugging Face" window against the Hub simulator on 127.0.0.1: search with
author and sort, a repository's quants with a fit badge each (read from headers only), the
context box re-planning the badges without a request, split and vision files, gated repos, the
Download buttons' callable, and the way in from the model manager."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from PySide6.QtWidgets import QLabel, QPushButton

from tests.servers.hub import HubServer
from tests.support.hub_repos import GATED, LLAMA, MACHINE, NO_GPU, QWEN
from tests.ui.conftest import wait_until
from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
from victor_gui.services.hf_hub import HubClient
from victor_gui.services.hub_browser import HubBrowserService
from victor_gui.services.model_library import ModelLibraryService
from victor_gui.sizing.hardware import GpuReport
from victor_gui.ui.hub_browser import HubBrowser
from victor_gui.ui.model_library_view import ModelLibraryView

pytest.importorskip("huggingface_hub")
pytestmark = pytest.mark.usefixtures("keep_running_when_closed")
MiB = 1 << 20
PARTIAL = re.compile(r"^Partial offload: (\d+) of 37 layers on GPU$")


@pytest.fixture
async def browser(qtbot, hub: HubServer) -> AsyncIterator[tuple[HubBrowserService, HubBrowser]]:  # type: ignore[no-untyped-def]
    service, view = open_browser(qtbot, hub, MACHINE)
    yield service, view
    await service.close()


def open_browser(qtbot, hub: HubServer, report: GpuReport, **kwargs: object  # type: ignore[no-untyped-def]
                 ) -> tuple[HubBrowserService, HubBrowser]:
    service = HubBrowserService(HubClient(hub.url, env={}), gpu_report=report)
    view = HubBrowser(service, **kwargs)  # type: ignore[arg-type]
    qtbot.addWidget(view)
    view.show()
    return service, view


def repo_names(view: HubBrowser) -> list[str]:
    return [view.results.item(r, 0).text() for r in range(view.results.rowCount())]


async def search(view: HubBrowser, text: str = "", author: str = "", sort: str = "downloads") -> None:
    view.search_edit.setText(text)
    view.author_edit.setText(author)
    view.sort_combo.setCurrentIndex(view.sort_combo.findData(sort))
    before = view.service.results
    view.search_button.click()
    await wait_until(lambda: view.service.results is not before and view.service.busy is None)


async def open_repo(view: HubBrowser, repo_id: str) -> None:
    row = next(r for r in range(view.results.rowCount())
               if view.results.item(r, 0).text().startswith(repo_id))
    view.results.selectRow(row)
    await wait_until(lambda: view.service.repo is not None and view.service.repo.repo_id == repo_id
                     and view.service.busy is None, 10.0)


async def test_search_author_and_sort_from_the_window(browser) -> None:  # type: ignore[no-untyped-def]
    _, view = browser
    await search(view, "qwen3")
    assert repo_names(view) == ["unsloth/Qwen3-8B-GGUF", QWEN]
    assert [view.results.item(0, c).text() for c in (1, 2, 3)] == ["120,000", "90", "2026-11-20"]
    await search(view, sort="likes")
    assert repo_names(view) == [LLAMA, QWEN, "unsloth/Qwen3-8B-GGUF", f"{GATED}  (gated)"]
    await search(view, sort="updated")
    assert repo_names(view)[0] == "unsloth/Qwen3-8B-GGUF"
    await search(view, author="bartowski")
    assert repo_names(view) == [QWEN, LLAMA]
    assert view.message.text() == "2 repositories"


async def test_each_quant_has_a_fit_badge_read_from_its_header(browser, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    service, view = browser
    await search(view, "qwen3", author="bartowski")
    await open_repo(view, QWEN)
    badges = view.badge_texts()
    assert badges["Q4_K_M"] == "Full GPU offload" and badges["Q8_0"] == "Full GPU offload"
    assert PARTIAL.match(badges["F16"])
    rows = {view.quants.item(r, 0).text(): [view.quants.item(r, c).text() for c in (1, 2, 4)]
            for r in range(view.quants.rowCount())}
    assert rows["Q4_K_M"] == ["Qwen3-8B-Q4_K_M.gguf", "4.3 GiB", "40,960 tokens"]
    assert rows["F16"][2] == "none"
    assert rows["Q8_0"][2] == f"{service.fits[1].max_full_ctx:,} tokens"
    assert view.quants.horizontalHeaderItem(3).text() == "Fit at 8,192"
    assert "mmproj-Qwen3-8B-f16.gguf (600.0 MiB)" in view.vision_label.text()
    assert view.vision_label.isVisible()
    assert view.quants.isColumnHidden(5)  # no download callable given: no Download buttons
    for f in hub.repos[QWEN].files:  # header only: one 1 MiB range per quant, the add-on untouched
        if "mmproj" not in f.path and f.path.endswith(".gguf"):
            assert 0 < hub.bytes_sent[f.path] <= MiB
    assert "mmproj-Qwen3-8B-f16.gguf" not in hub.bytes_sent
    sent = dict(hub.bytes_sent)

    view.ctx_spin.setValue(32768)  # typed in the box: every badge is planned again, no request
    await wait_until(lambda: view.badge_texts()["Q8_0"] != "Full GPU offload")
    assert PARTIAL.match(view.badge_texts()["Q8_0"]) and view.badge_texts()["Q4_K_M"] == "Full GPU offload"
    assert view.quants.horizontalHeaderItem(3).text() == "Fit at 32,768"
    assert hub.bytes_sent == sent


async def test_split_models_wont_fit_and_gated_repos_say_what_to_do(browser) -> None:  # type: ignore[no-untyped-def]
    _, view = browser
    await search(view, "")
    await open_repo(view, LLAMA)
    assert view.badge_texts() == {"Q4_K_M": "Won't fit"}
    assert view.quants.item(0, 1).text() == "Llama-3.3-70B-Instruct-Q4_K_M.gguf (3 parts)"
    assert view.quants.item(0, 2).text() == "39.6 GiB"
    await open_repo(view, GATED)
    assert "Settings → API keys" in view.message.text() and f"/{GATED}" in view.message.text()
    assert view.gated_label.isVisible() and "href=" in view.gated_label.text()
    assert view.badge_texts() == {"Q4_K_M": "Needs token"}  # no verdict without access
    badge = view.quants.cellWidget(0, 3)
    assert isinstance(badge, QLabel) and "Settings → API keys" in badge.toolTip()


async def test_without_a_gpu_badges_say_cpu_only(qtbot, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    service, view = open_browser(qtbot, hub, NO_GPU)
    await search(view, "qwen3", author="bartowski")
    await open_repo(view, QWEN)
    assert set(view.badge_texts().values()) == {"CPU only (no GPU found)"}
    assert {view.quants.item(r, 4).text() for r in range(3)} == {"no GPU"}
    await service.close()


async def test_download_buttons_call_the_injected_callable(qtbot, hub: HubServer) -> None:  # type: ignore[no-untyped-def]
    asked: list[tuple[str, list[str]]] = []
    service, view = open_browser(qtbot, hub, MACHINE, on_download=lambda r, f: asked.append((r, f)))
    await search(view, "70B")
    await open_repo(view, LLAMA)
    assert not view.quants.isColumnHidden(5) and not view.vision_check.isVisible()
    button = view.quants.cellWidget(0, 5)
    assert isinstance(button, QPushButton) and button.accessibleName() == "Download Q4_K_M"
    button.click()
    assert asked == [(LLAMA, [f.path for f in hub.repos[LLAMA].files])]  # all three parts
    await search(view, "qwen3", author="bartowski")
    await open_repo(view, QWEN)
    assert view.vision_check.isVisible() and view.vision_check.isChecked()
    q8 = next(view.quants.cellWidget(r, 5) for r in range(3) if view.quants.item(r, 0).text() == "Q8_0")
    q8.click()
    assert asked[-1] == (QWEN, ["Qwen3-8B-Q8_0.gguf", "mmproj-Qwen3-8B-f16.gguf"])
    view.vision_check.setChecked(False)
    q8.click()
    assert asked[-1] == (QWEN, ["Qwen3-8B-Q8_0.gguf"])
    await service.close()


async def test_the_model_manager_opens_the_browser(qtbot, hub: HubServer,  # type: ignore[no-untyped-def]
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    for var in ("HF_TOKEN", "HF_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    client = make_client(LOCAL_TIMEOUTS)
    library = ModelLibraryService(client, gpu_report=MACHINE)
    manager = ModelLibraryView(library)
    qtbot.addWidget(manager)
    manager.show()
    assert manager.hub_button.text() == "Find models on Hugging Face…"
    manager.hub_button.click()
    browser = next(w for w in manager.findChildren(HubBrowser))
    assert browser.isVisible() and browser.service.gpu_report is MACHINE
    await search(browser, "qwen3")
    await open_repo(browser, "unsloth/Qwen3-8B-GGUF")
    assert browser.badge_texts() == {"UD-Q4_K_XL": "Full GPU offload"}
    badge = browser.quants.cellWidget(0, 3)
    assert isinstance(badge, QLabel) and "background: #187a33" in badge.styleSheet()
    browser.close()
    await library.close()
    await client.aclose()
