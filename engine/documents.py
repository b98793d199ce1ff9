"""Open documents: their live text, an incrementally re-parsed syntax tree, and a header kept
current off the completion path (re-extracted after a short idle, not on every keystroke)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace

from tree_sitter import Point, Tree

from engine.repository.headers import FileHeader, extract_header, parse
from engine.repository.languages import language_for
from engine.repository.secrets import mask_credentials
from engine.repository.usage import NameUsage, name_usage

log = logging.getLogger(__name__)

HEADER_IDLE_S = 0.3


@dataclass
class OpenDocument:
    uri: str
    relative: str | None  # path inside a workspace folder, when it is in one
    language: str | None
    text: str
    version: int = 0
    edited_at: float = field(default_factory=time.monotonic)
    tree: Tree | None = None
    header: FileHeader | None = None
    # The names the file uses, in order of first use (with the header: off the keystroke path).
    usage: NameUsage = field(default_factory=NameUsage)
    _source: bytes = b""


class OpenDocuments:
    def __init__(self) -> None:
        self._documents: dict[str, OpenDocument] = {}
        self._refresh: dict[str, asyncio.TimerHandle] = {}

    def get(self, uri: str) -> OpenDocument | None:
        return self._documents.get(uri)

    def by_recency(self) -> list[OpenDocument]:
        return sorted(self._documents.values(), key=lambda d: d.edited_at, reverse=True)

    def opened(self, uri: str, relative: str | None, language_id: str, text: str) -> OpenDocument:
        path = relative or uri
        document = OpenDocument(uri, relative, language_for(path, language_id), text)
        self._documents[uri] = document
        self._reparse(document)
        return document

    def changed(self, uri: str, text: str) -> None:
        document = self._documents.get(uri)
        if document is None or document.text == text:
            return
        document.text = text
        document.version += 1
        document.edited_at = time.monotonic()
        self._schedule(document)

    def closed(self, uri: str) -> None:
        self._documents.pop(uri, None)
        handle = self._refresh.pop(uri, None)
        if handle is not None:
            handle.cancel()

    def _schedule(self, document: OpenDocument) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._reparse(document)
            return
        previous = self._refresh.pop(document.uri, None)
        if previous is not None:
            previous.cancel()
        self._refresh[document.uri] = loop.call_later(HEADER_IDLE_S, self._reparse, document)

    def _reparse(self, document: OpenDocument) -> None:
        self._refresh.pop(document.uri, None)
        source = document.text.encode("utf-8")
        path = document.relative or document.uri
        try:
            if document.language is not None:
                if document.tree is not None:
                    _apply_edit(document.tree, document._source, source)
                    document.tree = parse(document.language, source, document.tree)
                else:
                    document.tree = parse(document.language, source)
            header = extract_header(path, document.language, source, document.tree)
            clean = document.tree is None or not document.tree.root_node.has_error
        except Exception as error:  # a grammar failure costs the header, nothing more
            log.info("cannot parse %s: %s", path, error)
            header, clean = extract_header(path, None, source), False
        document._source = source
        # Mid-edit, the file rarely parses: keep the last header from a clean parse rather
        # than one from an error-recovered tree (it would change the prompt on every pause).
        if clean or document.header is None:
            document.header = replace(header, text=mask_credentials(header.text))
            document.usage = name_usage(document.text, header.bindings, header.language)


def _apply_edit(tree: Tree, old: bytes, new: bytes) -> None:
    """Tell tree-sitter what changed, as one edit spanning the differing region."""
    start = _common_prefix(old, new)
    limit = min(len(old), len(new)) - start
    tail = _common_suffix(old, new, limit)
    old_end, new_end = len(old) - tail, len(new) - tail
    tree.edit(
        start_byte=start,
        old_end_byte=old_end,
        new_end_byte=new_end,
        start_point=_point(old, start),
        old_end_point=_point(old, old_end),
        new_end_point=_point(new, new_end),
    )


def _common_prefix(a: bytes, b: bytes) -> int:
    # Binary search on slice equality: memcmp speed, no Python loop over bytes.
    low, high = 0, min(len(a), len(b))
    while low < high:
        middle = (low + high + 1) // 2
        if a[:middle] == b[:middle]:
            low = middle
        else:
            high = middle - 1
    return low


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    low, high = 0, max(limit, 0)
    while low < high:
        middle = (low + high + 1) // 2
        if a[len(a) - middle :] == b[len(b) - middle :]:
            low = middle
        else:
            high = middle - 1
    return low


def _point(source: bytes, offset: int) -> Point:
    row = source.count(b"\n", 0, offset)
    column = offset - (source.rfind(b"\n", 0, offset) + 1)
    return Point(row, column)
