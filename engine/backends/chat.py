"""Streaming ``/v1/chat/completions`` through the ``openai`` package's async client (its raw
event stream: see ``stream_events``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from typing import Any

from engine.backends.errors import BackendError, FailureKind
from engine.backends.openai_compatible import (
    EndpointClient,
    Usage,
    parse_usage,
    stream_events,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChatMessage:
    role: str
    content: str


@dataclass(frozen=True)
class ChatParams:
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    temperature: float
    top_p: float
    # A JSON schema the answer must follow (vLLM structured outputs), when asked for.
    json_schema: dict[str, object] | None = None
    extra_body: dict[str, object] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatDelta:
    # vLLM's reasoning parser puts the thinking in its own field (`reasoning`, formerly
    # `reasoning_content`); without a parser it stays inside `content` as <think>…</think>.
    reasoning: str = ""
    content: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


class ChatBackend(EndpointClient):
    """One endpoint's chat API. Closing the stream early makes vLLM abort the request."""

    async def stream(self, params: ChatParams) -> AsyncGenerator[ChatDelta, None]:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in params.messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "stream": True,
            "stream_options": {"include_usage": True},
            "extra_body": params.extra_body or None,
            "extra_headers": params.headers or None,
        }
        if params.json_schema is not None:
            request["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": params.json_schema},
            }
        raw = self._client.chat.completions.with_streaming_response.create(**request)
        async for chunk in stream_events(self.url, raw):
            yield self._parse_chunk(chunk)

    def _parse_chunk(self, chunk: dict[str, Any]) -> ChatDelta:
        choices = chunk.get("choices")
        usage = parse_usage(chunk.get("usage"))
        if not isinstance(choices, list):
            raise BackendError(self.url, FailureKind.MALFORMED, "stream chunk without 'choices'")
        if not choices:
            return ChatDelta(usage=usage)
        first = choices[0] if isinstance(choices[0], dict) else {}
        delta = first.get("delta")
        if not isinstance(delta, dict):
            raise BackendError(self.url, FailureKind.MALFORMED, "stream chunk without 'delta'")
        reasoning = delta.get("reasoning") or delta.get("reasoning_content")
        content = delta.get("content")
        if not isinstance(reasoning, str | None) or not isinstance(content, str | None):
            raise BackendError(self.url, FailureKind.MALFORMED, "stream chunk with non-text delta")
        finish = first.get("finish_reason")
        return ChatDelta(
            reasoning=reasoning or "",
            content=content or "",
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage,
        )
