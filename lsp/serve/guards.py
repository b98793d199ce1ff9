"""What keeps one connection from costing the daemon without bound: a writer that gives up
on an editor that does not read, and log lines that cannot flood the log."""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class GuardedWriter:
    """pygls writes without waiting for the editor to read: the transport (or, on WebSocket,
    the send tasks) would hold every unsent byte. Past ``limit`` unsent bytes the connection
    is closed: an editor that does not read gets nothing more."""

    def __init__(
        self,
        inner: Any,
        buffered: Callable[[], int],
        limit: int,
        close: Callable[[], None],
    ) -> None:
        self._inner = inner
        self._buffered = buffered
        self._limit = limit
        self._close = close
        self._in_tasks = 0
        self.overflowed = False

    def write(self, data: bytes) -> Any:
        if self.overflowed:
            return None
        result = self._inner.write(data)
        if inspect.isawaitable(result):
            self._in_tasks += len(data)
            result = self._counted(result, len(data))
        if self._buffered() + self._in_tasks > self._limit:
            self.overflowed = True
            log.warning(
                "closing a connection whose editor does not read (%d bytes unsent)",
                self._buffered() + self._in_tasks,
            )
            self._close()
        return result

    async def _counted(self, sending: Awaitable[Any], size: int) -> Any:
        try:
            return await sending
        finally:
            self._in_tasks -= size

    def close(self) -> Any:
        return self._inner.close()


class RateLimitedLog:
    """At most ``per_minute`` lines a minute for events a stranger can cause at will (refused
    connections, malformed first messages); the rest are counted and summed up later."""

    def __init__(self, logger: logging.Logger, per_minute: int = 10) -> None:
        self._logger = logger
        self._per_minute = per_minute
        self._window = 0.0
        self._lines = 0
        self._dropped = 0

    def info(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._window >= 60:
            if self._dropped:
                self._logger.info("(%d more such lines in the last minute)", self._dropped)
            self._window, self._lines, self._dropped = now, 0, 0
        if self._lines < self._per_minute:
            self._lines += 1
            self._logger.info(message, *args)
        else:
            self._dropped += 1


def transport_buffer(transport: asyncio.WriteTransport) -> Callable[[], int]:
    """The bytes a transport holds unsent (none once it is closing)."""
    return lambda: 0 if transport.is_closing() else transport.get_write_buffer_size()
