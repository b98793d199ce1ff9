"""Which other files' headers lead the prompt, and in what order.

Most assistants re-rank snippets per request and put them first, so the first tokens change on
most keystrokes and vLLM's prefix cache misses. Here the tier is shared by all documents of a
repository and grows append-only; it is rebuilt (the files that matter most first, the result
in path order, so it is canonical) only when one of those files is missing from it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# The files the current one imports first: a rebuild happens when one of these is missing.
MUST_HAVE = 3
# A rebuild leaves room to append files later without rebuilding again.
REBUILD_FILL = 0.8


@dataclass(frozen=True)
class ContextEntry:
    path: str
    text: str


class RepositoryTier:
    def __init__(self) -> None:
        self.paths: list[str] = []
        self.rebuilds = 0

    def entries(
        self,
        ranked: list[str],
        header: Callable[[str], str | None],
        cost: Callable[[str], int | None],
        budget: int,
    ) -> list[ContextEntry]:
        """``ranked``: files relevant to the current one, most relevant first. ``cost``: a
        header's real token count, or None while it is unknown (such a file waits: joining on
        an estimate could push it out again when the count arrives)."""
        self.paths = [p for p in self.paths if header(p)]  # files deleted meanwhile drop out
        ready = [p for p in ranked if header(p) and cost(p) is not None]
        must = [p for p in ranked[:MUST_HAVE] if p in ready]
        total = sum(cost(p) or 0 for p in self.paths)
        for path in must:  # appended when they fit: the entries before them keep their cache
            if path not in self.paths and total + (cost(path) or 0) <= budget:
                self.paths.append(path)
                total += cost(path) or 0
        if any(p not in self.paths for p in must) or total > budget:
            self._rebuild(must, ready, cost, budget)
            total = sum(cost(p) or 0 for p in self.paths)
        for path in ready:
            path_cost = cost(path) or 0
            if path not in self.paths and total + path_cost <= budget:
                self.paths.append(path)
                total += path_cost
        return [ContextEntry(p, text) for p in self.paths if (text := header(p))]

    def _rebuild(
        self, must: list[str], ready: list[str], cost: Callable[[str], int | None], budget: int
    ) -> None:
        chosen = list(must)
        total = sum(cost(p) or 0 for p in chosen)
        # Then what was there (jumping back to the previous file stays free), then the rest.
        for path in [*self.paths, *ready]:
            path_cost = cost(path) or 0
            if path not in chosen and total + path_cost <= budget * REBUILD_FILL:
                chosen.append(path)
                total += path_cost
        if sorted(chosen) != sorted(self.paths):
            self.paths = sorted(chosen)
            self.rebuilds += 1
