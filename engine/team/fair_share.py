"""Fair share of the model server between the users of a team daemon.

vLLM's priority scheduler serves lower ``priority`` values first. Each inline request of a
user goes out with the daemon's base priority plus the number of that user's requests already
at the server: someone with one request waiting is served before the fourth request of someone
bursting, whoever came first. (Per-user caps bound a burst; this interleaves what is left.)"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class FairShare:
    def __init__(self) -> None:
        self._at_server: dict[str, int] = {}

    @contextmanager
    def request(self, user: str) -> Iterator[int]:
        """Holds one of ``user``'s places at the server; yields the priority to add."""
        ahead = self._at_server.get(user, 0)
        self._at_server[user] = ahead + 1
        try:
            yield ahead
        finally:
            left = self._at_server[user] - 1
            if left:
                self._at_server[user] = left
            else:
                del self._at_server[user]

    def at_server(self, user: str) -> int:
        return self._at_server.get(user, 0)
