"""Engine answers -> LSP types."""

from __future__ import annotations

import re
from collections.abc import Callable

from lsprotocol import types

from engine.completion.types import Suggestion
from lsp import extensions

_WORD_TAIL = re.compile(r"[\w$]*$")
LABEL_LIMIT = 60


def inline_items(
    suggestion: Suggestion | None, at: types.Position, uri: str
) -> types.InlineCompletionList:
    if suggestion is None:
        return types.InlineCompletionList(items=[])
    # One item per candidate: editors cycle through them (VS Code: Alt+] / Alt+[).
    return types.InlineCompletionList(
        items=[
            types.InlineCompletionItem(
                insert_text=text,
                range=types.Range(start=at, end=at),
                # Clients run an item's command when the user accepts it: the daemon counts
                # what was taken, and which candidate.
                command=types.Command(
                    title="iquest: accepted",
                    command=extensions.ACCEPTED,
                    arguments=[{"uri": uri, "length": len(text), "index": index}],
                ),
            )
            for index, text in enumerate(suggestion.candidates)
        ]
    )


def completion_items(
    suggestion: Suggestion | None,
    at: types.Position,
    line_prefix: str,
    units: Callable[[str], int],
    markdown: bool = True,
) -> types.CompletionList:
    """One item carrying the whole (possibly multi-line) suggestion, for clients without inline
    completion. The edit starts at the word being typed so clients' filtering keeps the item."""
    if suggestion is None:
        return types.CompletionList(is_incomplete=True, items=[])
    word = _WORD_TAIL.search(line_prefix)
    typed = word.group(0) if word else ""
    # Positions are in the negotiated encoding's units (UTF-8 for Helix, UTF-32 for eglot), and
    # \w matches letters that take several of them ("café").
    typed_units = units(typed)
    start = types.Position(line=at.line, character=at.character - typed_units)
    first_line = (typed + suggestion.text).strip().splitlines()[0]
    label = first_line if len(first_line) <= LABEL_LIMIT else first_line[: LABEL_LIMIT - 1] + "…"
    item = types.CompletionItem(
        label=label,
        kind=types.CompletionItemKind.Text,
        detail="iquest",
        # Markdown only for clients that say they render it; the rest get the plain text.
        documentation=types.MarkupContent(
            kind=types.MarkupKind.Markdown, value=f"```\n{typed + suggestion.text}\n```"
        )
        if markdown
        else typed + suggestion.text,
        filter_text=typed + suggestion.text,
        text_edit=types.TextEdit(
            range=types.Range(start=start, end=at), new_text=typed + suggestion.text
        ),
        insert_text_format=types.InsertTextFormat.PlainText,
        sort_text="0",
    )
    return types.CompletionList(is_incomplete=True, items=[item])
