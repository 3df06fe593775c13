"""UI test set-up: async tests run on a qasync loop over pytest-qt's QApplication.

pytest-asyncio ≥ 1.4 has no ``event_loop`` fixture; its ``pytest_asyncio_loop_factories`` hook
supplies the loop instead. The factory builds :class:`victor_gui.ui.loop.VictorEventLoop` (the
app's own loop, asyncgen hooks included) on the same QApplication that ``qapp`` returns, so
widgets and coroutines share one event loop exactly as in the app.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from tests.servers.base import SimServer, free_port
from tests.support.recording import make_llamacpp
from victor_gui.providers.catalog import SPECS
from victor_gui.providers.keys import set_secret_store


def _qasync_loop() -> asyncio.AbstractEventLoop:
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import VictorEventLoop

    app = QApplication.instance() or QApplication([])
    return VictorEventLoop(app)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], asyncio.AbstractEventLoop]]:  # noqa: E501
    return {"qasync": _qasync_loop}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/ui/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(autouse=True)
def collect_garbage_on_the_gui_thread() -> Iterator[None]:
    """Collect reference cycles here, on the GUI thread. Left for later, the cyclic GC may run in
    a worker thread (``asyncio.to_thread``) and free a cycle holding a Qt wrapper there (an old
    exception's traceback frames): Qt then warns from that thread and pytest-qt's message handler
    crashes the process (seen as a segfault in a later test)."""
    gc.collect()
    yield
    gc.collect()


@pytest.fixture(autouse=True)
async def no_task_left_unwoken() -> AsyncIterator[None]:
    """After each test, cancel what it left running and let it end; a task that cannot end is
    reported and taken out of asyncio's registry, so closing the test's loop cannot hang.

    Seen on qasync (two full CI runs stopped by it): a Settings dialog closed just as its
    ``asyncio.to_thread`` finished left its ``load()`` task "cancelling", waiting on a future
    that had finished, and the wake-up was never delivered. pytest-asyncio's loop close then
    waited for that task forever and the timeout ended the whole run. The app's loop runs on, so
    for a user it is one finished dialog's task never collected."""
    yield
    me = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not me and not t.done()]
    for task in left:
        task.cancel()
    if not left:
        return
    _done, stuck = await asyncio.wait(left, timeout=3)
    for task in stuck:
        waiter = getattr(task, "_fut_waiter", None)
        print(f"\n[tests/ui] task not woken after cancel (waiting on {waiter!r}): {task!r}", file=sys.stderr)
        asyncio.tasks._unregister_task(task)  # type: ignore[attr-defined]


@pytest.fixture
def keep_running_when_closed(qapp):  # type: ignore[no-untyped-def]
    """Closing the view (the only window) must not quit the app and stop the test's loop; a
    module opts in with ``pytestmark = pytest.mark.usefixtures("keep_running_when_closed")``."""
    qapp.setQuitOnLastWindowClosed(False)
    yield
    qapp.setQuitOnLastWindowClosed(True)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No API keys anywhere, and every local server address pointing at a closed port."""
    for spec in SPECS:
        for var in spec.key_env_vars + spec.host_env_vars:
            monkeypatch.delenv(var, raising=False)
    for var in ("OLLAMA_HOST", "VICTOR_LM_STUDIO_HOST", "VICTOR_VLLM_HOST", "VICTOR_LLAMACPP_HOST"):
        monkeypatch.setenv(var, f"127.0.0.1:{free_port()}")
    set_secret_store(None)
    yield


@pytest.fixture
def sim(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimServer]:
    """The project's llama-server simulator on 127.0.0.1, found by the app as its llama.cpp."""
    with make_llamacpp() as server:
        monkeypatch.setenv("VICTOR_LLAMACPP_HOST", f"127.0.0.1:{server.port}")
        yield server


@pytest.fixture
async def pool() -> AsyncIterator[object]:
    from victor_gui.providers.http import LOCAL_TIMEOUTS, make_client
    from victor_gui.services.provider_choices import ProviderPool

    client = make_client(LOCAL_TIMEOUTS)
    p = ProviderPool(client)
    yield p
    await p.close()
    await client.aclose()


@pytest.fixture
async def store(tmp_path):  # type: ignore[no-untyped-def]
    """A real conversation store in a temporary folder."""
    from victor_gui.storage import open_store

    s, _notice = await open_store(tmp_path / "data")
    yield s
    await s.close()


@pytest.fixture
async def window(qtbot, pool, store):  # type: ignore[no-untyped-def]
    from victor_gui.ui.main_window import MainWindow

    win = MainWindow(pool, store)
    qtbot.addWidget(win)
    win.show()
    yield win
    await win.chat.aclose()
    await win.conversations.aclose()
    await win.compare.aclose()


async def stored_messages(window):  # type: ignore[no-untyped-def]
    """The messages of the chat on screen, as the store holds them (notes included)."""
    chat = window.chat
    assert chat.conversation_id is not None
    return await chat.store.get_messages(chat.conversation_id)


# The default wait: a step that takes a fraction of a second on a quiet machine took over 5 s in
# CI on two loaded cores (test_message_menu failed there once at 5 s, and here under a load of 7
# while every other step of it stayed under 4 s). A passing test never waits this long; the
# deadline only bounds a broken one.
WAIT_LIMIT_S = 15.0


async def wait_until(predicate: Callable[[], object], limit_s: float = WAIT_LIMIT_S) -> None:
    """Let the loop run until ``predicate()`` is true (fails the test after ``limit_s``)."""
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
