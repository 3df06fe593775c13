"""Give the C heap's free pages back to the operating system after a burst of work.

glibc keeps memory that Python and Qt freed (parse trees, rendered HTML, a chat's old
documents) inside the process: the RSS a user sees in their task manager stays at the burst's
high-water mark. ``malloc_trim(0)`` returns every whole free page (it also releases pages in
the middle of the heap, not just at its top). Elsewhere (Windows, macOS, musl) there is no such
call and nothing is done.

:class:`HeapSettler` runs it once things have been quiet for a moment: after start-up, after a
chat was opened, after a reply ended.
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable

SETTLE_S = 2.0  # quiet time after the last burst before the trim


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # here: not a cost of the first paint
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim  # glibc only (musl has none)
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def can_release() -> bool:
    """Whether this C library can give free heap pages back (glibc)."""
    return _malloc_trim() is not None


def release_free_heap() -> bool:
    """Return the heap's free pages to the OS now; True when some were returned."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


class HeapSettler:
    """Calls :func:`release_free_heap` :data:`SETTLE_S` after the last :meth:`soon`, once for
    a run of calls (a burst of work asks many times and costs one trim)."""

    def __init__(self, delay_s: float = SETTLE_S, release: Callable[[], bool] = release_free_heap) -> None:
        self.delay_s = delay_s
        self._release = release
        self._handle: asyncio.TimerHandle | None = None
        self.trims = 0  # how many trims ran (the app's log and tests read it)
        self.last_trim: float | None = None  # the loop's time of the last trim
        self._closed = False

    def soon(self, *_: object) -> None:
        """Ask for a trim once things are quiet (any arguments, so a signal can call it).
        Nothing after :meth:`cancel`, nor with no loop running (windows destroyed at exit)."""
        if self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_later(self.delay_s, self._run)

    def _run(self) -> None:
        self._handle = None
        self._release()
        self.trims += 1
        self.last_trim = asyncio.get_running_loop().time()

    def cancel(self) -> None:
        """Drop a pending trim and ignore later asks (the app is closing)."""
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
