"""Counters a client or a test can read (``iquest/stats``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class CompletionStats:
    requests: int = 0
    backend_requests: int = 0
    served_from_memory: int = 0
    superseded: int = 0
    cancelled: int = 0
    failures: int = 0
    empty: int = 0
    suggestions: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    last_latency_ms: float | None = None

    def as_dict(self) -> dict[str, object]:
        return asdict(self)
