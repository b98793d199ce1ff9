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

from engine.completion.context.definitions import needed_definitions
from engine.completion.context.repository import ContextEntry, RepositoryTier, Snippet
from engine.completion.context.tokens import TokenCounts, upper_estimate
from engine.completion.context.window import (
    WindowAnchors,
    anchored_window,
    clip_cursor_line,
    sliding_window,
)
from engine.completion.types import CompletionRequest
from engine.documents import OpenDocument
from engine.repository.headers import FileHeader
from engine.repository.index import RepositoryIndex
from engine.repository.secrets import is_denied, mask_credentials
from engine.repository.symbols import BLOCK_LINES, NameUsage, name_usage
from engine.workspace import Workspace

# Shares of the prompt budget, most stable first. What is left (5%) covers the cursor's line
# and the template's markers, so the budget caps the whole prompt.
REPOSITORY_SHARE = 0.50
PREFIX_SHARE = 0.30
SUFFIX_SHARE = 0.10
FILE_HEADER_SHARE = 0.06
CURSOR_LINE_SHARE = 0.04
# A whole-file summary gets at most this share of the tier.
SUMMARY_SHARE = 1 / 3
OPEN_FILES = 5
SIBLINGS = 4
# Tokens a snippet is charged beyond its text (its share of file markers and newlines).
MARKER_TOKENS = 4
# A declaration shows a line per this many tokens of budget (a class: 16 lines at 2,048).
TOKENS_PER_SHOWN_LINE = 128
# The template's own markers, the repository name and the current file's path.
TEMPLATE_TOKENS = 24

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
        self._imports: dict[tuple[object, ...], list[str]] = {}
        self._fits: dict[tuple[str, int], str] = {}
        self._snippets: dict[tuple[object, ...], tuple[object, list[Snippet]]] = {}
        self._usages: dict[str, tuple[str, FileHeader | None, NameUsage]] = {}
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
        line_prefix, line_suffix = clip_cursor_line(
            window.line_prefix, window.line_suffix, int(budget * CURSOR_LINE_SHARE)
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
        workspace_name = index.name if index is not None else request.workspace_name
        # The text after the cursor's line changes only with the line, the cursor's line with
        # every keystroke: it is bounded without asking the tokenizer for a count each time.
        below = window.suffix[len(window.line_suffix) :]
        repository = self._within_budget(
            repository,
            budget,
            upper_estimate(line_prefix) + upper_estimate(line_suffix),
            window.prefix,
            below,
            file_header,
            relative or name or "",
            workspace_name or "",
        )
        return CursorContext(
            prefix=mask_credentials(window.prefix),
            line_prefix=mask_credentials(line_prefix),
            line_suffix=line_suffix,
            suffix=mask_credentials(line_suffix + below),
            language_id=request.language_id,
            relative_path=relative or name,
            workspace_name=workspace_name,
            file_header=file_header,
            repository=repository,
            cursor_line_in_prefix=self._cursor_line_in_prefix,
        )

    def _within_budget(
        self, repository: tuple[ContextEntry, ...], budget: int, cursor_line: int, *parts: str
    ) -> tuple[ContextEntry, ...]:
        """The budget caps the whole prompt: if the parts add up to more (by upper bounds of
        their counts), the tier's last entries are left out of this prompt."""
        # Counting the parts apart can differ from counting the joined prompt by a token at
        # each seam: a margin covers it.
        total = TEMPLATE_TOKENS + budget // 100 + cursor_line
        total += sum(self.counts.upper(part) for part in parts)
        previous = None
        for position, entry in enumerate(repository):
            total += self.counts.upper(entry.text) + 1
            if entry.path != previous:
                total += self.counts.upper(entry.path) + 2
            previous = entry.path
            if total > budget:
                return repository[:position]
        return repository

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
        """The header's first lines that fit ``budget`` by an upper bound of their tokens: a
        cut that depends on the text alone, so it never moves when a real count arrives."""
        key = (header, budget)
        fit = self._fits.get(key)
        if fit is None:
            kept: list[str] = []
            total = 0
            for line in header.splitlines():
                total += upper_estimate(line + "\n")
                if total > budget:
                    break
                kept.append(line)
            fit = "\n".join(kept) + "\n" if kept else ""
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
        live = {
            d.relative: d for d in self._workspace.documents.by_recency() if d.relative is not None
        }
        ranked = self._ranked_snippets(index, relative, request, live, budget)

        def cost(snippet: Snippet) -> int:
            # Declarations of one file appended together share its marker: a snippet is
            # charged a marker's share; build() checks the rendered total against the budget.
            return self.counts.upper(snippet.text) + MARKER_TOKENS

        if self._layout == "naive":
            entries, total = [], 0
            for snippet in ranked:
                if total + cost(snippet) <= budget:
                    entries.append(ContextEntry(snippet.path, snippet.text))
                    total += cost(snippet)
            self._shuffle.shuffle(entries)
            return entries
        tier = self._tiers.setdefault(index.root, RepositoryTier())
        return tier.entries(
            ranked,
            cost,
            budget,
            alive=lambda p: p in index or p in live,
            version=(self.counts.version, index.generation),
        )

    def _ranked_snippets(
        self,
        index: RepositoryIndex,
        relative: str,
        request: CompletionRequest,
        live: Mapping[str, OpenDocument],
        budget: int,
    ) -> list[Snippet]:
        """Declarations the file uses (in order of first use), then whole-file summaries of
        the files it imports, open files and relevant siblings. Memoized: it changes only
        with the index or the document's header (re-extracted after an idle pause)."""
        header, usage = self._header_and_usage(index, relative, request)
        # The code around the cursor, by blocks of lines: moving within it keeps the ranking.
        block = request.text.count("\n", 0, request.cursor) // BLOCK_LINES
        key = (index.root, index.generation, relative, budget, len(live), block)
        cached = self._snippets.get(key)
        if cached is not None and cached[0] == (header, usage):
            return cached[1]
        snippets: list[Snippet] = []
        declaring: list[str] = []  # files that declare what this one uses, in that order
        if header is not None:
            near = usage.near(block * BLOCK_LINES)
            for located in needed_definitions(index, relative, header, usage, near):
                text = _first_lines(located.definition.shown, budget // TOKENS_PER_SHOWN_LINE)
                snippets.append(Snippet(located.key, located.path, text))
                if located.path not in declaring:
                    declaring.append(located.path)
        summary_budget = int(budget * SUMMARY_SHARE)
        files = self._ranked(index, relative, header, usage, live)
        for path in [*files, *(p for p in declaring if p not in files)]:
            document = live.get(path)
            indexed = index.header(path)
            source = indexed or (document.header if document is not None else None)
            if source is not None and (text := self._fit(source.summary, summary_budget)):
                snippets.append(Snippet(path, path, text.rstrip("\n")))
        if len(self._snippets) > 256:
            self._snippets.clear()
        self._snippets[key] = ((header, usage), snippets)
        return snippets

    def _header_and_usage(
        self, index: RepositoryIndex, relative: str, request: CompletionRequest
    ) -> tuple[FileHeader | None, NameUsage]:
        assert self._workspace is not None
        document = self._workspace.documents.get(request.document_uri)
        if document is not None and document.header is not None:
            return document.header, document.usage
        # Not open here (a code action on a file the editor did not send): from its text.
        header = index.header(relative)
        cached = self._usages.get(relative)
        if cached is None or cached[0] != request.text or cached[1] is not header:
            cached = (
                request.text,
                header,
                name_usage(request.text, header.bindings if header else ()),
            )
            if len(self._usages) > 64:
                self._usages.clear()
            self._usages[relative] = cached
        return header, cached[2]

    def _ranked(
        self,
        index: RepositoryIndex,
        relative: str,
        header: FileHeader | None,
        usage: NameUsage,
        live: Mapping[str, OpenDocument],
    ) -> list[str]:
        """Imported files first, then open files by recency, then same-folder siblings."""
        imports, bindings, language = (
            (header.imports, header.bindings, header.language) if header else ((), (), None)
        )
        key = (index.root, index.generation, relative, language, imports, bindings)
        if key not in self._imports:
            if len(self._imports) > 256:
                self._imports.clear()
            self._imports[key] = index.resolver().resolve(relative, language, imports, bindings)
        candidates = list(self._imports[key])
        candidates += [path for path in live if path != relative and path in index][:OPEN_FILES]
        candidates += self._siblings_of(index, relative, usage)
        ranked: list[str] = []
        for path in candidates:
            if path != relative and path not in ranked:
                ranked.append(path)
        return ranked

    def _siblings_of(self, index: RepositoryIndex, relative: str, usage: NameUsage) -> list[str]:
        """Same-folder files that declare names this file uses, most such names first."""
        folder = posixpath.dirname(relative)
        key = (index.root, index.generation, folder)
        if key not in self._siblings:
            if len(self._siblings) > 256:
                self._siblings.clear()
            self._siblings[key] = sorted(
                p for p in index.paths() if posixpath.dirname(p) == folder and p != relative
            )
        used = set(usage.uses)
        scored = []
        for path in self._siblings[key]:
            header = index.header(path)
            hits = sum(1 for d in header.definitions if d.name in used) if header else 0
            if hits:
                scored.append((-hits, path))
        return [path for _, path in sorted(scored)[:SIBLINGS]]


def _first_lines(text: str, count: int) -> str:
    lines = text.split("\n")
    if len(lines) <= count + 1:
        return text
    kept = lines[:count]
    indent = kept[-1][: len(kept[-1]) - len(kept[-1].lstrip())]
    return "\n".join([*kept, indent + "…"])


def build_cursor_context(request: CompletionRequest, token_budget: int) -> CursorContext:
    """A context from the request alone: no workspace, estimated token counts."""
    context = ContextBuilder(None, TokenCounts(None)).build(request, token_budget)
    assert context is not None or request.path is not None
    return context or CursorContext("", "", "", "", request.language_id)
