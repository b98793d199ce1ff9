"""Token counts from the served model's tokenizer (vLLM ``/tokenize``), cached by text.

The completion path only reads the cache. A text it has not seen is estimated once, and its
real count fetched in the background, so no keystroke waits on a tokenizer round trip."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

TokenCounter = Callable[[str], Awaitable[int]]
# Only for texts whose real count is still on its way (or servers without /tokenize).
CHARS_PER_TOKEN_ESTIMATE = 3
# An upper bound for budget decisions before the real count arrives: code tokenizes at 3 to 4
# ASCII characters a token; other scripts can take a token or more per character.
ASCII_CHARS_PER_TOKEN_BOUND = 2


def _estimate(text: str) -> int:
    return len(text) // CHARS_PER_TOKEN_ESTIMATE + 1


def upper_estimate(text: str) -> int:
    ascii_chars = len(text.encode("ascii", errors="ignore")) if not text.isascii() else len(text)
    return ascii_chars // ASCII_CHARS_PER_TOKEN_BOUND + (len(text) - ascii_chars) + 1


class TokenCounts:
    def __init__(
        self,
        counter: TokenCounter | None,
        max_entries: int = 50_000,
        # Bounded by text held too: a shared daemon's editors keep adding new chunks, and
        # 50,000 chunks of a large file would be tens of megabytes.
        max_chars: int = 4_000_000,
        concurrency: int = 4,
        local: Callable[[str], int] | None = None,
    ) -> None:
        self._counter = counter
        # The served tokenizer loaded here (the daemon runs beside vLLM): counts are exact at
        # once, with no round trip and no estimate.
        self._local = local
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._max_entries = max_entries
        self._max_chars = max_chars
        self._chars = 0
        self._pending: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(concurrency)
        # Bumped with every count learned: answers computed from counts can tell they are stale.
        self.version = 0

    def count(self, text: str) -> int:
        return self._counted(text, _estimate)

    def known(self, text: str) -> int | None:
        """The real count, or None (and a fetch is on its way). For decisions that must not
        flip when an estimate is replaced by the real count."""
        if not text:
            return 0
        if self._counter is None or self._local is not None:  # estimate final, or count exact
            return self.count(text)
        known = self._counts.get(text)
        if known is None:
            self._request(text)
        return known

    def final(self, text: str) -> bool:
        """Whether ``count`` of ``text`` is final (no real count on its way)."""
        return self._counter is None or self._local is not None or text in self._counts

    def upper(self, text: str) -> int:
        """The real count when known, else an upper bound (and the real count is fetched):
        a budget decided on it holds, and only loosens when the real count arrives."""
        if self._counter is None:  # no tokenizer at all: the estimate is all there will be
            return self.count(text)
        return self._counted(text, upper_estimate)

    def _counted(self, text: str, unknown: Callable[[str], int]) -> int:
        """The real count (cached, or exact here), else ``unknown(text)`` while it is fetched."""
        if not text:
            return 0
        known = self._counts.get(text)
        if known is not None:
            return known
        if self._local is not None:
            return self._remember(text, self._local(text))
        self._request(text)
        return unknown(text)

    async def settle(self) -> None:
        """Wait for every count in flight (benchmarks and tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _request(self, text: str) -> None:
        if self._counter is None or text in self._pending:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._fetch(text))
        except RuntimeError:
            return
        self._pending.add(text)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fetch(self, text: str) -> None:
        assert self._counter is not None
        try:
            async with self._slots:
                count = await self._counter(text)
        except Exception as error:  # an estimate stays in use; the next sight retries
            log.debug("token count failed: %s", error)
            return
        finally:
            self._pending.discard(text)
        self._remember(text, count)

    def _remember(self, text: str, count: int) -> int:
        self.version += 1
        if text not in self._counts:
            self._chars += len(text)
        self._counts[text] = count
        while self._counts and (
            len(self._counts) > self._max_entries or self._chars > self._max_chars
        ):
            oldest, _ = self._counts.popitem(last=False)
            self._chars -= len(oldest)
        return count
