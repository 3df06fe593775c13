"""The launcher the screenshot scripts share: re-run under ``xvfb-run`` when there is no X
display, then build the Qt application and its qasync loop and run one ``shoot(out)``.

Only for people and the README; nothing here is a test.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def run_shots(module: str, description: str | None, shoot: Callable[[Path], Awaitable[list[Path]]]) -> int:
    """Parse ``--out``, run ``shoot(out)`` on a Qt event loop (under Xvfb when there is no
    ``DISPLAY``; ``module`` is what ``python -m`` re-runs) and print the saved paths."""
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("screenshots-out"))
    args = parser.parse_args()
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        if shutil.which("xvfb-run") is None:
            print("No DISPLAY and no xvfb-run; set QT_QPA_PLATFORM=offscreen to render without X")
            return 2
        cmd = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m", module,
               "--out", str(args.out)]
        return subprocess.call(cmd)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("QT_QPA_PLATFORM", "xcb")
    from PySide6.QtWidgets import QApplication

    from victor_gui.ui.loop import make_loop

    app = QApplication(sys.argv[:1])
    app.setQuitOnLastWindowClosed(False)  # windows come and go between the shots
    loop = make_loop(app)
    try:
        saved = loop.run_until_complete(shoot(args.out))
    finally:
        loop.close()
    for path in saved:
        print(path)
    return 0


async def close_window(window: Any, *closables: Any) -> None:
    """Close a screenshot script's main window and what it ran on, in order: the chat pane, the
    conversation list, compare, then each of ``closables`` (a provider pool, an HTTP client, the
    store: whatever has ``aclose()`` or an async ``close()``)."""
    await window.chat.aclose()
    await window.conversations.aclose()
    await window.compare.aclose()
    for item in closables:
        closer = getattr(item, "aclose", None) or item.close
        await closer()
    window.close()


def grab_screen(widget: Any, path: Path) -> Path:
    """Save what the screen shows of ``widget``'s window frame (popups and the title bar
    included, unlike ``widget.grab()``) to ``path``."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication

    QApplication.processEvents()
    geometry = widget.frameGeometry()
    shot = QGuiApplication.primaryScreen().grabWindow(0, geometry.x(), geometry.y(), geometry.width(),
                                                      geometry.height())
    shot.save(str(path))
    return path


async def until(predicate: Callable[[], object], limit_s: float = 30.0, what: str = "the window") -> None:
    """Let the loop run until ``predicate()`` holds (a screenshot scene is ready)."""
    import asyncio

    for _ in range(int(limit_s / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise TimeoutError(f"{what} did not get there in time")
