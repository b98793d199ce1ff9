"""The completion service: runs the stages for each request (context, templating, generation,
post-processing, filtering) on the model its replica serves (engine.completion.served_models),
counting what happened in its stats."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext

from engine.backends.errors import BackendError
from engine.backends.vllm_extras import vllm_request_fields
from engine.completion.context import ContextBuilder
from engine.completion.discovery import ModelDirectory, ServedModel
from engine.completion.generation import LatestWins, generate
from engine.completion.generation.sampling import bench_fixed_length, sampling_params
from engine.completion.generation.stream import GenerationOutcome
from engine.completion.postprocessing import (
    StreamCutter,
    block_indent,
    choose_line_mode,
    finalize,
)
from engine.completion.served_models import ServedModels
from engine.completion.types import CompletionRequest, Suggestion
from engine.completion.typing_through import Streaming, TypingThroughMemory
from engine.config import Settings
from engine.definitions import RepositoryContext, TokenCounts
from engine.endpoints import (
    Endpoints,
    NoEndpointAnswered,
    Replica,
    routing_headers,
    send_without_refused,
)
from engine.metrics import CompletionStats

log = logging.getLogger(__name__)


class CompletionService:
    def __init__(
        self,
        settings: Callable[[], Settings],
        endpoints: Endpoints,
        models: ModelDirectory,
        repository: RepositoryContext,
        share: Callable[[], AbstractContextManager[int]] | None = None,
    ) -> None:
        # Read from the connection's assistant (engine.assistant), which owns them.
        self._settings = settings
        self.endpoints = endpoints
        self.repository = repository
        self.models = ServedModels(endpoints, models, repository, lambda: self.settings)
        # Team mode: this user's place at the model server (engine.team.fair_share).
        self._share = share or (lambda: nullcontext(0))
        self._latest = LatestWins()
        self._memory = TypingThroughMemory()
        # Per document, the request streaming now (cleared when it ends), and how many
        # requests were asked (the latest one's number tells a stale request it is one).
        self._streaming: dict[str, Streaming] = {}
        self._asked: dict[str, int] = {}
        self.stats = CompletionStats()

    @property
    def settings(self) -> Settings:
        return self._settings()

    @property
    def served_model(self) -> ServedModel | None:
        return self.models.primary

    @property
    def counts(self) -> TokenCounts:
        return self.models.counts

    async def start(self) -> None:
        """Discover the model and template in the background; the first request waits for it."""
        self.models.start()

    async def reconfigure(self, before: Settings) -> None:
        """The settings changed from ``before``: rediscover if what discovery depends on
        changed."""
        settings = self.settings
        fields = ("instruct", "reasoning", "routing", "completion", "index")
        if any(getattr(settings, f) != getattr(before, f) for f in fields):
            self.models.drop()
            await self.start()

    async def aclose(self) -> None:
        self.models.drop()

    def forget_document(self, uri: str) -> None:
        self._latest.cancel(uri)
        self._memory.forget(uri)
        self._streaming.pop(uri, None)
        self._asked.pop(uri, None)
        for context in self.models.contexts():
            context.forget(uri)

    def in_flight(self) -> int:
        """Completions being made now (the editor plugins show the daemon busy)."""
        return self._latest.in_flight()

    async def complete(self, request: CompletionRequest) -> Suggestion | None:
        if not 0 <= request.cursor <= len(request.text):
            raise ValueError(f"cursor {request.cursor} outside a text of {len(request.text)}")
        started = time.perf_counter()
        self.stats.requests += 1
        prefix, suffix = request.text[: request.cursor], request.text[request.cursor :]
        # Asked for candidates (cycling): the model answers, not the memory of the one shown.
        remembered = (
            None
            if self._candidates(request) > 1
            else self._memory.recall(request.document_uri, prefix, suffix)
        )
        if remembered is not None:
            self._latest.cancel(request.document_uri)
            self.stats.served_from_memory += 1
            return Suggestion(remembered, _ms_since(started), from_memory=True)
        uri = request.document_uri
        ticket = self._asked[uri] = self._asked.get(uri, 0) + 1
        joined, continued = await self._continue_streaming(request, prefix, suffix, started)
        if continued is not None:
            return continued
        if joined and self._asked.get(uri) != ticket:
            # Keystrokes came while this one waited: asking afresh for a stale position would
            # cancel the newest keystroke's request.
            self.stats.superseded += 1
            return None

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

    async def _continue_streaming(
        self, request: CompletionRequest, prefix: str, suffix: str, started: float
    ) -> tuple[bool, Suggestion | None]:
        """Typing through a suggestion not yet shown: the request streaming for this document
        has produced what the user typed since it was sent, so its answer is this position's
        too. Wait for it rather than cancel it and ask again. (Whether it waited, and the
        suggestion; none when there was nothing to continue or the answer did not.)"""
        uri = request.document_uri
        streaming = self._streaming.get(uri)
        if (
            not self.settings.completion.continue_streaming
            or streaming is None
            or self._candidates(request) > 1
            or not self._latest.running(uri)
            or not streaming.continued_by(prefix, suffix)
        ):
            return False, None
        await self._latest.join(uri)
        rest = self._memory.recall(uri, prefix, suffix)
        if rest is None:
            return True, None  # the answer was cut differently in the end
        self.stats.continued_streaming += 1
        return True, Suggestion(rest, _ms_since(started), from_memory=True)

    async def _complete_fresh(
        self, request: CompletionRequest, started: float
    ) -> Suggestion | None:
        settings = self.settings.completion
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
        route = self.endpoints.route("inline")

        async def attempt(replica: Replica) -> Suggestion | None:
            try:
                waited = time.perf_counter()
                served, context = await self.models.served(replica)
                # Discovery (once per endpoint) is start-up, not per-request overhead.
                discovery_s = time.perf_counter() - waited
                return await self._generate(
                    served, context, request, started, overhead_from + discovery_s
                )
            except BackendError:
                self.stats.failures += 1
                self.models.failed(replica)
                raise

        try:
            return await self.endpoints.call(route, request.session, attempt, try_paused=False)
        except (BackendError, NoEndpointAnswered):
            return None  # the user heard of the outage from the endpoints

    async def _generate(
        self,
        served: ServedModel,
        builder: ContextBuilder,
        request: CompletionRequest,
        started: float,
        overhead_from: float,
    ) -> Suggestion | None:
        settings = self.settings.completion
        context = builder.build(request, settings.prompt_token_budget)
        if context is None:
            log.info("no completion in %s: it may hold secrets", request.document_uri)
            return None
        template = served.template
        prompt = template.render(context, served.repo_headers)
        if not prompt.strip():
            return None  # an empty file with no context: nothing to complete (vLLM says 400)
        line_mode = choose_line_mode(context, settings.multiline)
        self.stats.request_sent(_ms_since(overhead_from))

        n = self._candidates(request)
        prefix, suffix = request.text[: request.cursor], request.text[request.cursor :]

        async def send(fields: dict[str, object]) -> GenerationOutcome:
            headers = routing_headers(request.session, request.user_key)
            params = sampling_params(settings, prompt, template.stop, line_mode, n, fields, headers)
            if settings.bench_fixed_lengths:
                params = bench_fixed_length(params, line_mode)
            cutters = [
                StreamCutter(template.stop, line_mode, block_indent=block_indent(context))
                for _ in range(n)
            ]
            uri = request.document_uri
            streaming = Streaming(prefix, suffix, lambda: cutters[0].text)
            self._streaming[uri] = streaming
            try:
                return await generate(
                    served.backend,
                    params,
                    cutters,
                    settings.timeout_s,
                    read_to_end=settings.bench_fixed_lengths,
                )
            finally:
                if self._streaming.get(uri) is streaming:
                    del self._streaming[uri]

        with self._share() as queued_ahead:
            fields = vllm_request_fields(settings.priority, settings.cache_salt, queued_ahead)
            refused = self.endpoints.clients.refused(served.backend.url)
            outcome = await send_without_refused(refused, fields, send)
        if outcome.usage is not None:
            self.stats.tokens_used(outcome.usage.prompt_tokens, outcome.usage.cached_tokens)
        texts = distinct(finalize(raw, context, template.stop) for raw in outcome.texts)
        latency = _ms_since(started)
        self.stats.answered(latency, shown=bool(texts))
        if not texts:
            log.debug("nothing worth showing from %r", outcome.text[:80])
            return None
        # The editor shows the first: typing through it is served from memory.
        self._memory.remember(request.document_uri, prefix, suffix, texts[0])
        return Suggestion(
            texts[0],
            latency,
            prompt_tokens=outcome.usage.prompt_tokens if outcome.usage else None,
            cached_tokens=outcome.usage.cached_tokens if outcome.usage else None,
            alternatives=texts[1:],
        )

    def _candidates(self, request: CompletionRequest) -> int:
        """How many suggestions to ask for: several only when the user asked (cycling), all
        from one request and one prompt."""
        return self.settings.completion.candidates if request.explicit else 1


def distinct(texts: Iterable[str | None]) -> tuple[str, ...]:
    """The texts worth showing, each once, in order (candidates often repeat)."""
    return tuple(dict.fromkeys(text for text in texts if text is not None))


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000
