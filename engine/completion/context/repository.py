"""The repository tier: which other files' declarations lead the prompt, and in what order.

Most assistants re-rank snippets per request and put them first, so the first tokens change on
most keystrokes and vLLM's prefix cache misses. Here the tier is shared by all documents of a
repository and grows append-only: a snippet, once in, keeps its place, and new ones (a name the
user just started to use) go at the end. It is rebuilt only when the snippets the current file
needs most are missing and no longer fit; the rebuild puts those first, in the file's order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# The top of the ranking that must be in the tier: a rebuild happens when one of these is
# missing and cannot be appended.
MUST_SHARE = 0.5
# Snippets beyond the must-haves fill the tier to this share, leaving room to append the next
# must-have without a rebuild.
FILL_SHARE = 0.95
# What a rebuild keeps of the previous tier, at most (the rest of the room is for appends).
REBUILD_FILL = 0.75


@dataclass(frozen=True)
class ContextEntry:
    path: str
    text: str


@dataclass(frozen=True)
class Snippet:
    """A candidate for the tier: a declaration (``key`` "path#Name:line") or a file summary
    (``key`` the path)."""

    key: str
    path: str
    text: str


class RepositoryTier:
    def __init__(self) -> None:
        self.items: list[Snippet] = []
        self.rebuilds = 0

    def entries(
        self,
        ranked: list[Snippet],
        cost: Callable[[Snippet], int],
        budget: int,
        alive: Callable[[str], bool] = lambda path: True,
    ) -> list[ContextEntry]:
        """``ranked``: snippets the current file needs, most needed first. ``cost``: a
        snippet's tokens (an upper bound until the real count is known)."""
        fresh = {s.key: s for s in ranked}
        # A snippet keeps its place; its text follows saved edits; deleted files drop out.
        self.items = [fresh.get(item.key, item) for item in self.items if alive(item.path)]
        present = {item.key for item in self.items}
        total = sum(cost(item) for item in self.items)

        must: list[Snippet] = []
        must_total = 0
        for snippet in ranked:
            snippet_cost = cost(snippet)
            if must_total + snippet_cost > budget * MUST_SHARE:
                break
            must.append(snippet)
            must_total += snippet_cost

        for snippet in must:
            if snippet.key not in present and total + cost(snippet) <= budget:
                self.items.append(snippet)
                present.add(snippet.key)
                total += cost(snippet)
        if total > budget or any(s.key not in present for s in must):
            self._rebuild(must, cost, budget)
            present = {item.key for item in self.items}
            total = sum(cost(item) for item in self.items)
        for snippet in ranked:
            snippet_cost = cost(snippet)
            if snippet.key not in present and total + snippet_cost <= budget * FILL_SHARE:
                self.items.append(snippet)
                present.add(snippet.key)
                total += snippet_cost
        return _entries(self.items)

    def _rebuild(self, must: list[Snippet], cost: Callable[[Snippet], int], budget: int) -> None:
        chosen = list(must)
        keys = {s.key for s in chosen}
        total = sum(cost(s) for s in chosen)
        # Then what was there (jumping back to the previous file stays cheap), in its order.
        for item in self.items:
            item_cost = cost(item)
            if item.key not in keys and total + item_cost <= budget * REBUILD_FILL:
                chosen.append(item)
                keys.add(item.key)
                total += item_cost
        if [s.key for s in chosen] != [s.key for s in self.items]:
            self.items = chosen
            self.rebuilds += 1


def _entries(items: list[Snippet]) -> list[ContextEntry]:
    return [ContextEntry(item.path, item.text) for item in items]
