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
            # A header joins once its real count is known: an estimate could let it in now and
            # push it out again when the count arrives, changing the prompt's start twice.
            tokens = counts.known(text)
            if tokens is not None and cost + tokens <= budget:
                self.paths.append(path)
                present.add(path)
                cost += tokens
        missing = [p for p in ranked[:MUST_HAVE]
                   if p not in present and counts.known(header(p) or "") is not None]
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
            tokens = counts.known(text) if text else None
            if tokens is None:
                continue
            if cost + tokens <= budget * REBUILD_FILL:
                chosen.append(path)
                cost += tokens
        if sorted(chosen) != sorted(self.paths):
            # Only a different set costs the cache; the same set keeps its order.
            self.paths = sorted(chosen)
            self.rebuilds += 1
