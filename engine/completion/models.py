"""What discovery learns about a served model, cached by endpoint.

One directory per daemon: in team mode every connection's completion service uses the same
one, so they share HTTP connection pools, the template check and the token-count cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

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
        model = endpoint.model or await first_served_model(info)
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
    local = await _local_tokenizer(info, model) if count_tokens is not None else None
    counts = TokenCounts(count_tokens, local=local)
    return DiscoveredModel(model, choice, repo_headers, backend, info, counts)


async def _local_tokenizer(info: ServerInfo, model: str) -> Callable[[str], int] | None:
    """The served tokenizer, when the server loaded the model from a folder this machine can
    read too (the daemon beside vLLM, as in team mode), checked against /tokenize; else None.
    Never fetched from anywhere: a hub id or a missing folder means None."""
    try:
        root = await info.model_root(model)
    except BackendError:
        return None
    path = Path(root) / "tokenizer.json" if root else None
    if path is None or not path.is_file():
        return None
    try:
        from tokenizers import Tokenizer

        tokenizer = await asyncio.to_thread(Tokenizer.from_file, str(path))
    except Exception as error:  # an unreadable file: /tokenize stays in use
        log.info("cannot load the tokenizer at %s: %s", path, error)
        return None

    def count(text: str) -> int:
        return len(tokenizer.encode(text, add_special_tokens=False).ids)

    probe = "def probe(x):\n    return x  # ünïcode ✓\n"
    if count(probe) != await info.token_count(model, probe):
        log.info("the tokenizer at %s counts differently from the server: not used", path)
        return None
    log.info("counting tokens locally with %s", path)
    return count


async def first_served_model(info: ServerInfo) -> str:
    """The first model the server lists (the model an unnamed endpoint means)."""
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
