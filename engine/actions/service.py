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

from engine.actions.findings import FindingsRejected, findings_schema, read_findings
from engine.actions.fix import FixRejected, build_edit, fix_schema, read_proposal
from engine.actions.prompting import CHARS_PER_TOKEN, build_messages, retry_message
from engine.actions.thinking import ThinkingSplitter
from engine.actions.types import (
    ActionError,
    ActionKind,
    ActionRequest,
    Answer,
    Explanation,
    Finding,
    FixOutcome,
)
from engine.backends.chat import ChatBackend, ChatMessage, ChatParams
from engine.backends.errors import BackendError
from engine.backends.vllm_extras import vllm_request_fields
from engine.config import Settings
from engine.definitions import FileAt, RepositoryContext, TokenCounts
from engine.definitions.repository import REPOSITORY_SHARE
from engine.endpoints import (
    Endpoints,
    NoEndpointAnswered,
    Replica,
    routing_headers,
    send_without_refused,
)

log = logging.getLogger(__name__)

# How often (in streamed chunks) the progress callback hears about it.
PROGRESS_EVERY = 16

# (message, percentage or None)
Progress = Callable[[str, int | None], None]
# An action's messages for a budget of the file's lines (tokens), with or without the
# repository's definitions.
Prompt = Callable[[int, bool], tuple[ChatMessage, ...]]

# What a prompt is measured by before it is sent: fewer characters a token than the prompts'
# own estimate (code with short tokens must not overflow the context), and per message the
# chat template's markers.
FIT_CHARS_PER_TOKEN = 2.5
TOKENS_PER_MESSAGE = 8
# The least a prompt keeps when max_tokens would take the whole context.
MIN_PROMPT_TOKENS = 1024


class ActionService:
    def __init__(
        self,
        settings: Callable[[], Settings],
        endpoints: Endpoints,
        repository: RepositoryContext,
        counts: Callable[[], TokenCounts] = lambda: TokenCounts(None),
        share: Callable[[], AbstractContextManager[int]] | None = None,
        user: str = "local",
    ) -> None:
        # Read from the connection's assistant (engine.assistant), which owns them.
        self._settings = settings
        self.endpoints = endpoints
        # Whose turn it is in the action queue (engine.endpoints.action_slots).
        self.user = user
        self.repository = repository
        # The completion model's token counts: the tier is sized as the completions size it.
        self._counts = counts
        # Team mode: this user's place at the model server (engine.team.fair_share).
        self._share = share or (lambda: nullcontext(0))

    @property
    def settings(self) -> Settings:
        return self._settings()

    # --- the actions ---------------------------------------------------------------------
    async def explain(self, request: ActionRequest, progress: Progress) -> Explanation:
        answer = await self._answer(request, self._prompt(request), progress)
        return Explanation(answer.content, answer.thinking)

    async def ask(self, request: ActionRequest, progress: Progress) -> Explanation:
        if not (request.question or "").strip():
            raise ActionError("ask needs a question")
        answer = await self._answer(request, self._prompt(request), progress)
        return Explanation(answer.content, answer.thinking)

    async def fix(self, request: ActionRequest, progress: Progress) -> FixOutcome:
        prompt = self._prompt(request)
        follow_up: tuple[ChatMessage, ...] = ()
        path = request.relative_path or (request.path.name if request.path else "")
        thinking: list[str] = []
        problem = ""
        schema = (
            fix_schema(len(request.selection)) if self.settings.actions.structured_fix else None
        )
        for attempt in (1, 2):
            answer = await self._answer(
                request, prompt, progress, json_schema=schema, follow_up=follow_up
            )
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
                follow_up = (
                    *follow_up,
                    ChatMessage("assistant", answer.content),
                    retry_message(problem),
                )
        return FixOutcome(None, problem, "\n\n".join(filter(None, thinking)), 2)

    async def find_bugs(self, request: ActionRequest, progress: Progress) -> list[Finding]:
        answer = await self._answer(
            request, self._prompt(request), progress, json_schema=findings_schema()
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
    def _prompt(self, request: ActionRequest) -> Prompt:
        """The action's messages for a budget of the file's lines, with or without the
        repository's definitions (fitted to the server in :meth:`_answer`)."""
        check_sizes(request, self.settings.actions.prompt_token_budget)
        file = FileAt(request.place, request.text, request.start)
        completion = self.settings.completion
        workspace_name, entries = self.repository.entries(
            file,
            int(completion.prompt_token_budget * REPOSITORY_SHARE),
            self._counts(),
            completion.layout,
        )

        def build(budget_tokens: int, with_repository: bool) -> tuple[ChatMessage, ...]:
            shown = entries if with_repository else ()
            return build_messages(request, workspace_name, shown, budget_tokens)

        return build

    async def _answer(
        self,
        request: ActionRequest,
        prompt: Prompt,
        progress: Progress,
        json_schema: dict[str, object] | None = None,
        follow_up: tuple[ChatMessage, ...] = (),
    ) -> Answer:
        selected = 0 if request.whole_file else request.selection.count("\n") + 1
        route = self.endpoints.route(request.kind.value, selected)

        async def attempt(replica: Replica) -> Answer:
            clients = self.endpoints.clients
            model = await clients.model_name(replica.config)
            context = await clients.max_model_len(replica.config, model)
            max_tokens, allowed = answer_room(self.settings.actions.max_tokens, context)
            messages = fit(prompt, follow_up, self.settings.actions.prompt_token_budget, allowed)
            return await self._stream(
                replica,
                messages,
                max_tokens,
                progress,
                json_schema,
                routing_headers(request.session, request.user_key),
            )

        try:
            return await self.endpoints.call(route, request.session, attempt, try_paused=True)
        except (BackendError, NoEndpointAnswered) as error:
            raise ActionError(f"{request.kind.value}: {error}") from error

    async def _stream(
        self,
        replica: Replica,
        messages: tuple[ChatMessage, ...],
        max_tokens: int,
        progress: Progress,
        json_schema: dict[str, object] | None,
        headers: dict[str, str],
    ) -> Answer:
        settings = self.settings.actions
        clients = self.endpoints.clients
        model = await clients.model_name(replica.config)
        backend = clients.chat(replica.config, model, settings.timeout_s)
        schema = json_schema if settings.structured_outputs else None

        async def send(fields: dict[str, object]) -> Answer:
            fields = dict(fields)  # the caller reads what was sent if it is refused
            response_format = fields.pop("response_format", None)
            params = ChatParams(
                messages=messages,
                max_tokens=max_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                json_schema=response_format if isinstance(response_format, dict) else None,
                extra_body=fields,
                headers=headers,
            )
            return await self._collect(backend, params, progress)

        def queued(ahead: int) -> None:
            progress(f"queued, {ahead} ahead" if ahead else "queued, next", None)

        budget = await self.endpoints.action_budget(replica)
        async with self.endpoints.action_slots.hold(replica.url, budget, self.user, queued):
            with self._share() as queued_ahead:
                fields = vllm_request_fields(
                    settings.priority, self.settings.completion.cache_salt, queued_ahead
                )
                if schema is not None:
                    fields["response_format"] = schema
                return await send_without_refused(clients.refused(replica.url), fields, send)

    async def _collect(
        self, backend: ChatBackend, params: ChatParams, progress: Progress
    ) -> Answer:
        splitter = ThinkingSplitter()
        finish: str | None = None
        usage = None
        chunks = 0
        started = time.monotonic()
        progress("waiting for the model", None)
        # aclosing: a cancelled action closes the HTTP stream, so vLLM aborts the request.
        async with contextlib.aclosing(backend.stream(params)) as stream:
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
            backend.url,
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
            backend.url,
            backend.model,
            usage.prompt_tokens if usage else None,
            usage.cached_tokens if usage else None,
        )


def check_sizes(request: ActionRequest, budget_tokens: int) -> None:
    """What the client sent must fit the action's prompt budget: a question (or a fix's
    problem) may take a quarter of it, the selection (sent whole: a fix rewrites it) all of it.
    Anything bigger is refused here, with what to do, instead of becoming megabytes sent to
    vLLM (each fix attempt sends it again)."""
    budget_chars = int(budget_tokens * CHARS_PER_TOKEN)
    question = request.question or ""
    if len(question) > budget_chars // 4:
        what = "question" if request.kind is ActionKind.ASK else "problem description"
        raise ActionError(
            f"the {what} is {len(question):,} characters; at most {budget_chars // 4:,} "
            "fit the action's prompt (actions.prompt_token_budget): shorten it"
        )
    if not request.whole_file and len(request.selection) > budget_chars:
        raise ActionError(
            f"the selection is {len(request.selection):,} characters; at most "
            f"{budget_chars:,} fit one action (actions.prompt_token_budget): select less"
        )


def answer_room(max_tokens: int, context: int | None) -> tuple[int, int | None]:
    """The answer's max_tokens and the prompt's room within a server's ``context`` (None:
    unknown, not limited here). A max_tokens that would leave the prompt less than
    MIN_PROMPT_TOKENS is lowered."""
    if context is None:
        return max_tokens, None
    max_tokens = max(1, min(max_tokens, context - MIN_PROMPT_TOKENS))
    return max_tokens, max(1, context - max_tokens - 2 * TOKENS_PER_MESSAGE)


def estimated_tokens(messages: tuple[ChatMessage, ...]) -> int:
    return sum(int(len(m.content) / FIT_CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE for m in messages)


def fit(
    prompt: Prompt, follow_up: tuple[ChatMessage, ...], budget: int, allowed: int | None
) -> tuple[ChatMessage, ...]:
    """The prompt within ``allowed`` tokens, trimming the least relevant first: the
    repository's definitions, then the file's lines farthest from the selection (the
    selection itself always stays)."""
    with_repository = True
    messages = (*prompt(budget, with_repository), *follow_up)
    for _ in range(8):
        size = estimated_tokens(messages)
        if allowed is None or size <= allowed:
            break
        if with_repository:
            with_repository = False
        else:
            budget = max(64, int(budget * allowed / size) - 32)
        messages = (*prompt(budget, with_repository), *follow_up)
    return messages
