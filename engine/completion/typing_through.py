"""Typing through: when the user types what a suggestion shows, serve the rest from memory;
when they type what a request still streaming has produced so far, wait for it instead of
asking again (``Streaming``)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class _Shown:
    prefix: str
    suffix: str
    text: str


class TypingThroughMemory:
    def __init__(self, max_documents: int = 64) -> None:
        self._shown: OrderedDict[str, _Shown] = OrderedDict()
        self._max_documents = max_documents

    def remember(self, uri: str, prefix: str, suffix: str, text: str) -> None:
        self._shown[uri] = _Shown(prefix, suffix, text)
        self._shown.move_to_end(uri)
        while len(self._shown) > self._max_documents:
            self._shown.popitem(last=False)

    def recall(self, uri: str, prefix: str, suffix: str) -> str | None:
        """The rest of the shown suggestion if the document differs from when it was shown only
        by the suggestion's first characters typed at the cursor."""
        shown = self._shown.get(uri)
        if shown is None or suffix != shown.suffix or not prefix.startswith(shown.prefix):
            return None
        typed = prefix[len(shown.prefix) :]
        if not shown.text.startswith(typed):
            return None
        rest = shown.text[len(typed) :]
        return rest if rest.strip() else None

    def forget(self, uri: str) -> None:
        self._shown.pop(uri, None)


@dataclass(frozen=True)
class Streaming:
    """A request sent for the document at ``prefix``/``suffix``, still streaming: ``so_far``
    reads the text it has produced until now."""

    prefix: str
    suffix: str
    so_far: Callable[[], str]

    def continued_by(self, prefix: str, suffix: str) -> bool:
        """The document differs from when the request was sent only by characters typed at
        the cursor that the stream has already produced: its answer will hold the rest."""
        if suffix != self.suffix or not prefix.startswith(self.prefix):
            return False
        typed = prefix[len(self.prefix) :]
        return bool(typed) and self.so_far().startswith(typed)
