"""The completion service: runs the stages for each request and owns their shared state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from engine.backends.errors import BackendError
from engine.backends.openai_compatible import CompletionBackend, GenerationParams
from engine.backends.vllm_extras import ServerInfo, vllm_request_fields
from engine.completion.context import ContextBuilder
from engine.completion.generation import LatestWins, generate
from engine.completion.models import ModelDirectory
from engine.completion.postprocessing import (
    StreamCutter,
    block_indent,
    choose_line_mode,
    finalize,
)
from engine.completion.templating.selection import (
    TemplateChoice,
)
from engine.completion.templating.templates import FimTemplate
from engine.completion.types import CompletionRequest, Suggestion
from engine.completion.typing_through import TypingThroughMemory
from engine.config import EndpointConfig, Settings
from engine.health import Notice, OutageTracker
from engine.metrics import CompletionStats
from engine.replicas import SESSION_HEADER, in_affinity_order
from engine.routing import (
    EndpointName,
    Route,
    Router,
    endpoint_label,
    endpoints_in_order,
    worth_falling_back,
)
from engine.workspace import Workspace

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """What start-up learned about the instruct endpoint."""

    name: str
    choice: TemplateChoice
    repo_headers: bool
    backend: CompletionBackend
    info: ServerInfo
    context: ContextBuilder

    @property
    def template(self) -> FimTemplate:
        return self.choice.template


class CompletionService:
    def __init__(
        self,
        settings: Settings,
        notify: Callable[[Notice], None],
        workspace: Workspace | None = None,
        outages: OutageTracker | None = None,
        models: ModelDirectory | None = None,
        share: Callable[[], AbstractContextManager[int]] | None = None,
    ) -> None:
        self._settings = settings
        # Team mode: this user's place at the model server (engine.scheduling.FairShare).
        self._share = share or (lambda: nullcontext(0))
        self.workspace = workspace
        self._notify = notify
        # Shared with the action service: one message per outage, whoever meets it first.
        self.outages = outages or OutageTracker(notify)
        self._outages = self.outages
        # Shared in team mode (connection pools, token counts); owned and closed here otherwise.
        self._owns_models = models is None
        self._models = models or ModelDirectory()
        self._latest = LatestWins()
        self._memory = TypingThroughMemory()
        # Per (endpoint name, replica URL): what discovery learned, and its task.
        self._served: dict[tuple[EndpointName, str], ServedModel] = {}
        self._discovery: dict[tuple[EndpointName, str], asyncio.Task[ServedModel]] = {}
        self._fallback_told = False
        self.stats = CompletionStats()

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def served_model(self) -> ServedModel | None:
        """The model serving inline completions by the routing rules, once discovered."""
        primary = self._route().endpoint
        return next(
            (served for (name, _), served in self._served.items() if name == primary),
            next(iter(self._served.values()), None),
        )

    async def start(self) -> None:
        """Discover the model and template in the background; the first request waits for it."""
        self._discovery_task(self._route().endpoint, None)

    async def reconfigure(self, settings: Settings) -> None:
        endpoint_changed = (
            settings.instruct,
            settings.reasoning,
            settings.routing,
            settings.completion,
            settings.index,
        ) != (
            self._settings.instruct,
            self._settings.reasoning,
            self._settings.routing,
            self._settings.completion,
            self._settings.index,
        )
        self._settings = settings
        if endpoint_changed:
            await self._drop_served_models()
            self._discovery_task(self._route().endpoint, None)

    async def aclose(self) -> None:
        await self._drop_served_models()

    def forget_document(self, uri: str) -> None:
        self._latest.cancel(uri)
        self._memory.forget(uri)
        for served in self._served.values():
            served.context.forget(uri)

    def in_flight(self) -> int:
        """Completions being made now (the editor plugins show the daemon busy)."""
        return self._latest.in_flight()

    async def complete(self, request: CompletionRequest) -> Suggestion | None:
        if not 0 <= request.cursor <= len(request.text):
            raise ValueError(f"cursor {request.cursor} outside a text of {len(request.text)}")
        started = time.perf_counter()
        self.stats.requests += 1
        prefix, suffix = request.text[: request.cursor], request.text[request.cursor :]
        remembered = self._memory.recall(request.document_uri, prefix, suffix)
        if remembered is not None:
            self._latest.cancel(request.document_uri)
            self.stats.served_from_memory += 1
            return Suggestion(remembered, _ms_since(started), from_memory=True)

        try:
            result = await self._latest.run(
                request.document_uri, lambda: self._complete_fresh(request, started)
            )
        except asyncio.CancelledError:
            self.stats.cancelled += 1
            raise
        if result is None:
            self.stats.empty += 1
        return result

    async def _complete_fresh(
        self, request: CompletionRequest, started: float
    ) -> Suggestion | None:
        settings = self._settings.completion
        # The daemon's own time is what it adds to the debounce it was asked for.
        overhead_from = started
        if not request.explicit and settings.debounce_ms > 0:
            try:
                # Keystrokes in a burst supersede this one here, before any request is made.
                # The wait counts from the request's arrival: time spent reaching this point
                # (a busy event loop) is part of the debounce, not added to it.
                debounce_s = settings.debounce_ms / 1000
                await asyncio.sleep(max(0.0, started + debounce_s - time.perf_counter()))
                overhead_from += debounce_s
            except asyncio.CancelledError:
                self.stats.superseded += 1
                raise
        names = self._endpoints_in_order()
        for position, name in enumerate(names):
            # The session's replica first; the others take over while it is down.
            for endpoint in in_affinity_order(getattr(self._settings, name), request.session):
                url = endpoint.base_url
                if self._outages.should_skip(url):
                    continue
                try:
                    waited = time.perf_counter()
                    served = await self._served_model(name, endpoint)
                    # Discovery (once per endpoint) is start-up, not per-request overhead.
                    overhead_from += time.perf_counter() - waited
                    suggestion = await self._generate(served, request, started, overhead_from)
                except BackendError as error:
                    self.stats.failures += 1
                    self._outages.failed(error)
                    key = (name, url)
                    task = self._discovery.get(key)
                    if task is not None and task.done() and key not in self._served:
                        del self._discovery[key]  # retry discovery on the next request
                    if worth_falling_back(error):
                        continue  # the next replica, then the other endpoint
                    return None
                self._outages.succeeded(url)
                if position == 0:
                    self._fallback_told = False
                return suggestion
            if position + 1 < len(names):
                self._tell_fallback(name, names[position + 1])
        return None

    def _route(self) -> Route:
        return Router(self._settings.routing).route("inline")

    def _endpoints_in_order(self) -> list[EndpointName]:
        return endpoints_in_order(self._route(), self._settings)

    def _tell_fallback(self, failed: EndpointName, instead: EndpointName) -> None:
        if not self._fallback_told:
            self._fallback_told = True
            self._notify(
                Notice(
                    "warning",
                    f"iquest: inline completions use the {instead} model while the {failed} "
                    f"model ({endpoint_label(self._settings, failed)}) is not answering.",
                )
            )

    async def _generate(
        self,
        served: ServedModel,
        request: CompletionRequest,
        started: float,
        overhead_from: float,
    ) -> Suggestion | None:
        settings = self._settings.completion
        context = served.context.build(request, settings.prompt_token_budget)
        if context is None:
            log.info("no completion in %s: it may hold secrets", request.document_uri)
            return None
        template = served.template
        with self._share() as queued_ahead:
            params = GenerationParams(
                prompt=template.render(context, served.repo_headers),
                max_tokens=settings.max_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                stop=template.stop,
                extra_body=vllm_request_fields(
                    settings.priority, settings.cache_salt, queued_ahead
                ),
                headers={SESSION_HEADER: request.session} if request.session else {},
            )
            cutter = StreamCutter(
                template.stop,
                choose_line_mode(context, settings.multiline),
                block_indent=block_indent(context),
            )
            self.stats.backend_requests += 1
            self.stats.overheads_ms.append(_ms_since(overhead_from))
            outcome = await generate(served.backend, params, cutter, settings.timeout_s)
        if outcome.usage is not None:
            self.stats.prompt_tokens += outcome.usage.prompt_tokens
            self.stats.cached_tokens += outcome.usage.cached_tokens or 0
        text = finalize(outcome.text, context, template.stop)
        latency = _ms_since(started)
        self.stats.last_latency_ms = latency
        self.stats.latencies_ms.append(latency)
        if text is None:
            log.debug("nothing worth showing from %r", outcome.text[:80])
            return None
        self.stats.suggestions += 1
        prefix, suffix = request.text[: request.cursor], request.text[request.cursor :]
        self._memory.remember(request.document_uri, prefix, suffix, text)
        return Suggestion(
            text,
            latency,
            prompt_tokens=outcome.usage.prompt_tokens if outcome.usage else None,
            cached_tokens=outcome.usage.cached_tokens if outcome.usage else None,
        )

    def _discovery_task(
        self, name: EndpointName, endpoint: EndpointConfig | None
    ) -> asyncio.Task[ServedModel]:
        endpoint = endpoint or in_affinity_order(getattr(self._settings, name), None)[0]
        key = (name, endpoint.base_url)
        if key not in self._discovery:
            task = asyncio.create_task(self._discover(name, endpoint))
            # A failure is reported by the request that awaits it; don't warn it was unseen.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._discovery[key] = task
        return self._discovery[key]

    async def _served_model(self, name: EndpointName, endpoint: EndpointConfig) -> ServedModel:
        key = (name, endpoint.base_url)
        if key in self._served:
            return self._served[key]
        # shield: one cancelled keystroke must not kill discovery for the others.
        return await asyncio.shield(self._discovery_task(name, endpoint))

    async def _discover(self, name: EndpointName, endpoint: EndpointConfig) -> ServedModel:
        settings = self._settings
        found = await self._models.get(
            endpoint, settings.completion.template, settings.completion.timeout_s
        )
        if found.choice.warning:
            log.warning("%s", found.choice.warning)
            self._notify(Notice("warning", f"iquest: {found.choice.warning}"))
        context = ContextBuilder(
            self.workspace,
            found.counts,
            settings.completion.layout,
            settings.completion.cursor_line,
            settings.index.exclude,
        )
        served = ServedModel(
            found.name, found.choice, found.repo_headers, found.backend, found.info, context
        )
        self._served[(name, endpoint.base_url)] = served
        return served

    async def _drop_served_models(self) -> None:
        for task in self._discovery.values():
            if not task.done():
                task.cancel()
        self._discovery = {}
        self._served = {}
        if self._owns_models:
            await self._models.aclose()


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
