"""Per-user limits in team mode, shared by all of a user's connections.

A token bucket bounds the request rate, a cap bounds requests in flight (so one user's burst
queues behind itself, not in front of everyone else), and open documents and their bytes are
bounded so that nobody can fill the daemon's memory."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UserLimits:
    requests_per_s: float = 40.0
    burst: int = 80
    concurrent_requests: int = 16
    open_documents: int = 300
    document_bytes: int = 64 * 1024 * 1024
    idle_timeout_s: float = 3600.0
    # Every message, notifications included, costs work: its bytes, at least message_cost,
    # and for an edit the size of the document it edits (applying it copies the text). A
    # user spending more than work_per_s (after a burst of work_burst) is read more slowly:
    # their editors wait, nobody else does.
    message_cost: int = 64 * 1024
    work_per_s: float = 16 * 1024 * 1024
    work_burst: float = 64 * 1024 * 1024


@dataclass
class UserUsage:
    """What one user has now, over all their connections."""

    limits: UserLimits
    tokens: float = 0.0
    refilled: float = field(default_factory=time.monotonic)
    # The user's requests still running, over all their connections (notifications, such as a
    # connection's `initialized` still discovering the model, are not requests).
    in_flight: int = 0

    # Work allowance (bytes, see UserLimits): negative while the user is being slowed down.
    work: float = 0.0
    work_refilled: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.tokens = float(self.limits.burst)
        self.work = float(self.limits.work_burst)

    def charge(self, work: int) -> None:
        now = time.monotonic()
        limits = self.limits
        self.work = min(
            float(limits.work_burst), self.work + (now - self.work_refilled) * limits.work_per_s
        )
        self.work_refilled = now
        self.work -= work

    async def paced(self, work: int) -> None:
        """Charges ``work``; returns once the user's allowance is no longer overdrawn."""
        self.charge(work)
        if self.work < 0:
            await asyncio.sleep(-self.work / self.limits.work_per_s)

    def take_request(self) -> str | None:
        """None when the request may run; otherwise why not."""
        now = time.monotonic()
        self.tokens = min(
            float(self.limits.burst),
            self.tokens + (now - self.refilled) * self.limits.requests_per_s,
        )
        self.refilled = now
        if self.in_flight >= self.limits.concurrent_requests:
            return f"more than {self.limits.concurrent_requests} requests in flight"
        if self.tokens < 1.0:
            return f"more than {self.limits.requests_per_s:g} requests a second"
        self.tokens -= 1.0
        return None

    def running(self, request: asyncio.Future[Any] | concurrent.futures.Future[Any]) -> None:
        """Counts ``request`` in flight until it is done."""
        self.in_flight += 1
        request.add_done_callback(self._finished)

    def _finished(self, request: object) -> None:
        self.in_flight -= 1
