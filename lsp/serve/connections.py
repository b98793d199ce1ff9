"""The team daemon's open connections: whose each is, when it was last heard from, and each
user's usage over all of their connections."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lsp.language_server import IquestServer
from lsp.serve.limits import UserLimits, UserUsage
from lsp.serve.metrics import DaemonMetrics, StatsAccount


@dataclass(eq=False)
class Connection:
    user: str
    # The token it was opened with: revoking it ends the connection.
    token_id: str
    server: IquestServer
    account: StatsAccount
    # Anything received counts, so a connection that never sends is closed as idle too.
    last_seen: float = field(default_factory=time.monotonic)

    def fold_stats(self) -> None:
        """This connection's new completion counts into the daemon's metrics."""
        stats = self.server.session.completion_stats()
        if stats is not None:
            self.account.fold(stats)


class Connections:
    def __init__(self, limits: UserLimits, metrics: DaemonMetrics) -> None:
        self._limits = limits
        self._metrics = metrics
        self._open: list[Connection] = []
        self._usage: dict[str, UserUsage] = {}

    def add(self, user: str, token_id: str, server: IquestServer) -> Connection:
        connection = Connection(user, token_id, server, StatsAccount(self._metrics))
        self._open.append(connection)
        self._count()
        return connection

    def remove(self, connection: Connection) -> None:
        if connection in self._open:
            self._open.remove(connection)
        connection.fold_stats()
        self._count()

    def all(self) -> list[Connection]:
        return list(self._open)

    def of_user(self, user: str) -> list[Connection]:
        return [c for c in self._open if c.user == user]

    def usage(self, user: str) -> UserUsage:
        return self._usage.setdefault(user, UserUsage(self._limits))

    def idle(self, idle_s: float) -> list[Connection]:
        now = time.monotonic()
        return [c for c in self._open if now - c.last_seen > idle_s]

    def _count(self) -> None:
        self._metrics.connections.set(len(self._open))
        self._metrics.users.set(len({c.user for c in self._open}))
