"""Counters a client or a test can read (``iquest/stats``)."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, fields


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
    # The daemon's own time per backend request, from the editor's request (less the debounce
    # wait) to the HTTP request leaving: context, prompt, token budget. The latest 1,000.
    overheads_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))
    # End-to-end latency of the suggestions shown. The latest 1,000.
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def as_dict(self) -> dict[str, object]:
        values: dict[str, object] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if not isinstance(getattr(self, f.name), deque)
        }
        values["overhead_ms_p50"] = percentile(self.overheads_ms, 0.50)
        values["overhead_ms_p95"] = percentile(self.overheads_ms, 0.95)
        values["overheads_ms"] = list(self.overheads_ms)
        return values


def percentile(samples: Iterable[float], share: float) -> float | None:
    """The sample at ``share`` of the sorted samples (nearest rank), or None when empty."""
    samples = list(samples)
    if not samples:
        return None
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
