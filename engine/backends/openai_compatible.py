"""Streaming ``/v1/completions`` through the ``openai`` package's async client."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import openai
from openai import AsyncAPIResponse

from engine.backends.errors import BackendError, FailureKind
from engine.config import EndpointConfig

log = logging.getLogger(__name__)

# vLLM refuses more stop strings than VLLM_MAX_STOP_STRINGS (4 by default) with HTTP 400. The
# first few go to the server; the post-processing stage applies all of them to the stream.
SERVER_STOP_LIMIT = 4


# continuous_usage_stats (vLLM's own): every chunk says the prompt's size, so a stream the
# daemon closes at the end of a line (most single-line suggestions end before vLLM's final
# usage chunk) still counts its prompt tokens. (Typed loosely: the OpenAI type lacks it.)
STREAM_OPTIONS: Any = {"include_usage": True, "continuous_usage_stats": True}


@dataclass(frozen=True)
class GenerationParams:
    prompt: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: tuple[str, ...] = ()
    # vLLM-only fields (priority, cache_salt, ...); sent only when the server accepts them.
    extra_body: dict[str, object] = field(default_factory=dict)
    # HTTP headers for routers in front of vLLM (X-Session-ID).
    headers: dict[str, str] = field(default_factory=dict)
    # How many completions of the one prompt (vLLM computes the prompt once for all).
    n: int = 1


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    # vLLM reports None instead of 0 on some versions, and nothing without
    # --enable-prompt-tokens-details.
    cached_tokens: int | None


@dataclass(frozen=True)
class StreamChunk:
    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    # Which of the request's n completions this text continues.
    index: int = 0


class EndpointClient:
    """The ``openai`` async client for one endpoint and model (no retries: a failure is
    reported at once, and the outage tracker decides when to try again)."""

    def __init__(self, endpoint: EndpointConfig, model: str, timeout_s: float) -> None:
        self.url = endpoint.base_url
        self.model = model
        timeout = openai.Timeout(timeout_s, connect=endpoint.connect_timeout_s)
        self._client = openai.AsyncOpenAI(
            base_url=endpoint.base_url,
            api_key=endpoint.api_key(),
            timeout=timeout,
            max_retries=0,
            # openai's aiohttp transport: its default (httpx over anyio) spent three fifths of
            # the team daemon's CPU reading streams with a hundred editors typing. The pool
            # limits are the client's defaults (its aiohttp client's own would be 100).
            http_client=openai.DefaultAioHttpClient(
                timeout=timeout, limits=openai.DEFAULT_CONNECTION_LIMITS
            ),
        )

    async def aclose(self) -> None:
        await self._client.close()


class CompletionBackend(EndpointClient):
    """One endpoint's completions API. Closing the stream early makes vLLM abort the request."""

    async def stream(self, params: GenerationParams) -> AsyncGenerator[StreamChunk, None]:
        # The raw event stream through the client (its HTTP pool, auth, timeouts and errors),
        # read with json.loads: building the client's models for every chunk cost a fifth of
        # the daemon's CPU with a hundred editors typing.
        request = self._client.completions.with_streaming_response.create(
            model=self.model,
            prompt=params.prompt,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            top_p=params.top_p,
            stop=list(params.stop[:SERVER_STOP_LIMIT]) or None,
            stream=True,
            stream_options=STREAM_OPTIONS,
            extra_body=params.extra_body or None,
            extra_headers=params.headers or None,
            n=params.n,
        )
        async for chunk in stream_events(self.url, request):
            for parsed in self._parse_chunk(chunk, params.n):
                yield parsed

    def _parse_chunk(self, chunk: dict[str, Any], n: int) -> list[StreamChunk]:
        choices = chunk.get("choices")
        usage = parse_usage(chunk.get("usage"))
        if not isinstance(choices, list):
            raise BackendError(self.url, FailureKind.MALFORMED, "stream chunk without 'choices'")
        if not choices:
            return [StreamChunk(usage=usage)]
        parsed = []
        for choice in choices:
            choice = choice if isinstance(choice, dict) else {}
            text = choice.get("text")
            if not isinstance(text, str):
                raise BackendError(self.url, FailureKind.MALFORMED, "stream chunk without 'text'")
            index = choice.get("index", 0)
            if not isinstance(index, int) or not 0 <= index < n:
                raise BackendError(
                    self.url, FailureKind.MALFORMED, f"stream chunk for choice {index!r} of {n}"
                )
            finish = choice.get("finish_reason")
            parsed.append(
                StreamChunk(
                    text=text,
                    finish_reason=finish if isinstance(finish, str) else None,
                    usage=usage,
                    index=index,
                )
            )
        return parsed


async def stream_events(
    url: str, request: AbstractAsyncContextManager[AsyncAPIResponse[Any]]
) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON objects of a streamed response, read raw through the client (its HTTP pool,
    auth, timeouts and errors) with json.loads: building the client's models for every chunk
    cost a fifth of the daemon's CPU with a hundred editors typing, and 0.2 ms a token of an
    action's stream (a busy event loop slowed the completions beside it)."""
    try:
        async with request as response:
            done = False
            async for line in response.iter_lines():
                # Read on past [DONE] to the end of the body (the chunked encoding's last few
                # bytes): a response left unfinished closes its connection, and a new one per
                # request cost the team daemon two syscall-heavy connects each.
                if done or not line.startswith("data:"):
                    continue  # blank separators, comments, event names
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    continue
                try:
                    chunk = json.loads(data)
                except ValueError as exc:
                    detail = f"not JSON: {_short(data)}"
                    raise BackendError(url, FailureKind.MALFORMED, detail) from exc
                if not isinstance(chunk, dict):
                    raise BackendError(url, FailureKind.MALFORMED, "stream chunk is not an object")
                if isinstance(chunk.get("error"), dict):
                    message = _short(str(chunk["error"].get("message", "an error")))
                    raise BackendError(
                        url, FailureKind.MALFORMED, f"the server reported: {message}"
                    )
                yield chunk
    except BackendError:
        raise
    except Exception as exc:
        raise translate_error(url, exc) from exc


# A stream that ended before its end, as aiohttp's transport and as httpx name it.
_CUT_STREAM = (
    "ClientPayloadError",
    "ServerDisconnectedError",
    "TransferEncodingError",
    "RemoteProtocolError",
    "ReadError",
)


def translate_error(url: str, exc: Exception) -> BackendError:
    """A client exception as a BackendError that says, in words, what went wrong."""
    # The aiohttp transport maps every aiohttp connection error to httpx's ConnectTimeout: the
    # aiohttp exception underneath says what happened.
    refused = _find_in_chain(exc, ("ClientConnectorError", "ClientConnectorDNSError"))
    if refused is not None:
        return BackendError(url, FailureKind.UNREACHABLE, _short(str(refused)))
    cut = _find_in_chain(exc, _CUT_STREAM)
    if cut is not None:
        return BackendError(url, FailureKind.MALFORMED, f"the stream was cut: {_short(str(cut))}")
    if isinstance(exc, openai.APITimeoutError):
        return BackendError(url, FailureKind.TIMEOUT, "no answer in time")
    if isinstance(exc, openai.APIConnectionError):
        cause = _find_in_chain(exc, ("ConnectError", "ConnectTimeout")) or exc
        return BackendError(url, FailureKind.UNREACHABLE, _short(str(cause)))
    if isinstance(exc, openai.APIStatusError):
        return BackendError(
            url,
            FailureKind.HTTP_STATUS,
            f"HTTP {exc.status_code}: {_short(exc.message)}",
            status=exc.status_code,
        )
    if isinstance(exc, json.JSONDecodeError | openai.APIResponseValidationError):
        return BackendError(url, FailureKind.MALFORMED, f"not JSON: {_short(str(exc))}")
    if isinstance(exc, openai.APIError):
        return BackendError(url, FailureKind.MALFORMED, _short(exc.message))
    return BackendError(url, FailureKind.MALFORMED, f"{type(exc).__name__}: {_short(str(exc))}")


def parse_usage(raw: object) -> Usage | None:
    """From the client's model or a plain dict (the raw completion stream)."""
    if raw is None:
        return None
    details = _field(raw, "prompt_tokens_details")
    cached = _field(details, "cached_tokens") if details is not None else None
    return Usage(
        prompt_tokens=int(_field(raw, "prompt_tokens") or 0),
        completion_tokens=int(_field(raw, "completion_tokens") or 0),
        cached_tokens=int(cached) if isinstance(cached, int) else None,
    )


def _field(value: object, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _find_in_chain(exc: BaseException, names: tuple[str, ...]) -> BaseException | None:
    """The first of ``exc``, its causes and contexts whose class is named in ``names``.

    By name, because openai 3 raises from its own vendored copy of httpx (``httpx2``)."""
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in names:
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
