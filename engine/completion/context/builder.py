"""Stage 1, assembled: repository tier -> current file's header -> anchored window -> cursor.

``layout = "naive"`` exists as the benchmark's baseline: context re-ordered per request and a
window that slides with every line, as most assistants do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from engine.completion.context.window import (
    WindowAnchors,
    anchored_window,
    clip_cursor_line,
    sliding_window,
)
from engine.completion.types import CompletionRequest
from engine.definitions.repository import REPOSITORY_SHARE, FileAt, Layout, RepositoryContext
from engine.definitions.tier import ContextEntry
from engine.definitions.tokens import TokenCounts, upper_estimate
from engine.repository.secrets import is_denied, mask_credentials

# Shares of the prompt budget, most stable first. What is left (5%) covers the cursor's line
# and the template's markers, so the budget caps the whole prompt.
PREFIX_SHARE = 0.30
SUFFIX_SHARE = 0.10
FILE_HEADER_SHARE = 0.06
CURSOR_LINE_SHARE = 0.04
# The template's own markers, the repository name and the current file's path.
TEMPLATE_TOKENS = 24
# The current file rarely fills its shares (a short file, a window cut with room to grow): the
# repository tier gets what it leaves, in steps of this share of the budget (at most
# ROOM_STEP_TOKENS: the lines typed between two steps do not grow with the budget), with a step
# or two held back for the lines the user types next.
ROOM_STEP_SHARE = 1 / 16
ROOM_STEP_TOKENS = 128


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
        repository: RepositoryContext,
        counts: TokenCounts,
        layout: Layout = "stable",
        cursor_line: Literal["middle", "prefix"] = "middle",
        extra_deny: tuple[str, ...] = (),
    ) -> None:
        self.repository = repository
        self.counts = counts
        self._layout = layout
        self._cursor_line_in_prefix = cursor_line == "prefix" or layout == "naive"
        self._extra_deny = extra_deny
        self._anchors: dict[str, WindowAnchors] = {}

    def forget(self, uri: str) -> None:
        self._anchors.pop(uri, None)

    def build(self, request: CompletionRequest, budget: int) -> CursorContext | None:
        """None when the document must never reach a model (a secrets file)."""
        file = file_at(request)
        located = self.repository.locate(file)
        relative = located[1]
        name = relative or (request.path.name if request.path else None)
        if name is not None and is_denied(name, self._extra_deny):
            return None
        prefix_budget, suffix_budget = int(budget * PREFIX_SHARE), int(budget * SUFFIX_SHARE)
        header_budget = int(budget * FILE_HEADER_SHARE)
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
        workspace = self.repository.workspace
        document = workspace.documents.get(request.document_uri) if workspace else None
        file_header = ""
        if window.start_line > 0 and document is not None and document.header is not None:
            if not anchors.file_header:
                anchors.file_header = self.repository.fit(document.header.text, header_budget)
            file_header = anchors.file_header
        # The text after the cursor's line changes only with the line, the cursor's line with
        # every keystroke: it is bounded without asking the tokenizer for a count each time.
        below = window.suffix[len(window.line_suffix) :]
        # The file's own parts, counted once: for the tier's room and for the budget's cap.
        used = sum(self.counts.upper(part) for part in (file_header, window.prefix, below))
        room = 0
        if self._layout != "naive":
            shares = prefix_budget + suffix_budget + header_budget
            room = tier_room(anchors, budget, shares, used)
        workspace_name, repository = self.repository.entries(
            file, int(budget * REPOSITORY_SHARE), self.counts, self._layout, located, room
        )
        repository = self._within_budget(
            repository,
            budget,
            upper_estimate(line_prefix) + upper_estimate(line_suffix) + used,
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
        self, repository: tuple[ContextEntry, ...], budget: int, counted: int, *parts: str
    ) -> tuple[ContextEntry, ...]:
        """The budget caps the whole prompt: if the parts (``counted`` tokens of them counted
        already) add up to more (by upper bounds of their counts), the tier's last entries are
        left out of this prompt."""
        # Counting the parts apart can differ from counting the joined prompt by a token at
        # each seam: a margin covers it.
        total = TEMPLATE_TOKENS + budget // 100 + counted
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


def tier_room(anchors: WindowAnchors, budget: int, shares: int, used: int) -> int:
    """The tokens of the file's ``shares`` (window and header) that the repository tier may
    take: what the file's text (``used`` of them) leaves unused, held back in steps so that
    typing changes the tier's size rarely, and only downwards while the window's start rests;
    when it moves (the window is cut afresh, and the prompt after the tier changes anyway),
    what the new window leaves unused."""
    if anchors.reserved_at != anchors.start_chunk:
        anchors.reserved_at, anchors.reserved = anchors.start_chunk, 0
    if anchors.reserved < shares:
        step = max(1, min(ROOM_STEP_TOKENS, int(budget * ROOM_STEP_SHARE)))
        if used + step > anchors.reserved:
            anchors.reserved = min(shares, (used // step + 2) * step)
    return shares - anchors.reserved


def file_at(request: CompletionRequest) -> FileAt:
    return FileAt(request.place, request.text, request.cursor)


def build_cursor_context(request: CompletionRequest, token_budget: int) -> CursorContext:
    """A context from the request alone: no workspace, estimated token counts."""
    context = ContextBuilder(RepositoryContext(None), TokenCounts(None)).build(
        request, token_budget
    )
    assert context is not None or request.path is not None
    return context or CursorContext("", "", "", "", request.language_id)
