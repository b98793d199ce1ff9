"""Which model each replica serves: discovered once per replica in the background (its name,
FIM template, token counts), with the context builder made on those counts. The first request
to a replica waits for its discovery; a failed discovery is tried again by the next request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from engine.completion.context import ContextBuilder
from engine.completion.discovery import ModelDirectory, ServedModel
from engine.config import EndpointConfig, Settings
from engine.definitions import RepositoryContext, TokenCounts
from engine.endpoints import Endpoints, Replica
from engine.endpoints.replicas import in_affinity_order
from engine.notices import Notice

log = logging.getLogger(__name__)

_ESTIMATES = TokenCounts(None)

# Per (endpoint name, replica URL).
ReplicaKey = tuple[str, str]


class ServedModels:
    def __init__(
        self,
        endpoints: Endpoints,
        models: ModelDirectory,
        repository: RepositoryContext,
        settings: Callable[[], Settings],
    ) -> None:
        self._endpoints = endpoints
        # Shared in team mode (template checks, token counts); closed by its owner.
        self._models = models
        self._repository = repository
        self._settings = settings
        self._served: dict[ReplicaKey, ServedModel] = {}
        self._contexts: dict[ReplicaKey, ContextBuilder] = {}
        self._discovery: dict[ReplicaKey, asyncio.Task[ServedModel]] = {}

    @property
    def primary(self) -> ServedModel | None:
        """The model serving inline completions by the routing rules, once discovered."""
        primary = self._endpoints.route("inline").endpoint
        return next(
            (served for (name, _), served in self._served.items() if name == primary),
            next(iter(self._served.values()), None),
        )

    @property
    def counts(self) -> TokenCounts:
        """Token counts of the model serving completions (estimates until it is known)."""
        served = self.primary
        return served.counts if served is not None else _ESTIMATES

    def start(self) -> None:
        """Discovers the primary endpoint's model in the background."""
        primary = self._endpoints.route("inline").endpoint
        config = in_affinity_order(getattr(self._settings(), primary), None)[0]
        self._task(Replica(primary, config))

    async def served(self, replica: Replica) -> tuple[ServedModel, ContextBuilder]:
        key = (replica.endpoint, replica.url)
        served = self._served.get(key)
        if served is None:
            # shield: one cancelled keystroke must not kill discovery for the others.
            served = await asyncio.shield(self._task(replica))
        return served, self._contexts[key]

    def failed(self, replica: Replica) -> None:
        """A request to ``replica`` failed: a discovery that failed is tried again next time."""
        key = (replica.endpoint, replica.url)
        task = self._discovery.get(key)
        if task is not None and task.done() and key not in self._served:
            del self._discovery[key]

    def contexts(self) -> list[ContextBuilder]:
        return list(self._contexts.values())

    def drop(self) -> None:
        for task in self._discovery.values():
            if not task.done():
                task.cancel()
        self._discovery, self._served, self._contexts = {}, {}, {}

    def _task(self, replica: Replica) -> asyncio.Task[ServedModel]:
        key = (replica.endpoint, replica.url)
        if key not in self._discovery:
            task = asyncio.create_task(self._discover(key, replica.config))
            # A failure is reported by the request that awaits it; don't warn it was unseen.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._discovery[key] = task
        return self._discovery[key]

    async def _discover(self, key: ReplicaKey, endpoint: EndpointConfig) -> ServedModel:
        settings = self._settings()
        served = await self._models.get(
            endpoint, settings.completion.template, settings.completion.timeout_s
        )
        if served.choice.warning:
            log.warning("%s", served.choice.warning)
            self._endpoints.notify(Notice("warning", f"iquest: {served.choice.warning}"))
        self._contexts[key] = ContextBuilder(
            self._repository,
            served.counts,
            settings.completion.layout,
            settings.completion.cursor_line,
            settings.index.exclude,
        )
        self._served[key] = served
        return served
