"""The completion service: runs the stages for each request and owns their shared state."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.backends.errors import BackendError, FailureKind
from engine.backends.openai_compatible import CompletionBackend, GenerationParams
from engine.backends.vllm_extras import ServerInfo
from engine.completion.context import ContextBuilder, TokenCounts
from engine.completion.generation import LatestWins, generate
from engine.completion.postprocessing import (
    StreamCutter,
    block_indent,
    choose_line_mode,
    finalize,
)
from engine.completion.templating.selection import (
    TemplateChoice,
    choose_template,
    repo_markers_usable,
)
from engine.completion.templating.templates import FimTemplate
from engine.completion.types import CompletionRequest, Suggestion
from engine.completion.typing_through import TypingThroughMemory
from engine.config import CompletionConfig, Settings
from engine.health import Notice, OutageTracker
from engine.metrics import CompletionStats
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
    ) -> None:
        self._settings = settings
        self.workspace = workspace
        self._notify = notify
        # Shared with the action service: one message per outage, whoever meets it first.
        self.outages = outages or OutageTracker(notify)
        self._outages = self.outages
        self._latest = LatestWins()
        self._memory = TypingThroughMemory()
        self._served: ServedModel | None = None
        self._discovery: asyncio.Task[ServedModel] | None = None
        self.stats = CompletionStats()

    @property
    def settings(self) -> Settings:
        return self._settings

    @property
    def served_model(self) -> ServedModel | None:
        return self._served

    async def start(self) -> None:
        """Discover the model and template in the background; the first request waits for it."""
        self._discovery_task()

    async def reconfigure(self, settings: Settings) -> None:
        endpoint_changed = (settings.instruct, settings.completion, settings.index) != (
            self._settings.instruct,
            self._settings.completion,
            self._settings.index,
        )
        self._settings = settings
        if endpoint_changed:
            await self._drop_served_model()
            self._discovery_task()

    async def aclose(self) -> None:
        await self._drop_served_model()

    def forget_document(self, uri: str) -> None:
        self._latest.cancel(uri)
        self._memory.forget(uri)
        if self._served is not None:
            self._served.context.forget(uri)

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
        if not request.explicit and settings.debounce_ms > 0:
            try:
                # Keystrokes in a burst supersede this one here, before any request is made.
                await asyncio.sleep(settings.debounce_ms / 1000)
            except asyncio.CancelledError:
                self.stats.superseded += 1
                raise
        url = self._settings.instruct.base_url
        if self._outages.should_skip(url):
            return None
        try:
            served = await self._served_model()
            suggestion = await self._generate(served, request, started)
        except BackendError as error:
            self.stats.failures += 1
            self._outages.failed(error)
            if self._discovery is not None and self._discovery.done() and self._served is None:
                self._discovery = None  # retry discovery on the next request
            return None
        self._outages.succeeded(url)
        return suggestion

    async def _generate(
        self, served: ServedModel, request: CompletionRequest, started: float
    ) -> Suggestion | None:
        settings = self._settings.completion
        context = served.context.build(request, settings.prompt_token_budget)
        if context is None:
            log.info("no completion in %s: it may hold secrets", request.document_uri)
            return None
        template = served.template
        params = GenerationParams(
            prompt=template.render(context, served.repo_headers),
            max_tokens=settings.max_tokens,
            temperature=settings.temperature,
            top_p=settings.top_p,
            stop=template.stop,
            extra_body=_vllm_fields(settings),
        )
        cutter = StreamCutter(
            template.stop,
            choose_line_mode(context, settings.multiline),
            block_indent=block_indent(context),
        )
        self.stats.backend_requests += 1
        outcome = await generate(served.backend, params, cutter, settings.timeout_s)
        if outcome.usage is not None:
            self.stats.prompt_tokens += outcome.usage.prompt_tokens
            self.stats.cached_tokens += outcome.usage.cached_tokens or 0
        text = finalize(outcome.text, context, template.stop)
        latency = _ms_since(started)
        self.stats.last_latency_ms = latency
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

    def _discovery_task(self) -> asyncio.Task[ServedModel]:
        if self._discovery is None:
            self._discovery = asyncio.create_task(self._discover())
            # A failure is reported by the request that awaits it; don't warn it was unseen.
            self._discovery.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._discovery

    async def _served_model(self) -> ServedModel:
        if self._served is not None:
            return self._served
        # shield: one cancelled keystroke must not kill discovery for the others.
        return await asyncio.shield(self._discovery_task())

    async def _discover(self) -> ServedModel:
        endpoint = self._settings.instruct
        info = ServerInfo(endpoint)
        try:
            model = endpoint.model or await _first_served_model(info)
            count_tokens = await _token_counter(info, model)
            choice = await choose_template(model, self._settings.completion.template, count_tokens)
            repo_headers = await repo_markers_usable(choice.template, count_tokens)
        except BaseException:
            await info.aclose()
            raise
        if choice.warning:
            log.warning("%s", choice.warning)
            self._notify(Notice("warning", f"iquest: {choice.warning}"))
        log.info(
            "instruct model %s at %s: template %s (%s)",
            model,
            endpoint.base_url,
            choice.template.name,
            choice.reason,
        )
        settings = self._settings
        context = ContextBuilder(
            self.workspace,
            TokenCounts(count_tokens),
            settings.completion.layout,
            settings.completion.cursor_line,
            settings.index.exclude,
        )
        backend = CompletionBackend(endpoint, model, timeout_s=settings.completion.timeout_s)
        self._served = ServedModel(model, choice, repo_headers, backend, info, context)
        return self._served

    async def _drop_served_model(self) -> None:
        if self._discovery is not None and not self._discovery.done():
            self._discovery.cancel()
        self._discovery = None
        if self._served is not None:
            await self._served.backend.aclose()
            await self._served.info.aclose()
            self._served = None


async def _first_served_model(info: ServerInfo) -> str:
    models = await info.served_models()
    if not models:
        raise BackendError(info.base_url, FailureKind.MALFORMED, "the server lists no models")
    return models[0]


async def _token_counter(info: ServerInfo, model: str) -> Callable[[str], Awaitable[int]] | None:
    """A marker-counting function, or None when the server has no /tokenize (not vLLM)."""
    try:
        await info.token_count(model, "x")
    except BackendError as error:
        if error.kind is FailureKind.HTTP_STATUS:
            log.info("no /tokenize at %s: FIM markers cannot be checked", info.root)
            return None
        raise

    async def count(text: str) -> int:
        return await info.token_count(model, text)

    return count


def _vllm_fields(settings: CompletionConfig) -> dict[str, object]:
    fields: dict[str, object] = {}
    if settings.priority:
        fields["priority"] = settings.priority
    if settings.cache_salt:
        fields["cache_salt"] = settings.cache_salt
    return fields


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
