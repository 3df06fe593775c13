"""One helper for background tasks: the set every view and service used to keep by hand.

``asyncio`` keeps only a weak reference to a task, so a fire-and-forget ``create_task`` may be
garbage-collected mid-run, and an exception nobody awaits is reported (if ever) long after, far
from its cause. :class:`TaskSet` keeps each task until it is done, logs an unexpected exception
the moment the task ends (a cancel is not unexpected), and cancels and awaits everything left at
close, so a window or service shuts down without "Task was destroyed but it is pending".
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class TaskSet:
    """Tasks an owner started and must not lose; see the module doc.

    ``name`` says whose tasks they are in the log line of an unexpected exception."""

    def __init__(self, name: str = "task") -> None:
        self.name = name
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        """Run ``coro`` as a task kept until it ends; returns the task (await or cancel it)."""
        task: asyncio.Task[T] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()  # retrieved here, so asyncio does not warn about it later
        if exc is not None:
            log.error("%s failed: %s", self.name, exc, exc_info=exc)

    def __len__(self) -> int:
        return len(self._tasks)

    def __bool__(self) -> bool:
        return bool(self._tasks)

    def __iter__(self) -> Iterator[asyncio.Task[Any]]:
        return iter(list(self._tasks))

    def cancel_all(self) -> None:
        """Cancel every task still running (without waiting)."""
        for task in list(self._tasks):
            task.cancel()

    async def aclose(self) -> None:
        """Cancel every task still running and wait until each has ended; their exceptions
        (cancels included) are swallowed here: unexpected ones were already logged."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
