"""The qasync event loop the app (and the UI tests) run on.

qasync's ``run_forever`` never installs ``sys.set_asyncgen_hooks``. Without them, an async
generator left early (``[DONE]``, Stop) is finalised by the garbage collector outside the loop,
and httpx's inner generators fail with "async generator ignored GeneratorExit" / "no running
event loop". :class:`VictorEventLoop` installs the loop's own hooks while it runs, exactly as
asyncio's ``BaseEventLoop.run_forever`` does.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, cast

import qasync
import shiboken6
from PySide6.QtWidgets import QApplication


class VictorEventLoop(qasync.QEventLoop):  # type: ignore[misc]
    """``qasync.QEventLoop`` plus asyncgen hooks while running."""

    _saved_hooks: Any = None

    def _before_run_forever(self) -> None:
        super()._before_run_forever()
        self._saved_hooks = sys.get_asyncgen_hooks()
        sys.set_asyncgen_hooks(firstiter=self._asyncgen_firstiter_hook,
                               finalizer=self._asyncgen_finalizer_hook)

    def close(self) -> None:
        """Close, then destroy qasync's timer QObject here, on the loop's thread.

        qasync leaves that QObject (and any timers still registered on it, e.g. a store's
        pending ``call_later``) to the garbage collector, which may run in a worker thread;
        a QObject destroyed off its thread keeps its timers registered and the next one to
        fire crashes the process (seen in the UI tests once chats went through the store).
        """
        super().close()
        timer = getattr(self, "_timer", None)
        if timer is not None and shiboken6.isValid(timer):
            shiboken6.delete(timer)

    def _after_run_forever(self) -> None:
        try:
            if self._saved_hooks is not None:
                sys.set_asyncgen_hooks(*self._saved_hooks)
                self._saved_hooks = None
        finally:
            super()._after_run_forever()


def make_loop(app: QApplication | None = None) -> VictorEventLoop:
    """A loop on ``app`` (the running QApplication by default), set as the current loop."""
    app = app or cast("QApplication | None", QApplication.instance()) or QApplication([])
    loop = VictorEventLoop(app)
    asyncio.set_event_loop(loop)
    return loop


def freeze_startup_objects() -> None:
    """Move everything allocated so far (modules, classes, Qt wrappers, the store and client) out
    of the collector's reach. A full collection then scans only what the session allocated:
    measured 25-33 ms pauses in the middle of a stream before, a few ms after. Only the young
    generations are collected first (~0 ms): a full collection here would itself stall the
    window ~45 ms, to free little (start-up objects live as long as the app)."""
    import gc

    gc.collect(1)
    gc.freeze()
