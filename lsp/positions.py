"""LSP positions (UTF-16 units by default) to code-point offsets, refusing positions that are
not in the document."""

from __future__ import annotations

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.workspace import TextDocument


def offset_at(document: TextDocument, position: types.Position) -> int:
    lines = document.lines
    if position.line < 0 or position.character < 0:
        raise _outside(document, position)
    if position.line >= len(lines):
        # The empty line after a final newline (or of an empty document) is in the document.
        at_end = position.line == len(lines) and (not lines or lines[-1].endswith("\n"))
        if at_end and position.character == 0:
            return len(document.source)
        raise _outside(document, position)
    content = lines[position.line].rstrip("\r\n")
    # LSP: a character past the end of the line means the end of the line.
    character = min(position.character, document.position_codec.client_num_units(content))
    clamped = types.Position(line=position.line, character=character)
    server = document.position_codec.position_from_client_units(lines, clamped)
    return sum(len(line) for line in lines[: server.line]) + server.character


def _outside(document: TextDocument, position: types.Position) -> JsonRpcInvalidParams:
    return JsonRpcInvalidParams(
        f"position {position.line}:{position.character} is outside {document.uri} "
        f"({len(document.lines)} lines)"
    )


def position_at(document: TextDocument, offset: int) -> types.Position:
    """The client-units position of a code-point offset (clamped to the document)."""
    text = document.source
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset)
    line_start = text.rfind("\n", 0, offset) + 1
    units = document.position_codec.client_num_units(text[line_start:offset])
    return types.Position(line=line, character=units)


def range_offsets(document: TextDocument, range_: types.Range) -> tuple[int, int]:
    start, end = offset_at(document, range_.start), offset_at(document, range_.end)
    return (start, end) if start <= end else (end, start)


def range_at(document: TextDocument, start: int, end: int) -> types.Range:
    """The client-units range of two code-point offsets."""
    return types.Range(start=position_at(document, start), end=position_at(document, end))


def clamped(document: TextDocument, range_: types.Range) -> types.Range:
    """A range whose end lies past the last line (a whole-lines range at the end of a file
    without a final newline) ends at the document's end instead."""
    end_of_document = position_at(document, len(document.source))

    def clamp(position: types.Position) -> types.Position:
        return end_of_document if position.line > end_of_document.line else position

    return types.Range(start=clamp(range_.start), end=clamp(range_.end))
