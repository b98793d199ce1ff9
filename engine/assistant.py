"""One editor connection's assistant: the one owner of its settings and identity, and the
services that answer it (completions, actions) over its endpoints.

The session factory of each mode (lsp.session, lsp.serve.session) builds one per connection.
Completions, actions and endpoints read the settings from here and never keep a copy: a
reconfiguration is one call, and the endpoints are left to routing and failover."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

from engine.actions.service import ActionService
from engine.completion.discovery import ModelDirectory
from engine.completion.pipeline import CompletionService
from engine.config import Settings
from engine.definitions import RepositoryContext
from engine.endpoints import ActionSlots, Endpoints
from engine.notices import Notify
from engine.team.identity import Identity


class Assistant:
    def __init__(
        self,
        settings: Settings,
        *,
        identity: Identity,
        models: ModelDirectory,
        repository: RepositoryContext,
        notify: Notify,
        action_slots: ActionSlots,
        share: Callable[[], AbstractContextManager[int]] | None = None,
    ) -> None:
        self.settings = settings
        self.identity = identity
        read = self._read_settings
        self.endpoints = Endpoints(read, models.clients, notify, action_slots=action_slots)
        self.completions = CompletionService(read, self.endpoints, models, repository, share)
        self.actions = ActionService(
            read,
            self.endpoints,
            repository,
            counts=lambda: self.completions.counts,
            share=share,
            user=identity.user,
        )

    def _read_settings(self) -> Settings:
        return self.settings

    async def start(self) -> None:
        await self.completions.start()

    async def reconfigure(self, settings: Settings) -> None:
        before, self.settings = self.settings, settings
        await self.completions.reconfigure(before)

    async def aclose(self) -> None:
        await self.completions.aclose()
