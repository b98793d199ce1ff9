"""Which other files' headers lead the prompt, and in what order.

Most assistants re-rank snippets per request and put them first, so the first tokens change on
most keystrokes and vLLM's prefix cache misses. Here the tier is shared by all documents of a
repository and grows append-only; it is rebuilt (in path order, so the result is canonical)
only when the files that matter most no longer fit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from engine.completion.context.tokens import TokenCounts

# Rebuild when one of this many top-ranked files is missing and cannot be appended.
MUST_HAVE = 3
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
        counts: TokenCounts,
        budget: int,
    ) -> list[ContextEntry]:
        """``ranked``: the files relevant to the current one, most relevant first."""
        self.paths = [p for p in self.paths if header(p)]  # files deleted meanwhile drop out
        present = set(self.paths)
        cost = sum(counts.count(header(p) or "") for p in self.paths)
        for path in ranked:
            text = header(path)
            if path in present or not text:
                continue
            tokens = counts.count(text)
            if cost + tokens <= budget:
                self.paths.append(path)
                present.add(path)
                cost += tokens
        missing = [p for p in ranked[:MUST_HAVE] if p not in present and header(p)]
        if missing or cost > budget:
            self._rebuild(ranked, header, counts, budget)
        return [ContextEntry(p, text) for p in self.paths if (text := header(p))]

    def _rebuild(
        self,
        ranked: list[str],
        header: Callable[[str], str | None],
        counts: TokenCounts,
        budget: int,
    ) -> None:
        chosen, cost = [], 0
        for path in ranked:
            text = header(path)
            if not text:
                continue
            tokens = counts.count(text)
            if cost + tokens <= budget * REBUILD_FILL:
                chosen.append(path)
                cost += tokens
        self.paths = sorted(chosen)
        self.rebuilds += 1
