"""A budget of running actions per model server, so an inline completion always finds a slot.

vLLM runs at most ``--max-num-seqs`` sequences at once, and its priority scheduler does not
preempt a running request to free a sequence slot (only for KV cache room). Long action
streams that fill every slot make a keystroke's completion wait for one of them to finish,
whatever its priority. So the daemon lets at most ``budget`` actions run on one server and
keeps the rest waiting here, served round robin by user (then in arrival order): one user's
ten queued actions don't hold back another user's one. Cancelling a queued action removes it
at once; it never reached the server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)

# Running actions per server when neither the settings nor the server say its sequence limit:
# well below vLLM's smallest default --max-num-seqs (128, on CPU; 256-1024 on GPUs).
UNKNOWN_LIMIT_BUDGET = 16


def budget_for(max_num_seqs: int | None, processes: int = 1) -> int:
    """Running actions one daemon process allows on a server with ``max_num_seqs`` slots.

    One slot in sixteen (at least one) stays free for completions: a completion then waits
    at most for other completions, which are short, never for an action. The rest is split
    between the daemon's worker processes, each of which keeps its own budget."""
    if max_num_seqs is None:
        whole = UNKNOWN_LIMIT_BUDGET
    else:
        whole = max(1, max_num_seqs - max(1, math.ceil(max_num_seqs / 16)))
    return max(1, whole // max(1, processes))


class SlotObserver(Protocol):
    """Where the queue's figures go (the team daemon's Prometheus metrics)."""

    def slots_changed(self, running: int, queued: int) -> None: ...

    def waited(self, seconds: float) -> None: ...


class _NoObserver:
    def slots_changed(self, running: int, queued: int) -> None:
        pass

    def waited(self, seconds: float) -> None:
        pass


# Told how many queued actions will start before this one, whenever that number changes.
QueuedReport = Callable[[int], None]


@dataclass(eq=False)
class _Waiter:
    user: str
    report: QueuedReport
    granted: asyncio.Future[None]
    told: int = -1


@dataclass
class _Server:
    budget: int
    running: int = 0
    # Each user's waiters in arrival order; the users in round-robin order (whose turn is
    # first). A user appears in ``turns`` exactly while it has waiters.
    waiting: dict[str, deque[_Waiter]] = field(default_factory=dict)
    turns: deque[str] = field(default_factory=deque)

    @property
    def queued(self) -> int:
        return sum(len(line) for line in self.waiting.values())


class ActionSlots:
    """Shared by every session of a daemon process: one budget per server URL. With
    ``processes`` worker processes, each keeps that share of a server's budget."""

    def __init__(self, observer: SlotObserver | None = None, processes: int = 1) -> None:
        self._servers: dict[str, _Server] = {}
        self._observer: SlotObserver = observer or _NoObserver()
        self.processes = max(1, processes)

    def running(self, server: str) -> int:
        state = self._servers.get(server)
        return state.running if state else 0

    def queued(self, server: str) -> int:
        state = self._servers.get(server)
        return state.queued if state else 0

    @asynccontextmanager
    async def hold(
        self, server: str, budget: int, user: str, report: QueuedReport
    ) -> AsyncIterator[float]:
        """Runs the body in one of ``server``'s action slots, waiting for one first if the
        budget is spent; yields the seconds waited. ``report`` hears the number of actions
        ahead while queued."""
        state = self._servers.setdefault(server, _Server(budget))
        state.budget = max(1, budget)
        started = time.monotonic()
        if state.running < state.budget and not state.turns:
            state.running += 1
        else:
            await self._queue(state, user, report)
        waited = time.monotonic() - started
        self._observer.waited(waited)
        self._changed()
        try:
            yield waited
        finally:
            state.running -= 1
            self._grant(state)
            self._report_positions(state)
            self._changed()

    async def _queue(self, state: _Server, user: str, report: QueuedReport) -> None:
        waiter = _Waiter(user, report, asyncio.get_running_loop().create_future())
        if user not in state.waiting:
            state.waiting[user] = deque()
            state.turns.append(user)
        state.waiting[user].append(waiter)
        self._grant(state)  # a raised budget may let it start at once
        self._report_positions(state)
        self._changed()
        try:
            await waiter.granted
        except asyncio.CancelledError:
            if waiter.granted.done() and not waiter.granted.cancelled():
                # Granted as the cancel landed: the slot is this waiter's to give back.
                state.running -= 1
                self._grant(state)
            else:
                self._remove(state, waiter)
            self._report_positions(state)
            self._changed()
            raise

    def _grant(self, state: _Server) -> None:
        """Starts waiters while the budget allows (the callers then report the places)."""
        while state.running < state.budget and state.turns:
            user = state.turns.popleft()
            line = state.waiting[user]
            waiter = line.popleft()
            if line:
                state.turns.append(user)  # its next one waits for the others' turns
            else:
                del state.waiting[user]
            state.running += 1
            waiter.granted.set_result(None)

    def _remove(self, state: _Server, waiter: _Waiter) -> None:
        line = state.waiting.get(waiter.user)
        if line is None or waiter not in line:
            return
        line.remove(waiter)
        if not line:
            del state.waiting[waiter.user]
            state.turns.remove(waiter.user)

    def _report_positions(self, state: _Server) -> None:
        """Each waiter's place if no one else arrived. The round robin serves every user's
        k-th waiter, in ``turns`` order, before any user's (k+1)-th: one pass per round k
        over the users still waiting that long, so O(waiters) in all."""
        lines = {user: list(state.waiting[user]) for user in state.turns}
        active = list(state.turns)
        before, k = 0, 0
        while active:
            for place, user in enumerate(active):
                waiter = lines[user][k]
                if waiter.told != before + place:
                    waiter.told = before + place
                    try:
                        waiter.report(waiter.told)
                    except Exception:  # a report must not break the queue
                        log.exception("reporting an action's place in the queue failed")
            before += len(active)
            k += 1
            active = [user for user in active if len(lines[user]) > k]

    def _changed(self) -> None:
        servers = self._servers.values()
        self._observer.slots_changed(
            sum(s.running for s in servers), sum(s.queued for s in servers)
        )
