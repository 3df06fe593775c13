"""TaskSet: the one helper that keeps background tasks, logs their failures and closes them."""

from __future__ import annotations

import asyncio
import logging

import pytest

from victor_gui.core.tasks import TaskSet


async def test_a_task_is_kept_until_done_and_its_result_returned() -> None:
    tasks = TaskSet("test")
    gate = asyncio.Event()

    async def work() -> int:
        await gate.wait()
        return 7

    task = tasks.spawn(work())
    await asyncio.sleep(0)
    assert len(tasks) == 1 and task in list(tasks)
    gate.set()
    assert await task == 7
    assert len(tasks) == 0 and not tasks


async def test_an_unexpected_exception_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("the pane")

    async def boom() -> None:
        raise ValueError("went wrong")

    with caplog.at_level(logging.ERROR, logger="victor_gui.core.tasks"):
        task = tasks.spawn(boom())
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)  # the done callback runs on the next loop turn
    records = [r for r in caplog.records if "the pane failed: went wrong" in r.getMessage()]
    assert len(records) == 1 and records[0].exc_info is not None
    assert not tasks


async def test_a_cancel_is_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    tasks = TaskSet("test")
    task = tasks.spawn(asyncio.sleep(10))
    await asyncio.sleep(0)
    with caplog.at_level(logging.ERROR, logger="victor_gui.core.tasks"):
        tasks.cancel_all()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.sleep(0)
    assert task.cancelled()
    assert not [r for r in caplog.records if r.name == "victor_gui.core.tasks"]


async def test_aclose_cancels_and_waits_for_every_task() -> None:
    tasks = TaskSet("test")
    cleaned: list[str] = []

    async def slow(name: str) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.sleep(0)  # unwinding takes a loop turn: aclose must wait for it
            cleaned.append(name)

    for name in ("a", "b", "c"):
        tasks.spawn(slow(name))
    await asyncio.sleep(0)
    await tasks.aclose()
    assert sorted(cleaned) == ["a", "b", "c"]
    assert not tasks
