"""Stage 1, assembled: repository tier -> current file's header -> anchored window -> cursor.

``layout = "naive"`` exists as the benchmark's baseline: context re-ordered per request and a
window that slides with every line, as most assistants do."""

from __future__ import annotations

import posixpath
import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from engine.completion.context.repository import ContextEntry, RepositoryTier
from engine.completion.context.tokens import TokenCounts
from engine.completion.context.window import WindowAnchors, anchored_window, sliding_window
from engine.completion.types import CompletionRequest
from engine.documents import OpenDocument
from engine.repository.index import RepositoryIndex
from engine.repository.secrets import is_denied, mask_credentials
from engine.workspace import Workspace

# Shares of the prompt budget, most stable first.
REPOSITORY_SHARE = 0.50
PREFIX_SHARE = 0.30
SUFFIX_SHARE = 0.10
FILE_HEADER_SHARE = 0.10
ENTRIES_AT_LEAST = 3
OPEN_FILES = 5
SIBLINGS = 4

Layout = Literal["stable", "naive"]


@dataclass(frozen=True)
class CursorContext:
    prefix: str  # whole lines of the current file before the cursor's line
    line_prefix: str  # the cursor's line up to the cursor
    line_suffix: str  # the cursor's line after the cursor
    suffix: str  # from the cursor to the window's end
    language_id: str
    relative_path: str | None = None
    workspace_name: str | None = None
    # The current file's imports and signatures, when the window starts below its top.
    file_header: str = ""
    repository: tuple[ContextEntry, ...] = ()
    # Plain PSM (cursor line in the prefix) instead of the cursor line after the middle marker.
    cursor_line_in_prefix: bool = False


class ContextBuilder:
    def __init__(
        self,
        workspace: Workspace | None,
        counts: TokenCounts,
        layout: Layout = "stable",
        cursor_line: Literal["middle", "prefix"] = "middle",
        extra_deny: tuple[str, ...] = (),
    ) -> None:
        self._workspace = workspace
        self.counts = counts
        self._layout = layout
        self._cursor_line_in_prefix = cursor_line == "prefix" or layout == "naive"
        self._extra_deny = extra_deny
        self._anchors: dict[str, WindowAnchors] = {}
        self._tiers: dict[Path, RepositoryTier] = {}
        self._siblings: dict[tuple[Path, int, str], list[str]] = {}
        # Per-keystroke work that only changes with a header or the index: memoized.
        self._imports: dict[tuple[Path, int, str, str | None, tuple[str, ...]], list[str]] = {}
        self._fits: dict[tuple[str, int], tuple[str, int]] = {}
        self._shuffle = random.Random(0)

    def forget(self, uri: str) -> None:
        self._anchors.pop(uri, None)

    def build(self, request: CompletionRequest, budget: int) -> CursorContext | None:
        """None when the document must never reach a model (a secrets file)."""
        index, relative = self._locate(request)
        name = relative or (request.path.name if request.path else None)
        if name is not None and is_denied(name, self._extra_deny):
            return None
        prefix_budget, suffix_budget = int(budget * PREFIX_SHARE), int(budget * SUFFIX_SHARE)
        anchors = self._anchors.setdefault(request.document_uri, WindowAnchors())
        if self._layout == "naive":
            window = sliding_window(
                request.text, request.cursor, self.counts, prefix_budget, suffix_budget
            )
        else:
            window = anchored_window(
                request.text, request.cursor, anchors, self.counts, prefix_budget, suffix_budget
            )
        document = self._workspace.documents.get(request.document_uri) if self._workspace else None
        file_header = ""
        if window.start_line > 0 and document is not None and document.header is not None:
            if not anchors.file_header:
                anchors.file_header = self._fit(
                    document.header.text, int(budget * FILE_HEADER_SHARE)
                )
            file_header = anchors.file_header
        repository: tuple[ContextEntry, ...] = ()
        if index is not None and relative is not None:
            repository = tuple(
                self._repository(index, relative, request, int(budget * REPOSITORY_SHARE))
            )
        return CursorContext(
            prefix=mask_credentials(window.prefix),
            line_prefix=mask_credentials(window.line_prefix),
            line_suffix=window.line_suffix,
            suffix=mask_credentials(window.suffix),
            language_id=request.language_id,
            relative_path=relative or name,
            workspace_name=index.name if index is not None else request.workspace_name,
            file_header=file_header,
            repository=repository,
            cursor_line_in_prefix=self._cursor_line_in_prefix,
        )

    def repository_context(
        self, request: CompletionRequest, budget: int
    ) -> tuple[str | None, tuple[ContextEntry, ...]]:
        """The workspace's name and the repository tier for ``request``'s file, without touching
        its completion window: code actions lead with the same entries as completions."""
        index, relative = self._locate(request)
        if index is None or relative is None:
            return request.workspace_name, ()
        entries = tuple(self._repository(index, relative, request, int(budget * REPOSITORY_SHARE)))
        return index.name, entries

    def _fit(self, header: str, budget: int) -> str:
        fit = self._fit_with_cost(header, budget)
        return fit[0] + "\n" if fit else ""

    def _fit_with_cost(self, header: str, budget: int) -> tuple[str, int] | None:
        """The header's first lines (imports come first), in proportion to ``budget`` over its
        real token count, with their share of that count; None until the count is known, so
        the text never flips from an estimate's cut to the real one."""
        key = (header, budget)
        if key in self._fits:
            return self._fits[key]
        tokens = self.counts.known(header) if header else None
        if not tokens:
            return None
        if tokens <= budget:
            fit = header, tokens
        else:
            lines = header.splitlines()
            keep = max(1, len(lines) * budget // tokens)
            fit = "\n".join(lines[:keep]), tokens * keep // len(lines)
        if len(self._fits) > 4096:
            self._fits.clear()
        self._fits[key] = fit
        return fit

    def _locate(self, request: CompletionRequest) -> tuple[RepositoryIndex | None, str | None]:
        if self._workspace is None or request.path is None:
            return None, request.relative_path
        index, relative = self._workspace.locate(request.path)
        return index, relative or request.relative_path

    def _repository(
        self, index: RepositoryIndex, relative: str, request: CompletionRequest, budget: int
    ) -> list[ContextEntry]:
        assert self._workspace is not None
        documents = self._workspace.documents
        live = {d.relative: d for d in documents.by_recency() if d.relative is not None}

        # A long header keeps its first lines (imports, first signatures), so that the files
        # that matter most all fit rather than one of them whole.
        entry_budget = budget // ENTRIES_AT_LEAST

        def fitted(path: str) -> tuple[str, int] | None:
            # Saved files' headers (the index follows saves): another tab's unsaved typing
            # must not rewrite the start of every prompt. Unsaved new files use their live one.
            indexed = index.header(path)
            document = live.get(path)
            if indexed is not None:
                text = indexed.text
            elif document is not None and document.header is not None:
                text = document.header.text
            else:
                return None
            return self._fit_with_cost(text, entry_budget)

        def header(path: str) -> str | None:
            fit = fitted(path)
            return fit[0] if fit else None

        def cost(path: str) -> int | None:
            fit = fitted(path)
            return fit[1] if fit else None

        ranked = self._ranked(index, relative, request, live)
        if self._layout == "naive":
            entries, total = [], 0
            for path in ranked:
                text, tokens = header(path), cost(path)
                if text and tokens is not None and total + tokens <= budget:
                    entries.append(ContextEntry(path, text))
                    total += tokens
            self._shuffle.shuffle(entries)
            return entries
        tier = self._tiers.setdefault(index.root, RepositoryTier())
        return tier.entries(ranked, header, cost, budget)

    def _ranked(
        self,
        index: RepositoryIndex,
        relative: str,
        request: CompletionRequest,
        live: Mapping[str, OpenDocument],
    ) -> list[str]:
        """Imported files first, then open files by recency, then same-folder siblings."""
        assert self._workspace is not None
        document = self._workspace.documents.get(request.document_uri)
        if document is not None and document.header is not None:
            imports, language = document.header.imports, document.language
        else:
            indexed = index.header(relative)
            imports, language = (indexed.imports, indexed.language) if indexed else ((), None)
        key = (index.root, index.generation, relative, language, tuple(imports))
        if key not in self._imports:
            if len(self._imports) > 256:
                self._imports.clear()
            self._imports[key] = index.resolver().resolve(relative, language, imports)
        candidates = list(self._imports[key])
        candidates += [path for path in live if path != relative and path in index][:OPEN_FILES]
        candidates += self._siblings_of(index, relative)
        ranked: list[str] = []
        for path in candidates:
            if path != relative and path not in ranked:
                ranked.append(path)
        return ranked

    def _siblings_of(self, index: RepositoryIndex, relative: str) -> list[str]:
        folder = posixpath.dirname(relative)
        key = (index.root, index.generation, folder)
        if key not in self._siblings:
            if len(self._siblings) > 256:
                self._siblings.clear()
            self._siblings[key] = sorted(
                p for p in index.paths() if posixpath.dirname(p) == folder
            )[: SIBLINGS + 1]
        return [p for p in self._siblings[key] if p != relative][:SIBLINGS]


def build_cursor_context(request: CompletionRequest, token_budget: int) -> CursorContext:
    """A context from the request alone: no workspace, estimated token counts."""
    context = ContextBuilder(None, TokenCounts(None)).build(request, token_budget)
    assert context is not None or request.path is not None
    return context or CursorContext("", "", "", "", request.language_id)
