"""One connection's way to its model servers: route, replica order, failover and notices.

Completions and actions both call :meth:`Endpoints.call` with the work to do on one server;
which servers are tried, in which order, what counts as a failure worth trying elsewhere and
what the user is told all live here, once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from engine.backends.errors import BackendError
from engine.config import EndpointConfig, Settings
from engine.endpoints.action_slots import ActionSlots, budget_for
from engine.endpoints.clients import EndpointClients
from engine.endpoints.health import OutageTracker
from engine.endpoints.replicas import in_affinity_order
from engine.endpoints.routing import (
    EndpointName,
    Route,
    Router,
    Task,
    endpoint_config,
    endpoint_label,
    endpoints_in_order,
    worth_falling_back,
)
from engine.notices import Notice, Notify

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Replica:
    """One server of an endpoint (``config.base_url`` is that server's URL)."""

    endpoint: EndpointName
    config: EndpointConfig

    @property
    def url(self) -> str:
        return self.config.base_url


class NoEndpointAnswered(Exception):
    """Every server the route allows failed, or failed a moment ago and was skipped."""

    def __init__(self, route: Route, last_error: BackendError | None) -> None:
        detail = (
            str(last_error)
            if last_error is not None
            else "its servers failed a moment ago; trying again shortly"
        )
        super().__init__(detail)
        self.route = route
        self.last_error = last_error


class Endpoints:
    def __init__(
        self,
        settings: Callable[[], Settings],
        clients: EndpointClients,
        notify: Notify,
        outages: OutageTracker | None = None,
        action_slots: ActionSlots | None = None,
    ) -> None:
        # Read, never owned: the connection's assistant (engine.assistant) owns the settings,
        # so a reconfiguration is one assignment there.
        self._settings = settings
        # Shared: by completions and actions, and in team mode by every connection.
        self.clients = clients
        # Shared like the clients: the running actions per server, this process's share.
        self.action_slots = action_slots or ActionSlots()
        self.notify = notify
        self.outages = outages or OutageTracker(notify)
        # (failed endpoint, endpoint used instead) pairs the user was told about; forgotten
        # when the failed one answers again.
        self._fallbacks_told: set[tuple[EndpointName, EndpointName]] = set()

    @property
    def settings(self) -> Settings:
        return self._settings()

    def route(self, task: Task, selected_lines: int = 0) -> Route:
        return Router(self.settings.routing).route(task, selected_lines)

    def replicas(self, route: Route, session: str | None, *, try_paused: bool) -> list[Replica]:
        """The servers to try, in order: the route's endpoint, then its fallback; within each,
        the session's replica first (its prefix cache). Servers that failed a moment ago go
        last, and only with ``try_paused`` (a keystroke gets its empty answer at once instead
        of waiting on a dead server; an action the user asked for tries them still)."""
        settings = self.settings
        everything = [
            Replica(name, config)
            for name in endpoints_in_order(route, settings)
            for config in in_affinity_order(endpoint_config(settings, name), session)
        ]
        # A router is never paused: one replica's failure behind it is not the others', and
        # the router checks its replicas' health itself.
        ready = [r for r in everything if r.config.router or not self.outages.should_skip(r.url)]
        paused = [r for r in everything if r not in ready] if try_paused else []
        return ready + paused

    def suggestions_paused(self) -> bool:
        """Every server inline completions may use now is down (the editor shows "paused").
        Servers of earlier settings do not count: a URL the user corrected is not an outage."""
        replicas = self.replicas(self.route("inline"), None, try_paused=True)
        return bool(replicas) and all(self.outages.is_down(r.url) for r in replicas)

    async def action_budget(self, replica: Replica) -> int:
        """How many actions this process lets run at once on ``replica``."""
        processes = self.action_slots.processes
        configured = self.settings.actions.max_running
        if configured:
            return max(1, configured // processes)
        seqs = replica.config.max_num_seqs or await self.clients.max_num_seqs(replica.config)
        return budget_for(seqs, processes)

    async def call(
        self,
        route: Route,
        session: str | None,
        attempt: Callable[[Replica], Awaitable[T]],
        *,
        try_paused: bool,
    ) -> T:
        """``attempt`` on each server in turn until one answers. A failure worth another try
        (down, silent, 5xx) moves on; any other is raised as it is. Raises
        :class:`NoEndpointAnswered` when none answered."""
        last_error: BackendError | None = None
        failed_endpoint: EndpointName | None = None
        for replica in self.replicas(route, session, try_paused=try_paused):
            if failed_endpoint is not None and replica.endpoint != failed_endpoint:
                self._tell_fallback(route, failed_endpoint, replica.endpoint, last_error)
            try:
                result = await attempt(replica)
            except BackendError as error:
                if not error.server_is_failing:
                    self.outages.refused(error)
                    raise  # that request's own error: the server is fine
                self.outages.failed(error, replica.url)
                if not worth_falling_back(error):
                    raise
                last_error, failed_endpoint = error, replica.endpoint
                continue
            self.outages.succeeded(replica.url)
            self._fallbacks_told = {t for t in self._fallbacks_told if t[0] != replica.endpoint}
            return result
        raise NoEndpointAnswered(route, last_error)

    def _tell_fallback(
        self,
        route: Route,
        failed: EndpointName,
        instead: EndpointName,
        error: BackendError | None,
    ) -> None:
        log.warning("%s endpoint failed (%s): using %s", failed, error, instead)
        if (failed, instead) in self._fallbacks_told:
            return
        self._fallbacks_told.add((failed, instead))
        self.notify(
            Notice(
                "warning",
                f"iquest: {route.task} use the {instead} model meanwhile: the {failed} model "
                f"({endpoint_label(self.settings, failed)}) is not answering.",
            )
        )
