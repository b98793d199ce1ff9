"""Socket slots: open sockets counted in all and per peer address, each given back exactly once.

A team sits behind one NAT address and never restarts the daemon, so a slot that is not given
back on some path (a WebSocket upgrade that fails after its token was accepted, a TLS socket
whose peer address is gone by the time it closes) locks that address out for good. Each slot
therefore remembers its own address and knows whether it was released: releasing twice, or
from two paths that both see the end of one socket, changes nothing."""

from __future__ import annotations

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


class SocketSlots:
    def __init__(self, max_total: int, max_per_address: int) -> None:
        self._max_total = max_total
        self._max_per_address = max_per_address
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
        self._by_address[address] = self._by_address.get(address, 0) + 1
        self._total += 1
        self.on_change(self._total)
        return Slot(address, self._give_back)

    def _give_back(self, slot: Slot) -> None:
        left = self._by_address.get(slot.address, 0) - 1
        if left > 0:
            self._by_address[slot.address] = left
        else:
            self._by_address.pop(slot.address, None)
        self._total -= 1
        self.on_change(self._total)
