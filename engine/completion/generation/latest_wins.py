"""Per-document single flight: a newer request cancels the older one, wherever it is, unless
it joins it (it continues what the older one is streaming: engine.completion.pipeline)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

# A request whose caller went away ($/cancelRequest, as VS Code sends on every keystroke
# before asking again) keeps running this long, for the next keystroke's request to join.
JOIN_GRACE_S = 0.2


class LatestWins:
    def __init__(self, grace_s: float = JOIN_GRACE_S) -> None:
        self._running: dict[str, asyncio.Task[object]] = {}
        self._waiting: dict[asyncio.Task[object], int] = {}
        self._grace_s = grace_s

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``work`` as the newest call for ``key``; None when a newer call superseded it.

        When the caller itself is cancelled (``$/cancelRequest``), the work is cancelled too,
        after a grace period in which a newer call may join it instead.
        """
        self.cancel(key)
        task: asyncio.Task[T] = asyncio.ensure_future(work())
        self._running[key] = task  # type: ignore[assignment]
        task.add_done_callback(lambda done: self._finished(key, done))  # type: ignore[arg-type]
        return await self._wait(task)  # type: ignore[arg-type,return-value]

    def running(self, key: str) -> bool:
        task = self._running.get(key)
        return task is not None and not task.done()

    async def join(self, key: str) -> object | None:
        """Wait for the work running for ``key`` without cancelling it; None when there is
        none or a newer call superseded it."""
        task = self._running.get(key)
        if task is None or (task.done() and task.cancelled()):
            return None
        return await self._wait(task)

    async def _wait(self, task: asyncio.Task[object]) -> object | None:
        self._waiting[task] = self._waiting.get(task, 0) + 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():
                raise
            return None  # the work was cancelled: a newer call superseded it
        finally:
            left = self._waiting.pop(task) - 1
            if left:
                self._waiting[task] = left
            elif not task.done():
                if self._grace_s > 0:
                    asyncio.get_running_loop().call_later(self._grace_s, self._unwanted, task)
                else:
                    task.cancel()

    def _unwanted(self, task: asyncio.Task[object]) -> None:
        if task not in self._waiting and not task.done():
            task.cancel()

    def _finished(self, key: str, task: asyncio.Task[object]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved: a failure nobody awaited is not logged as lost

    def cancel(self, key: str) -> None:
        previous = self._running.get(key)
        if previous is not None and not previous.done():
            previous.cancel()

    def in_flight(self) -> int:
        return sum(1 for task in self._running.values() if not task.done())
