"""Single-line or multi-line, decided from where the cursor is."""

from __future__ import annotations

from enum import Enum

from engine.completion.context import CursorContext

# Line endings after which a new block starts (Python, C-like, Lua/Ruby, shell).
_BLOCK_OPENERS = (":", "{", "(", "[", "=>", "->", " do", " then")


class LineMode(Enum):
    SINGLE = "single"
    MULTI = "multi"


def choose_line_mode(context: CursorContext, setting: str) -> LineMode:
    if setting == "always":
        return LineMode.MULTI
    if setting == "never":
        return LineMode.SINGLE
    if context.line_suffix.strip():
        # Code after the cursor on the same line: fill the gap, do not break the line.
        return LineMode.SINGLE
    stripped = context.line_prefix.rstrip()
    if not stripped:
        # An empty or indented-only line: the user is starting something new.
        return LineMode.MULTI
    if stripped.endswith(_BLOCK_OPENERS):
        return LineMode.MULTI
    return LineMode.SINGLE
