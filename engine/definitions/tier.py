"""The repository tier: which other files' declarations lead the prompt, and in what order.

Most assistants re-rank snippets per request and put them first, so the first tokens change on
most keystrokes and vLLM's prefix cache misses. Here the tier is shared by all documents of a
repository and grows append-only: a snippet, once in, keeps its place, and new ones (a name the
user just started to use) go at the end. When the snippets the current file needs most are
missing and do not fit, the tail is evicted to make room (what comes before it stays cached);
only a tier mostly irrelevant to the current file is rebuilt, with those snippets first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# The top of the ranking, this share of the tier, must be in it: missing ones are appended,
# making room by evicting from the tail (the cached blocks before it stay valid).
MUST_SHARE = 0.5
# The rest of the ranking fills the tier to this share, leaving room to append the next
# must-have without evicting anything.
FILL_SHARE = 0.9
# A tier less than this share relevant to the current file (a jump to unrelated code) is
# rebuilt for it rather than patched at its tail.
RELEVANT_AT_LEAST = 0.5


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
        self.evictions = 0
        # The last call's inputs and answer: between keystrokes nothing changes (the ranking
        # is memoized, no count arrived), and the answer is reused as it is.
        self._last: tuple[object, ...] | None = None
        self._last_entries: list[ContextEntry] = []

    def entries(
        self,
        ranked: list[Snippet],
        charge: Callable[[Snippet], int],
        budget: int,
        alive: Callable[[str], bool] = lambda path: True,
        version: object = None,
    ) -> list[ContextEntry]:
        """``ranked``: snippets the current file needs, most needed first. ``cost``: a
        snippet's tokens (an upper bound until the real count is known). ``version``: changes
        whenever ``cost`` may answer differently (a real count arrived)."""
        # The ranked list itself is kept, so its identity cannot be reused by another list.
        inputs = (ranked, budget, version, len(self.items))
        if version is not None and self._last is not None and ranked is self._last[0]:
            if inputs[1:] == self._last[1:]:
                return self._last_entries
        costs: dict[str, int] = {}

        def cost(snippet: Snippet) -> int:
            found = costs.get(snippet.key)
            if found is None:
                found = costs[snippet.key] = charge(snippet)
            return found

        fresh = {s.key: s for s in ranked}
        # A snippet keeps its place; its text follows saved edits; deleted files drop out.
        self.items = [fresh.get(item.key, item) for item in self.items if alive(item.path)]
        present = {item.key for item in self.items}
        total = sum(cost(item) for item in self.items)

        must: list[Snippet] = []
        must_total = 0
        for snippet in ranked:
            snippet_cost = cost(snippet)
            # The most needed snippet is a must-have whatever its size, if the tier can hold it.
            limit = budget * (MUST_SHARE if must else FILL_SHARE)
            if must_total + snippet_cost > limit:
                break
            must.append(snippet)
            must_total += snippet_cost
        missing = [s for s in must if s.key not in present]

        relevant = sum(cost(item) for item in self.items if item.key in fresh)
        if missing and relevant < total * RELEVANT_AT_LEAST:
            self.items, total = [], 0
            self.rebuilds += 1
            missing = must
        elif missing or total > budget:
            # Evict from the tail until the missing must-haves fit (must-haves evicted on the
            # way are appended again): the tier's head, and its cache, stay as they were.
            room = budget - sum(cost(s) for s in missing)
            evicted: list[Snippet] = []
            while self.items and total > room:
                item = self.items.pop()
                total -= cost(item)
                evicted.append(item)
            keys = {s.key for s in missing}
            missing += [s for s in must if s.key not in keys and s in evicted]
            self.evictions += len(evicted)
        for snippet in sorted(missing, key=lambda s: must.index(s) if s in must else 0):
            self.items.append(snippet)
            total += cost(snippet)
        present = {item.key for item in self.items}
        wanted = sum(cost(s) for s in ranked if s.key not in present)
        # A tail this file's ranking does not hold (the last file's declarations) gives way
        # to what this file needs and does not fit: the prompt after it changes anyway.
        while (
            total + wanted > budget * FILL_SHARE and self.items and self.items[-1].key not in fresh
        ):
            total -= cost(self.items.pop())
            self.evictions += 1
        for snippet in ranked:
            snippet_cost = cost(snippet)
            if snippet.key not in present and total + snippet_cost <= budget * FILL_SHARE:
                self.items.append(snippet)
                present.add(snippet.key)
                total += snippet_cost
        self._last = (ranked, budget, version, len(self.items))
        self._last_entries = _entries(self.items)
        return self._last_entries


def _entries(items: list[Snippet]) -> list[ContextEntry]:
    return [ContextEntry(item.path, item.text) for item in items]
