"""Bootstrap pieces: the self-test run, the loop's asyncgen hooks, the single-instance guard."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from tests.support.wine_gaps import wine_gap
from tests.ui.conftest import wait_until
from victor_gui.ui.app import SingleInstance

ROOT = Path(__file__).resolve().parents[2]


def test_self_test_opens_paints_and_exits_zero(tmp_path: Path) -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", XDG_STATE_HOME=str(tmp_path),
               XDG_CACHE_HOME=str(tmp_path))
    out = subprocess.run([sys.executable, "-m", "victor_gui", "--self-test"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=50)
    assert out.returncode == 0, out.stderr
    assert "FIRST_PAINT" in out.stdout and "CLIENT_READY" in out.stdout
    assert "Traceback" not in out.stderr


async def test_loop_installs_asyncgen_hooks_while_running() -> None:
    loop = asyncio.get_running_loop()
    hooks = sys.get_asyncgen_hooks()
    assert hooks.finalizer is not None and hooks.finalizer.__self__ is loop

    async def numbers():  # type: ignore[no-untyped-def]
        for i in range(10):
            yield i

    # Left early and dropped: with the hooks, the loop finalises it (no "ignored GeneratorExit").
    async for n in numbers():
        if n == 2:
            break
    await asyncio.sleep(0)


@wine_gap("a named pipe's write waits for its reader there (QLocalServer asks for no buffer, which "
          "Windows rounds up); in one process the reader is this thread's own loop, so the message "
          "is lost when the client closes. Two processes, as the tier's single-instance step, work")
async def test_second_launch_reaches_the_first() -> None:
    name = f"victor-gui-test-{uuid.uuid4().hex[:8]}"
    first = SingleInstance(name)
    called: list[bool] = []
    assert first.listen(lambda: called.append(True))
    try:
        assert SingleInstance(name).notify_running()
        await wait_until(lambda: called)
    finally:
        first.close()
    assert not SingleInstance(name).notify_running(timeout_ms=100)
