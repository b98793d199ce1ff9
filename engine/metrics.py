"""Counters a client or a test can read (``iquest/stats``)."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields

from engine.config import MAX_CANDIDATES


class RecentSamples:
    """The latest ``size`` samples in a flat array of doubles: 8 bytes each where a deque of
    floats takes 32. A team daemon keeps two per connection; with a hundred editors the
    deques filled to 6 MB over a quarter of an hour, which read as a memory leak."""

    def __init__(self, size: int = 1000) -> None:
        self._values = array("d")
        self._size = size
        self._next = 0  # where the next sample goes once the array is full

    def append(self, value: float) -> None:
        if len(self._values) < self._size:
            self._values.append(value)
        else:
            self._values[self._next] = value
            self._next = (self._next + 1) % self._size

    def __len__(self) -> int:
        return len(self._values)

    def __iter__(self) -> Iterator[float]:
        """Oldest first."""
        yield from self._values[self._next :]
        yield from self._values[: self._next]

    def newest(self, count: int) -> list[float]:
        """The last ``count`` samples (fewer if there are fewer), newest first."""
        total = len(self._values)
        count = min(count, total)
        if count <= 0:
            return []
        after_newest = self._next if total == self._size else total
        return [self._values[(after_newest - 1 - i) % total] for i in range(count)]


@dataclass
class CompletionStats:
    requests: int = 0
    backend_requests: int = 0
    served_from_memory: int = 0
    # Answered from a request still streaming that the typing continued (no new request).
    continued_streaming: int = 0
    superseded: int = 0
    cancelled: int = 0
    failures: int = 0
    empty: int = 0
    suggestions: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = 0
    last_latency_ms: float | None = None
    # What the user took: whole suggestions, and partial takes (next word or line).
    accepted: int = 0
    partially_accepted: int = 0
    accepted_chars: int = 0
    # Whole accepts by the candidate's place in the list (0: the first shown).
    accepted_by_index: list[int] = field(default_factory=lambda: [0] * MAX_CANDIDATES)
    # The daemon's own time per backend request: from the editor's request to the HTTP request
    # leaving, less the configured debounce (context, prompt, token budget, and any wait for a
    # busy event loop beyond the debounce). The latest 1,000.
    overheads_ms: RecentSamples = field(default_factory=RecentSamples)
    # End-to-end latency of the suggestions shown. The latest 1,000.
    latencies_ms: RecentSamples = field(default_factory=RecentSamples)

    # --- what the stage runner records, one call per event ------------------------------
    def request_sent(self, overhead_ms: float) -> None:
        self.backend_requests += 1
        self.overheads_ms.append(overhead_ms)

    def tokens_used(self, prompt_tokens: int, cached_tokens: int | None) -> None:
        self.prompt_tokens += prompt_tokens
        self.cached_tokens += cached_tokens or 0

    def answered(self, latency_ms: float, shown: bool) -> None:
        """A model answer came back after ``latency_ms``; ``shown``: it held a suggestion."""
        self.last_latency_ms = latency_ms
        self.latencies_ms.append(latency_ms)
        if shown:
            self.suggestions += 1

    def as_dict(self) -> dict[str, object]:
        values: dict[str, object] = {
            f.name: list(value) if isinstance(value, list) else value
            for f in fields(self)
            if not isinstance(value := getattr(self, f.name), RecentSamples)
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
