"""The action service: explain, fix, find bugs and ask, from prompt to checked result.

Stages, as for completions: context (the completion prompts' repository tier and the code
around the selection) -> prompt (``prompts/actions``) -> generation (a streamed chat completion,
thinking split out) -> post-processing (a checked edit, validated findings, markdown)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from engine.actions.findings import FindingsRejected, findings_schema, read_findings
from engine.actions.fix import FixRejected, build_edit, fix_schema, read_proposal
from engine.actions.prompting import build_messages, retry_message
from engine.actions.thinking import ThinkingSplitter
from engine.actions.types import (
    ActionError,
    ActionRequest,
    Answer,
    Explanation,
    Finding,
    FixOutcome,
)
from engine.backends.chat import ChatBackend, ChatMessage, ChatParams
from engine.backends.errors import BackendError
from engine.backends.vllm_extras import ServerInfo, vllm_request_fields
from engine.completion.context import ContextBuilder, TokenCounts
from engine.completion.models import first_served_model
from engine.completion.types import CompletionRequest
from engine.config import EndpointConfig, Settings
from engine.health import Notice, OutageTracker
from engine.replicas import SESSION_HEADER, in_affinity_order, replica_urls
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

# How often (in streamed chunks) the progress callback hears about it.
PROGRESS_EVERY = 16

# (message, percentage or None)
Progress = Callable[[str, int | None], None]


@dataclass
class _Endpoint:
    backend: ChatBackend
    # Request fields this server refused (vLLM refuses `priority` without priority scheduling,
    # and a server may lack structured outputs): not sent again.
    refused: set[str]


class ActionService:
    def __init__(
        self,
        settings: Settings,
        notify: Callable[[Notice], None],
        outages: OutageTracker,
        workspace: Workspace | None = None,
        context_source: Callable[[], ContextBuilder | None] = lambda: None,
        share: Callable[[], AbstractContextManager[int]] | None = None,
    ) -> None:
        self.settings = settings
        # Team mode: this user's place at the model server (engine.scheduling.FairShare).
        self._share = share or (lambda: nullcontext(0))
        self.router = Router(settings.routing)
        self._notify = notify
        self._outages = outages
        self._workspace = workspace
        self._context_source = context_source
        self._fallback_context = ContextBuilder(workspace, TokenCounts(None))
        self._endpoints: dict[str, _Endpoint] = {}
        self._fallbacks_told: set[tuple[str, str]] = set()

    async def reconfigure(self, settings: Settings) -> None:
        self.settings = settings
        self.router = Router(settings.routing)
        await self.aclose()

    async def aclose(self) -> None:
        endpoints, self._endpoints = self._endpoints, {}
        for endpoint in endpoints.values():
            await endpoint.backend.aclose()

    # --- the actions ---------------------------------------------------------------------
    async def explain(self, request: ActionRequest, progress: Progress) -> Explanation:
        answer = await self._answer(request, self._messages(request), progress)
        return Explanation(answer.content, answer.thinking)

    async def ask(self, request: ActionRequest, progress: Progress) -> Explanation:
        if not (request.question or "").strip():
            raise ActionError("ask needs a question")
        answer = await self._answer(request, self._messages(request), progress)
        return Explanation(answer.content, answer.thinking)

    async def fix(self, request: ActionRequest, progress: Progress) -> FixOutcome:
        messages = self._messages(request)
        path = request.relative_path or (request.path.name if request.path else "")
        thinking: list[str] = []
        problem = ""
        schema = (
            fix_schema(len(request.selection)) if self.settings.actions.structured_fix else None
        )
        for attempt in (1, 2):
            answer = await self._answer(request, messages, progress, json_schema=schema)
            thinking.append(answer.thinking)
            try:
                proposal = read_proposal(answer.content)
                edit = build_edit(
                    proposal, request.text, request.start, request.end, path, request.language_id
                )
                return FixOutcome(edit, None, "\n\n".join(filter(None, thinking)), attempt)
            except FixRejected as rejected:
                problem = str(rejected)
                log.info("fix attempt %d rejected: %s", attempt, problem)
                progress(f"retrying: {problem}", None)
                messages = (
                    *messages,
                    ChatMessage("assistant", answer.content),
                    retry_message(problem),
                )
        return FixOutcome(None, problem, "\n\n".join(filter(None, thinking)), 2)

    async def find_bugs(self, request: ActionRequest, progress: Progress) -> list[Finding]:
        answer = await self._answer(
            request, self._messages(request), progress, json_schema=findings_schema()
        )
        first = 0 if request.whole_file else request.text.count("\n", 0, request.start)
        last = (
            request.text.count("\n")
            if request.whole_file
            else request.text.count("\n", 0, max(request.start, request.end - 1))
        )
        try:
            return read_findings(answer.content, first, last, request.text.count("\n") + 1)
        except FindingsRejected as error:
            raise ActionError(f"find bugs: {error}") from error

    # --- stages ----------------------------------------------------------------------------
    def _messages(self, request: ActionRequest) -> tuple[ChatMessage, ...]:
        context = self._context_source() or self._fallback_context
        as_completion = CompletionRequest(
            request.document_uri,
            request.language_id,
            request.text,
            request.start,
            relative_path=request.relative_path,
            path=request.path,
        )
        budget = self.settings.completion.prompt_token_budget
        workspace_name, entries = context.repository_context(as_completion, budget)
        return build_messages(
            request, workspace_name, entries, self.settings.actions.prompt_token_budget
        )

    async def _answer(
        self,
        request: ActionRequest,
        messages: tuple[ChatMessage, ...],
        progress: Progress,
        json_schema: dict[str, object] | None = None,
    ) -> Answer:
        selected = 0 if request.whole_file else request.selection.count("\n") + 1
        route = self.router.route(request.kind, selected)
        names = endpoints_in_order(route, self.settings)
        if len(names) == 2 and all(
            self._outages.should_skip(url) for url in replica_urls(getattr(self.settings, names[0]))
        ):
            names.reverse()  # the usual endpoint failed a moment ago: don't wait on it again
        last_error: BackendError | None = None
        for position, name in enumerate(names):
            for endpoint in in_affinity_order(getattr(self.settings, name), request.session):
                url = endpoint.base_url
                if self._outages.should_skip(url) and last_error is not None:
                    continue
                try:
                    answer = await self._stream(
                        name, endpoint, messages, progress, json_schema, request.session
                    )
                except BackendError as error:
                    self._outages.failed(error)
                    last_error = error
                    if worth_falling_back(error):
                        continue  # the next replica, then the other endpoint
                    raise ActionError(f"{request.kind.value}: {error}") from error
                self._outages.succeeded(url)
                self._fallbacks_told = {told for told in self._fallbacks_told if told[0] != name}
                return answer
            if position + 1 < len(names) and last_error is not None:
                self._tell_fallback(route, name, names[position + 1], last_error)
        if last_error is not None:
            raise ActionError(f"{request.kind.value}: {last_error}") from last_error
        raise AssertionError("unreachable")

    async def _stream(
        self,
        name: EndpointName,
        replica: EndpointConfig,
        messages: tuple[ChatMessage, ...],
        progress: Progress,
        json_schema: dict[str, object] | None,
        session: str | None,
    ) -> Answer:
        endpoint = await self._endpoint(name, replica)
        settings = self.settings.actions
        schema = json_schema if settings.structured_outputs else None
        with self._share() as queued_ahead:
            fields = vllm_request_fields(
                settings.priority, self.settings.completion.cache_salt, queued_ahead
            )
            for _ in range(3):  # each retry drops one refused field
                params = ChatParams(
                    messages=messages,
                    max_tokens=settings.max_tokens,
                    temperature=settings.temperature,
                    top_p=settings.top_p,
                    json_schema=None if "response_format" in endpoint.refused else schema,
                    extra_body={k: v for k, v in fields.items() if k not in endpoint.refused},
                    headers={SESSION_HEADER: session} if session else {},
                )
                try:
                    return await self._collect(endpoint, params, progress)
                except BackendError as error:
                    refused = [
                        f
                        for f in (*params.extra_body, "response_format")
                        if f not in endpoint.refused and error.rejects_field(f)
                    ]
                    if not refused or (
                        refused == ["response_format"] and params.json_schema is None
                    ):
                        raise
                    log.info("%s refuses %s: sending without it", endpoint.backend.url, refused)
                    endpoint.refused.update(refused)
        raise ActionError("the server refused every variant of the request")

    async def _collect(self, endpoint: _Endpoint, params: ChatParams, progress: Progress) -> Answer:
        splitter = ThinkingSplitter()
        finish: str | None = None
        usage = None
        chunks = 0
        started = time.monotonic()
        progress("waiting for the model", None)
        # aclosing: a cancelled action closes the HTTP stream, so vLLM aborts the request.
        async with contextlib.aclosing(endpoint.backend.stream(params)) as stream:
            async for delta in stream:
                splitter.feed(delta.reasoning, delta.content)
                finish = delta.finish_reason or finish
                usage = delta.usage or usage
                # A fast stream's reads complete without suspending: yield, so the editor's
                # messages (a cancel, a keystroke's completion) are not starved behind it.
                await asyncio.sleep(0)
                if delta.reasoning or delta.content:
                    chunks += 1
                    if chunks % PROGRESS_EVERY == 0:
                        phase = "thinking" if splitter.thinking_now else "answering"
                        share = min(99, chunks * 100 // max(1, params.max_tokens))
                        progress(f"{phase}… {chunks} tokens", share)
        thinking, content, closed = splitter.split()
        log.info(
            "action answer from %s in %.1f s: %d chunks, finish %s",
            endpoint.backend.url,
            time.monotonic() - started,
            chunks,
            finish,
        )
        if not closed and not content:
            cut = " (it ran out of tokens: raise actions.max_tokens)" if finish == "length" else ""
            raise ActionError(f"the model's answer ended inside its reasoning{cut}")
        if not content:
            raise ActionError("the model gave an empty answer")
        return Answer(
            content,
            thinking,
            endpoint.backend.url,
            endpoint.backend.model,
            usage.prompt_tokens if usage else None,
            usage.cached_tokens if usage else None,
        )

    async def _endpoint(self, name: EndpointName, config: EndpointConfig) -> _Endpoint:
        key = f"{name}:{config.base_url}"
        if key not in self._endpoints:
            model = config.model
            if model is None:
                info = ServerInfo(config)
                try:
                    model = await first_served_model(info)
                finally:
                    await info.aclose()
            backend = ChatBackend(config, model, timeout_s=self.settings.actions.timeout_s)
            self._endpoints[key] = _Endpoint(backend, set())
        return self._endpoints[key]

    def _tell_fallback(
        self, route: Route, failed: EndpointName, instead: EndpointName, error: BackendError
    ) -> None:
        log.warning("%s endpoint failed (%s): using %s", failed, error, instead)
        if (failed, instead) not in self._fallbacks_told:
            self._fallbacks_told.add((failed, instead))
            self._notify(
                Notice(
                    "warning",
                    f"iquest: the {failed} model ({endpoint_label(self.settings, failed)}) is "
                    f"not answering; {route.reason} uses the {instead} model meanwhile.",
                )
            )
