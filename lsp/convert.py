"""Engine answers -> LSP types."""

from __future__ import annotations

import re

from lsprotocol import types

from engine.completion.types import Suggestion

_WORD_TAIL = re.compile(r"[\w$]*$")
LABEL_LIMIT = 60


def inline_items(suggestion: Suggestion | None, at: types.Position) -> types.InlineCompletionList:
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    item = types.InlineCompletionItem(
        insert_text=suggestion.text, range=types.Range(start=at, end=at)
    )
    return types.InlineCompletionList(items=[item])


def completion_items(
    suggestion: Suggestion | None, at: types.Position, line_prefix: str
) -> types.CompletionList:
    """One item carrying the whole (possibly multi-line) suggestion, for clients without inline
    completion. The edit starts at the word being typed so clients' filtering keeps the item."""
    if suggestion is None:
        return types.CompletionList(is_incomplete=True, items=[])
    word = _WORD_TAIL.search(line_prefix)
    typed = word.group(0) if word else ""
    # Positions here are in the client's units; the typed word is ASCII-safe for \w in most code,
    # and for the rare astral character we count UTF-16 units.
    typed_units = sum(2 if ord(c) > 0xFFFF else 1 for c in typed)
    start = types.Position(line=at.line, character=at.character - typed_units)
    first_line = (typed + suggestion.text).strip().splitlines()[0]
    label = first_line if len(first_line) <= LABEL_LIMIT else first_line[: LABEL_LIMIT - 1] + "…"
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="iquest",
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=f"```\n{typed + suggestion.text}\n```"
        ),
        filter_text=typed + suggestion.text,
        text_edit=types.TextEdit(
            range=types.Range(start=start, end=at), new_text=typed + suggestion.text
        ),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
    )
    return types.CompletionList(is_incomplete=True, items=[item])
