"""The current file around the cursor, cut to the token budget with anchored edges.

vLLM reuses cached blocks only for an identical prefix of whole blocks, so the window's start
must not move with every line: it sits on a chunk boundary (``CHUNK_LINES`` lines) and moves
only when the text before the cursor outgrows the budget, then leaves headroom so it rests
again. The end of the suffix is anchored the same way."""

from __future__ import annotations

from dataclasses import dataclass

from engine.definitions.tokens import (
    ASCII_CHARS_PER_TOKEN_BOUND,
    TokenCounts,
    upper_estimate,
)

CHUNK_LINES = 16
# After a move, the window uses this share of its budget, so it can grow before moving again.
REANCHOR_FILL = 0.6


@dataclass
class WindowAnchors:
    """Per document: the chunk the prefix starts at and the chunk the suffix ends before."""

    start_chunk: int = 0
    end_chunk: int = -1
    # The current file's header as it was when the window last moved: re-extracting it on
    # every idle pause would change the prompt before the window whenever a signature is typed.
    file_header: str | None = None
    # Placed on upper bounds (real counts still on their way): placed once more when they are
    # in, so that a window opened before its counts arrived still fills its budget.
    provisional: bool = False
    # Tokens of the file's shares held for its text (engine.completion.context.builder): only
    # grows while the window's start rests (``reserved_at``), so the repository tier's room
    # shrinks in few steps; counted afresh when the window moves.
    reserved: int = 0
    reserved_at: int = 0


@dataclass(frozen=True)
class FileWindow:
    prefix: str  # whole lines from the window start to the cursor's line
    line_prefix: str  # the cursor's line up to the cursor
    line_suffix: str  # the cursor's line after the cursor
    suffix: str  # line_suffix and the lines below it, to the window end
    start_line: int


def anchored_window(
    text: str,
    cursor: int,
    anchors: WindowAnchors,
    counts: TokenCounts,
    prefix_budget: int,
    suffix_budget: int,
) -> FileWindow:
    lines = text.split("\n")
    line = text.count("\n", 0, cursor)
    line_start = text.rfind("\n", 0, cursor) + 1
    line_end = text.find("\n", cursor)
    line_end = len(text) if line_end == -1 else line_end
    cursor_chunk = line // CHUNK_LINES
    if anchors.provisional and all(
        counts.final("\n".join(lines[c * CHUNK_LINES : (c + 1) * CHUNK_LINES]) + "\n")
        for c in range(anchors.start_chunk, max(anchors.end_chunk, anchors.start_chunk))
    ):
        anchors.start_chunk, anchors.end_chunk, anchors.provisional = cursor_chunk + 1, -1, False
    estimated = False

    # Unknown counts (being fetched) are upper bounds: the budget holds on every prompt, and a
    # real count that arrives can only shrink a total, so it never moves an anchor back.
    def chunk_tokens(chunk: int) -> int:
        nonlocal estimated
        start = chunk * CHUNK_LINES
        text = "\n".join(lines[start : start + CHUNK_LINES]) + "\n"
        estimated = estimated or not counts.final(text)
        return counts.upper(text)

    def lines_tokens(first: int, last: int) -> int:
        return counts.upper("\n".join(lines[first:last]) + "\n") if last > first else 0

    def over(budget: int, first_line: int, last_line: int, chunks: range) -> bool:
        total = lines_tokens(first_line, last_line)
        for chunk in chunks:
            total += chunk_tokens(chunk)
            if total > budget:
                return True
        return total > budget

    # Prefix: chunks from the anchor up to the cursor's chunk, then its lines above the cursor.
    start = anchors.start_chunk
    if start > cursor_chunk or over(
        prefix_budget, cursor_chunk * CHUNK_LINES, line, range(start, cursor_chunk)
    ):
        start, total = cursor_chunk, lines_tokens(cursor_chunk * CHUNK_LINES, line)
        while start > 0 and total + chunk_tokens(start - 1) <= prefix_budget * REANCHOR_FILL:
            start -= 1
            total += chunk_tokens(start)
        if start != anchors.start_chunk:
            anchors.file_header = None
        anchors.start_chunk = start
        anchors.provisional = estimated

    # Suffix: the cursor chunk's lines below the cursor, then whole chunks to the anchor.
    last_chunk = (len(lines) - 1) // CHUNK_LINES
    end = anchors.end_chunk
    if end <= cursor_chunk or over(
        suffix_budget, line + 1, (cursor_chunk + 1) * CHUNK_LINES, range(cursor_chunk + 1, end)
    ):
        end, total = cursor_chunk + 1, lines_tokens(line + 1, (cursor_chunk + 1) * CHUNK_LINES)
        while end <= last_chunk and total + chunk_tokens(end) <= suffix_budget * REANCHOR_FILL:
            total += chunk_tokens(end)
            end += 1
        anchors.end_chunk = end
        anchors.provisional = anchors.provisional or estimated

    window_start = start * CHUNK_LINES
    prefix_lines = lines[window_start:line]
    suffix_lines = lines[line + 1 : end * CHUNK_LINES]
    # The cursor's own chunk alone may be over budget (very long lines): cut by lines.
    if start == cursor_chunk and lines_tokens(window_start, line) > prefix_budget:
        prefix_lines = _last_lines_within(prefix_lines, prefix_budget)
        window_start = line - len(prefix_lines)
    if end == cursor_chunk + 1 and lines_tokens(line + 1, end * CHUNK_LINES) > suffix_budget:
        suffix_lines = _last_lines_within(suffix_lines[::-1], suffix_budget)[::-1]
    return FileWindow(
        prefix="\n".join(prefix_lines) + "\n" if prefix_lines else "",
        line_prefix=text[line_start:cursor],
        line_suffix=text[cursor:line_end],
        suffix=text[cursor:line_end] + ("\n" + "\n".join(suffix_lines) if suffix_lines else ""),
        start_line=window_start,
    )


def sliding_window(
    text: str, cursor: int, counts: TokenCounts, prefix_budget: int, suffix_budget: int
) -> FileWindow:
    """The naive window most assistants use (the benchmark's baseline): as many lines as fit,
    counted from the cursor, so its start moves with every line."""
    lines = text.split("\n")
    line = text.count("\n", 0, cursor)
    line_start = text.rfind("\n", 0, cursor) + 1
    line_end = text.find("\n", cursor)
    line_end = len(text) if line_end == -1 else line_end
    first, total = line, 0
    while first > 0 and total + counts.count(lines[first - 1] + "\n") <= prefix_budget:
        first -= 1
        total += counts.count(lines[first] + "\n")
    last, total = line + 1, 0
    while last < len(lines) and total + counts.count(lines[last] + "\n") <= suffix_budget:
        total += counts.count(lines[last] + "\n")
        last += 1
    prefix_lines = lines[first:line]
    suffix_lines = lines[line + 1 : last]
    return FileWindow(
        prefix="\n".join(prefix_lines) + "\n" if prefix_lines else "",
        line_prefix=text[line_start:cursor],
        line_suffix=text[cursor:line_end],
        suffix=text[cursor:line_end] + ("\n" + "\n".join(suffix_lines) if suffix_lines else ""),
        start_line=first,
    )


def _last_lines_within(lines: list[str], budget: int) -> list[str]:
    """The longest tail of ``lines`` whose upper-bound token count fits ``budget``."""
    total = 0
    first = len(lines)
    while first > 0:
        total += upper_estimate(lines[first - 1][: budget * ASCII_CHARS_PER_TOKEN_BOUND + 1] + "\n")
        if total > budget:
            break
        first -= 1
    return lines[first:]


def clip_cursor_line(line_prefix: str, line_suffix: str, budget: int) -> tuple[str, str]:
    """The cursor's line cut to ``budget`` tokens (upper bound): the text nearest the cursor,
    three quarters before it. A minified one-line file must not become a megabyte prompt."""
    before = _clip_chars(line_prefix[::-1], budget * 3 // 4)[::-1]
    after = _clip_chars(line_suffix, budget - budget * 3 // 4)
    return before, after


def _clip_chars(text: str, budget: int) -> str:
    # Any text over this many characters is over budget by the bound: only search below it.
    text = text[: max(budget, 0) * ASCII_CHARS_PER_TOKEN_BOUND]
    if upper_estimate(text) <= budget:
        return text
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if upper_estimate(text[:middle]) <= budget:
            low = middle
        else:
            high = middle - 1
    return text[:low]
