"""The daemon's clients to its model servers, and what each server taught it.

One cache per daemon: completions and actions, and in team mode every connection, share the
connection pools (one HTTP client per server, model and timeout), the name of the model an
unnamed endpoint serves, and the request fields each server refused."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from engine.backends.chat import ChatBackend
from engine.backends.errors import BackendError, FailureKind
from engine.backends.openai_compatible import CompletionBackend, EndpointClient
from engine.backends.vllm_extras import ServerInfo
from engine.config import EndpointConfig
from engine.endpoints.refusals import RefusedFields

log = logging.getLogger(__name__)
K = TypeVar("K")
T = TypeVar("T")

_ClientKey = tuple[type[EndpointClient], EndpointConfig, str, float]


class EndpointClients:
    def __init__(self) -> None:
        self._clients: dict[_ClientKey, EndpointClient] = {}
        self._info: dict[EndpointConfig, ServerInfo] = {}
        self._model_names: dict[EndpointConfig, asyncio.Task[str]] = {}
        self._refused: dict[str, RefusedFields] = {}
        # Each server's sequence limit as it said it (None: it doesn't say).
        self._max_num_seqs: dict[str, asyncio.Task[int | None]] = {}
        self._max_model_lens: dict[tuple[str, str], asyncio.Task[int | None]] = {}

    def completions(
        self, endpoint: EndpointConfig, model: str, timeout_s: float
    ) -> CompletionBackend:
        client = self._client(CompletionBackend, endpoint, model, timeout_s)
        assert isinstance(client, CompletionBackend)
        return client

    def chat(self, endpoint: EndpointConfig, model: str, timeout_s: float) -> ChatBackend:
        client = self._client(ChatBackend, endpoint, model, timeout_s)
        assert isinstance(client, ChatBackend)
        return client

    def info(self, endpoint: EndpointConfig) -> ServerInfo:
        """The server's parts outside the OpenAI API (model list, /tokenize, /metrics)."""
        if endpoint not in self._info:
            self._info[endpoint] = ServerInfo(endpoint)
        return self._info[endpoint]

    def refused(self, url: str) -> RefusedFields:
        return self._refused.setdefault(url, RefusedFields())

    async def max_num_seqs(self, endpoint: EndpointConfig) -> int | None:
        """The server's ``--max-num-seqs`` where it says (asked once per server; a server that
        did not answer is asked again next time)."""
        url = endpoint.base_url
        try:
            return await _asked_once(
                self._max_num_seqs, url, lambda: self.info(endpoint).max_num_seqs()
            )
        except BackendError as error:
            log.info("cannot ask %s for its sequence limit: %s", url, error)
            return None

    async def max_model_len(self, endpoint: EndpointConfig, model: str) -> int | None:
        """The context length the server allows ``model`` (vLLM's model list), asked once;
        None where it does not say or cannot be asked."""
        try:
            return await _asked_once(
                self._max_model_lens,
                (endpoint.base_url, model),
                lambda: self.info(endpoint).max_model_len(model),
            )
        except BackendError as error:
            log.info("cannot ask %s for its context length: %s", endpoint.base_url, error)
            return None

    async def model_name(self, endpoint: EndpointConfig) -> str:
        """The endpoint's configured model, else the first the server lists (asked once; a
        failure is asked again next time)."""
        if endpoint.model is not None:
            return endpoint.model
        return await _asked_once(
            self._model_names, endpoint, lambda: first_served_model(self.info(endpoint))
        )

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        infos, self._info = self._info, {}
        tasks = [*self._model_names.values(), *self._max_num_seqs.values()]
        for task in [*tasks, *self._max_model_lens.values()]:
            task.cancel()
        self._model_names, self._max_num_seqs, self._max_model_lens = {}, {}, {}
        for client in clients.values():
            await client.aclose()
        for info in infos.values():
            await info.aclose()

    def _client(
        self, kind: type[EndpointClient], endpoint: EndpointConfig, model: str, timeout_s: float
    ) -> EndpointClient:
        key = (kind, endpoint, model, timeout_s)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = kind(endpoint, model, timeout_s=timeout_s)
        return client


async def _asked_once(
    tasks: dict[K, asyncio.Task[T]], key: K, ask: Callable[[], Coroutine[Any, Any, T]]
) -> T:
    """One question to a server, shared by everyone who asks meanwhile and remembered; one
    that failed or was cancelled is asked again by the next caller."""
    task = tasks.get(key)
    if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
        task = asyncio.create_task(ask())
        # A failure is reported by the request that awaits it; don't warn it was unseen.
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        tasks[key] = task
    # shield: one cancelled request must not cancel the question for the others.
    return await asyncio.shield(task)


async def first_served_model(info: ServerInfo) -> str:
    """The first model the server lists (the model an unnamed endpoint means)."""
    models = await info.served_models()
    if not models:
        raise BackendError(info.base_url, FailureKind.MALFORMED, "the server lists no models")
    return models[0]
