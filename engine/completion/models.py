"""What discovery learns about a served model, cached by endpoint.

One directory per daemon: in team mode every connection's completion service uses the same
one, so they share HTTP connection pools, the template check and the token-count cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from engine.backends.errors import BackendError, FailureKind
from engine.backends.openai_compatible import CompletionBackend
from engine.backends.vllm_extras import ServerInfo
from engine.completion.context import TokenCounts
from engine.completion.templating.selection import (
    TemplateChoice,
    choose_template,
    repo_markers_usable,
)
from engine.config import EndpointConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DiscoveredModel:
    name: str
    choice: TemplateChoice
    repo_headers: bool
    backend: CompletionBackend
    info: ServerInfo
    counts: TokenCounts


_Key = tuple[EndpointConfig, str, float]


class ModelDirectory:
    def __init__(self) -> None:
        self._entries: dict[_Key, asyncio.Task[DiscoveredModel]] = {}

    async def get(
        self, endpoint: EndpointConfig, template: str, timeout_s: float
    ) -> DiscoveredModel:
        key = (endpoint, template, timeout_s)
        task = self._entries.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.create_task(_discover(endpoint, template, timeout_s))
            # A failure is reported by the request that awaits it; don't warn it was unseen.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._entries[key] = task
        # shield: one cancelled keystroke must not kill discovery for the others.
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        entries, self._entries = self._entries, {}
        for task in entries.values():
            if not task.done():
                task.cancel()
                continue
            if not task.cancelled() and task.exception() is None:
                found = task.result()
                await found.backend.aclose()
                await found.info.aclose()


async def _discover(endpoint: EndpointConfig, template: str, timeout_s: float) -> DiscoveredModel:
    info = ServerInfo(endpoint)
    try:
        model = endpoint.model or await _first_served_model(info)
        count_tokens = await _token_counter(info, model)
        choice = await choose_template(model, template, count_tokens)
        repo_headers = await repo_markers_usable(choice.template, count_tokens)
    except BaseException:
        await info.aclose()
        raise
    log.info(
        "model %s at %s: template %s (%s)",
        model,
        endpoint.base_url,
        choice.template.name,
        choice.reason,
    )
    backend = CompletionBackend(endpoint, model, timeout_s=timeout_s)
    return DiscoveredModel(model, choice, repo_headers, backend, info, TokenCounts(count_tokens))


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
