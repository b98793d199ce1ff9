"""Socket slots: open sockets counted in all and per peer address, each given back exactly once.

A team sits behind one NAT address and never restarts the daemon, so a slot that is not given
back on some path (a WebSocket upgrade that fails after its token was accepted, a TLS socket
whose peer address is gone by the time it closes) locks that address out for good. Each slot
therefore remembers its own address and knows whether it was released: releasing twice, or
from two paths that both see the end of one socket, changes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(eq=False)
class Slot:
    address: str
    _release: Callable[[Slot], None] = field(repr=False)
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self._release(self)


@dataclass
class _Arrivals:
    """New sockets from one address: a token bucket."""

    tokens: float
    refilled: float


class SocketSlots:
    def __init__(
        self,
        max_total: int,
        max_per_address: int,
        new_per_address_per_s: float = float("inf"),
        new_per_address_burst: int = 1,
    ) -> None:
        self._max_total = max_total
        self._max_per_address = max_per_address
        # New sockets per address: thousands of connections a second from one address cost
        # the daemon a session each and starve everyone else (refused at once instead).
        self._rate = new_per_address_per_s
        self._burst = float(new_per_address_burst)
        self._arrivals: dict[str, _Arrivals] = {}
        self._by_address: dict[str, int] = {}
        self._total = 0
        # Called with the open count after every change (a gauge).
        self.on_change: Callable[[int], None] = lambda _open: None

    @property
    def open(self) -> int:
        return self._total

    def of_address(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def take(self, address: str) -> Slot | str:
        """A slot for one more socket from ``address``, or why there is none."""
        if self._total >= self._max_total:
            return "too many connections"
        if self._by_address.get(address, 0) >= self._max_per_address:
            return "too many connections from one address"
        if not self._arrived(address):
            return "too many new connections from one address"
        self._by_address[address] = self._by_address.get(address, 0) + 1
        self._total += 1
        self.on_change(self._total)
        return Slot(address, self._give_back)

    def _arrived(self, address: str) -> bool:
        if self._rate == float("inf"):
            return True
        now = time.monotonic()
        bucket = self._arrivals.get(address)
        if bucket is None:
            if len(self._arrivals) >= 10_000:
                self._forget_quiet_addresses(now)
            bucket = self._arrivals[address] = _Arrivals(self._burst, now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.refilled) * self._rate)
        bucket.refilled = now
        if bucket.tokens < 1.0:
            return False
        bucket.tokens -= 1.0
        return True

    def _forget_quiet_addresses(self, now: float) -> None:
        """Addresses whose bucket has refilled hold nothing worth keeping (bounded memory)."""
        full_after = self._burst / self._rate
        for address in [a for a, b in self._arrivals.items() if now - b.refilled >= full_after]:
            del self._arrivals[address]
        if len(self._arrivals) >= 10_000:  # all busy: start over rather than grow
            self._arrivals.clear()

    def _give_back(self, slot: Slot) -> None:
        left = self._by_address.get(slot.address, 0) - 1
        if left > 0:
            self._by_address[slot.address] = left
        else:
            self._by_address.pop(slot.address, None)
        self._total -= 1
        self.on_change(self._total)
