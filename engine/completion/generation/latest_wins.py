"""Per-document single flight: a newer request cancels the older one, wherever it is."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class LatestWins:
    def __init__(self) -> None:
        self._running: dict[str, asyncio.Task[object]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T | None:
        """Run ``work`` as the newest call for ``key``; None when a newer call superseded it.

        When the caller itself is cancelled (``$/cancelRequest``), awaiting the task cancels it
        too and the CancelledError propagates.
        """
        self.cancel(key)
        task: asyncio.Task[T] = asyncio.ensure_future(work())
        self._running[key] = task  # type: ignore[assignment]
        try:
            return await task
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if caller is not None and caller.cancelling():
                raise
            return None
        finally:
            if self._running.get(key) is task:
                del self._running[key]

    def cancel(self, key: str) -> None:
        previous = self._running.get(key)
        if previous is not None and not previous.done():
            previous.cancel()

    def in_flight(self) -> int:
        return sum(1 for task in self._running.values() if not task.done())
