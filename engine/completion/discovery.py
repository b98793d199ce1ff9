"""What discovery learns about the model a completion endpoint serves, cached by endpoint.

One directory per daemon: in team mode every connection's completion service uses the same
one, so they share the template check and the token-count cache (and, through
``EndpointClients``, the connection pools)."""

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
from engine.completion.templating.templates import FimTemplate
from engine.config import EndpointConfig
from engine.endpoints.clients import EndpointClients

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    """The model behind one completion endpoint: its name, FIM template and token counts."""

    name: str
    choice: TemplateChoice
    repo_headers: bool
    backend: CompletionBackend
    counts: TokenCounts

    @property
    def template(self) -> FimTemplate:
        return self.choice.template


_Key = tuple[EndpointConfig, str, float]


class ModelDirectory:
    def __init__(self, clients: EndpointClients) -> None:
        self.clients = clients
        self._entries: dict[_Key, asyncio.Task[ServedModel]] = {}

    async def get(self, endpoint: EndpointConfig, template: str, timeout_s: float) -> ServedModel:
        key = (endpoint, template, timeout_s)
        task = self._entries.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            task = asyncio.create_task(self._discover(endpoint, template, timeout_s))
            # A failure is reported by the request that awaits it; don't warn it was unseen.
            task.add_done_callback(lambda t: t.cancelled() or t.exception())
            self._entries[key] = task
        # shield: one cancelled keystroke must not kill discovery for the others.
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        """Stops discoveries under way (the clients are closed by their owner)."""
        entries, self._entries = self._entries, {}
        for task in entries.values():
            task.cancel()

    async def _discover(
        self, endpoint: EndpointConfig, template: str, timeout_s: float
    ) -> ServedModel:
        info = self.clients.info(endpoint)
        model = await self.clients.model_name(endpoint)
        count_tokens = await _token_counter(info, model)
        choice = await choose_template(model, template, count_tokens)
        repo_headers = await repo_markers_usable(choice.template, count_tokens)
        log.info(
            "model %s at %s: template %s (%s)",
            model,
            endpoint.base_url,
            choice.template.name,
            choice.reason,
        )
        backend = self.clients.completions(endpoint, model, timeout_s)
        local = await _local_tokenizer(info, model) if count_tokens is not None else None
        counts = TokenCounts(count_tokens, local=local)
        return ServedModel(model, choice, repo_headers, backend, counts)


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
