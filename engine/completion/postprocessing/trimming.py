"""Cutting the model's text: while it streams (to stop early) and once it is complete."""

from __future__ import annotations

from engine.completion.context import CursorContext
from engine.completion.postprocessing.line_mode import LineMode


class StreamCutter:
    """Accumulates streamed text and says when enough has arrived, so the stream can be closed
    (which makes vLLM abort the request and free the GPU for someone else)."""

    def __init__(
        self,
        stop: tuple[str, ...],
        mode: LineMode,
        max_lines: int = 40,
        block_indent: int | None = None,
    ) -> None:
        self._stop = stop
        self._mode = mode
        self._max_lines = max_lines
        # Multi-line text ends where a later line dedents below this (the block is over).
        self._block_indent = block_indent
        self.text = ""
        self.done = False

    def feed(self, piece: str) -> None:
        if self.done:
            return
        self.text += piece
        cut = _cut_at_stop(self.text, self._stop)
        if cut is not None:
            self.text, self.done = cut, True
            return
        if self._mode is LineMode.SINGLE:
            newline = self._first_content_newline()
            if newline is not None:
                self.text, self.done = self.text[:newline], True
            return
        lines = self.text.split("\n")
        end = _block_end(lines, self._block_indent)
        if end is not None:
            self.text, self.done = "\n".join(lines[:end]), True
        elif len(lines) > self._max_lines:
            self.text, self.done = "\n".join(lines[: self._max_lines]), True

    def _first_content_newline(self) -> int | None:
        # A suggestion may start with a line break (the cursor sits at a line end and the
        # model continues on the next line); single-line mode keeps that one line.
        start = len(self.text) - len(self.text.lstrip("\n"))
        if start == len(self.text):
            return None
        index = self.text.find("\n", start)
        return None if index == -1 else index


def block_indent(context: CursorContext) -> int | None:
    """The indentation below which multi-line text has left the cursor's block, if any.

    On an indented blank line the block is the cursor's indentation; after a block opener
    (``if x:``) it is deeper than the opener's line. At the top level nothing ends a block."""
    line = context.line_prefix
    indent = len(line) - len(line.lstrip(" \t"))
    if not line.strip():
        return indent if indent > 0 else None
    return indent + 1


def _block_end(lines: list[str], indent: int | None) -> int | None:
    """Index of the first complete line (not the first, which continues the cursor's line) that
    dedents below ``indent``."""
    if indent is None:
        return None
    for index, line in enumerate(lines[1:-1], start=1):  # the last line may still grow
        if line.strip() and len(line) - len(line.lstrip(" \t")) < indent:
            return index
    return None


def finalize(raw: str, context: CursorContext, stop: tuple[str, ...]) -> str | None:
    """The text to show, or None when nothing worth showing is left."""
    text = _cut_at_stop(raw, stop)
    text = raw if text is None else text
    text = _drop_suffix_repeat(text, context)
    if context.line_prefix.strip() == "":
        # The cursor's line is still empty: do not start the suggestion with a blank line.
        text = _drop_repeated_indent(text.lstrip("\n"), context)
    text = text.rstrip()
    return text if text.strip() else None


def _drop_repeated_indent(text: str, context: CursorContext) -> str:
    """On an indented blank line, models often indent their first line again (the tokenizer
    split the cursor's whitespace differently): keep the indentation the editor already has."""
    typed = context.line_prefix
    if not typed or typed.strip():
        return text
    leading = len(text) - len(text.lstrip(" \t"))
    return text[min(leading, len(typed)) :]


def _cut_at_stop(text: str, stop: tuple[str, ...]) -> str | None:
    positions = [i for s in stop if s and (i := text.find(s)) != -1]
    return text[: min(positions)] if positions else None


def _drop_suffix_repeat(text: str, context: CursorContext) -> str:
    """Remove what the editor already has after the cursor, so accepting does not duplicate it.

    Two cases: the suggestion ends with the rest of the line (``)`` or ``):`` the editor
    auto-closed), or it runs on into lines that already follow the cursor.
    """
    rest_of_line = context.line_suffix.strip()
    if rest_of_line and "\n" not in text and text.rstrip().endswith(rest_of_line):
        return text.rstrip()[: -len(rest_of_line)]

    following = [line.strip() for line in context.suffix.split("\n")[1:] if line.strip()]
    if not following:
        return text
    lines = text.split("\n")
    first_following = following[0]
    for index, line in enumerate(lines):
        # The first of the lines already below the cursor: the suggestion has run into them.
        if index > 0 and line.strip() and line.strip() == first_following:
            return "\n".join(lines[:index])
    return text
