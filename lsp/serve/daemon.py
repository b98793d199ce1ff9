"""``iquest-lsp --serve``: one daemon next to the team's vLLM, many editors.

pygls's own TCP and WebSocket servers serve one client and exit with it, so connections are
accepted here (``listeners``), each with its own language server and team session (its user's
documents, settings and findings) sharing the engine: clients and model discovery, the
server-side checkouts' indexes, and the fair share of the model server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

from engine.completion.discovery import ModelDirectory
from engine.config import SettingsError
from engine.endpoints import ActionSlots, EndpointClients
from engine.notices import Notice
from engine.repository.index import RepositoryIndex
from engine.team.fair_share import FairShare
from engine.team.tokens import TokenEntry, TokenStore
from engine.workspace import Workspace, default_index_cache
from lsp.language_server import IquestServer
from lsp.serve.connections import Connection, Connections
from lsp.serve.dispatch import Dispatcher
from lsp.serve.listeners import Listeners
from lsp.serve.metrics import DaemonMetrics
from lsp.serve.options import ServeOptions
from lsp.serve.session import team_session
from lsp.server import build_server
from lsp.settings import SettingsLayers

log = logging.getLogger(__name__)


class TeamDaemon:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.tokens = TokenStore(options.tokens)
        self.models = ModelDirectory(EndpointClients())
        self.checkouts = Workspace(_index_cache(options))
        self.metrics = DaemonMetrics()
        self.fair_share = FairShare()
        # One budget of running actions per model server for every connection of this
        # process; with --workers, each worker keeps its share.
        self.action_slots = ActionSlots(self.metrics, options.workers)
        self.connections = Connections(options.limits, self.metrics)
        self.dispatcher = Dispatcher(options.limits, self.metrics, self.connections)
        self.listeners = Listeners(
            options,
            self.tokens,
            self.metrics,
            self.dispatcher,
            self.open_connection,
            self.close_connection,
        )
        self._watchers: list[asyncio.Task[None]] = []
        self._secret = b""

    @property
    def bound(self) -> dict[str, int]:
        return self.listeners.bound

    async def start(self) -> None:
        for repo in self.options.repos:
            self.checkouts.add_folder(repo.resolve())
        self._secret = self.tokens.server_secret()
        await self.listeners.start()
        self._watchers = [
            asyncio.create_task(self._close_idle_connections()),
            asyncio.create_task(self._close_revoked_connections()),
        ]
        log.info("serving %s", ", ".join(f"{k} port {v}" for k, v in self.bound.items()))
        if self.options.announce:
            host, tls = self.options.host, self.listeners.tls
            print(
                f"iquest-lsp serving: {'tls' if tls else 'tcp'}://{host}:{self.bound.get('tcp')} "
                f"{'wss' if tls else 'ws'}://{host}:{self.bound.get('ws')}",
                flush=True,
            )

    async def aclose(self) -> None:
        for watcher in self._watchers:
            watcher.cancel()
        self.listeners.close()
        for connection in self.connections.all():
            await _close_session(connection.server)
        await self.checkouts.aclose()
        await self.models.aclose()
        await self.models.clients.aclose()

    def open_connection(self, entry: TokenEntry, close: Callable[[], None]) -> Connection:
        if not self._secret:
            self._secret = self.tokens.server_secret()
        session = team_session(
            entry.user,
            self.options.config,
            self._secret,
            self.options.salt_per,
            self.models,
            self._visible_checkouts(entry),
            self.fair_share,
            close,
            self.action_slots,
        )
        log.info("connection for user %s", entry.user)
        return self.connections.add(entry.user, entry.id, build_server(session))

    async def close_connection(self, connection: Connection) -> None:
        self.connections.remove(connection)
        await _close_session(connection.server)

    def _visible_checkouts(self, entry: TokenEntry) -> list[RepositoryIndex]:
        """The server-side checkouts this connection's token allows (all, unless restricted):
        a user's other, unrestricted token does not widen a restricted one."""
        if entry.repos is None:
            return list(self.checkouts.indexes)
        return [index for index in self.checkouts.indexes if index.name in entry.repos]

    async def _close_idle_connections(self) -> None:
        idle = self.options.limits.idle_timeout_s
        while True:
            await asyncio.sleep(min(30.0, idle / 4))
            for connection in self.connections.idle(idle):
                log.info("closing an idle connection of %s", connection.user)
                connection.server.close_connection()

    async def _close_revoked_connections(self) -> None:
        """A revoked (or deleted) token ends its live connections within token_check_s."""
        while True:
            await asyncio.sleep(self.options.token_check_s)
            try:
                live = {e.id for e in self.tokens.entries() if not e.revoked}
            except (OSError, ValueError) as error:  # a store being edited by hand: next round
                log.warning("cannot read the token store: %s", error)
                continue
            for connection in self.connections.all():
                if connection.token_id not in live:
                    log.info("closing a connection of %s: its token was revoked", connection.user)
                    # Said before the close (written first, sent first): an editor dropped
                    # without a word looked like a crash.
                    connection.server.notify_user(
                        Notice(
                            "error",
                            "iquest: this team token was revoked; the connection is closed. "
                            "Ask the team server's admin for a new token.",
                        )
                    )
                    connection.server.close_connection()


async def _close_session(server: IquestServer) -> None:
    try:
        await server.session.aclose()
    except Exception:
        log.exception("closing a session")


def _index_cache(options: ServeOptions) -> Path:
    """The checkouts' index cache: ``[index] cache_dir`` of the daemon's config, if set."""
    try:
        settings = SettingsLayers(options.config).server_settings()
    except SettingsError as error:
        log.warning("the config's index settings cannot be read (%s): default cache", error)
        return default_index_cache()
    return Path(settings.index.cache_dir) if settings.index.cache_dir else default_index_cache()
