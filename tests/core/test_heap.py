"""Freed heap pages go back to the OS (issue 14 item 6: idle memory): the C library really
returns them, and the settler trims once per burst, after the quiet time."""

from __future__ import annotations

import asyncio
import gc

import psutil
import pytest

from victor_gui.core.heap import HeapSettler, can_release, release_free_heap

needs_glibc = pytest.mark.skipif(not can_release(), reason="only glibc (Linux) has malloc_trim")


def _rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


@needs_glibc
def test_freed_heap_memory_goes_back_to_the_os() -> None:
    # 64 MB in 64 KiB blocks: below glibc's mmap threshold, so they come from the heap, and one
    # block kept after them pins the heap's top (free() alone then gives nothing back).
    blocks = [bytearray(64 * 1024) for _ in range(1024)]
    for b in blocks:
        b[::4096] = b"x" * len(b[::4096])  # touched: really resident
    pin = bytearray(64 * 1024)
    grown = _rss_mb()
    del blocks
    gc.collect()
    after_free = _rss_mb()
    assert release_free_heap() is True
    after_trim = _rss_mb()
    assert after_free - after_trim > 32, (grown, after_free, after_trim)
    assert len(pin) == 64 * 1024


@pytest.mark.skipif(can_release(), reason="the other platforms' answer")
def test_without_malloc_trim_nothing_is_done() -> None:
    assert release_free_heap() is False


async def test_a_burst_of_asks_trims_once_after_the_quiet_time() -> None:
    released: list[float] = []
    loop = asyncio.get_running_loop()
    settler = HeapSettler(0.2, release=lambda: released.append(loop.time()) or True)
    start = loop.time()
    for _ in range(5):  # a chat opened, then a reply ended shortly after: one trim
        last_ask = loop.time()
        settler.soon("complete")
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.4)
    assert len(released) == 1 and settler.trims == 1
    # After the last ask's quiet time, not the first's (which ended about when the last ask
    # came). The margin is not exact: a loop may run a timer up to its clock resolution early
    # (15.6 ms on Windows), so half the quiet time tells the two apart.
    assert released[0] >= last_ask + 0.1
    settler.soon()
    settler.cancel()  # the app closing drops a pending trim
    settler.soon()  # and a window destroyed on the way out asks for none
    await asyncio.sleep(0.3)
    assert settler.trims == 1
    assert start < released[0]


def test_an_ask_with_no_loop_running_is_dropped() -> None:
    settler = HeapSettler(0.01, release=lambda: True)
    settler.soon()  # a view destroyed after the loop stopped: no error, no trim
    assert settler.trims == 0
