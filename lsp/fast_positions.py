"""pygls's position codec, in C-speed string operations instead of a Python loop per
character: on a 4 MiB line, each edit cost pygls 1.5 s of event-loop time (every editor on a
team daemon waited). Same answers as pygls's codec, quirks included."""

from __future__ import annotations

from collections.abc import Sequence

from lsprotocol import types
from pygls.workspace import position_codec as pygls_codec
from pygls.workspace.position_codec import PositionCodec, ServerTextPosition, UnitCounter


class _Utf16(pygls_codec.Utf16):
    def num_units(self, chars: str) -> int:
        if chars.isascii():  # O(1) in CPython: a flag of the string
            return len(chars)
        return len(chars.encode("utf-16-le", "surrogatepass")) // 2

    def column_from_utf32(self, line: str, column: int) -> int:
        return self.num_units(line[:column])

    def index_at(self, line: str, units: int) -> int:
        return _decoded_length(line.encode("utf-16-le", "surrogatepass")[: 2 * units], "utf-16-le")


class _Utf8(pygls_codec.Utf8):
    def num_units(self, chars: str) -> int:
        if chars.isascii():
            return len(chars)
        return len(chars.encode("utf-8", "surrogatepass"))

    def column_from_utf32(self, line: str, column: int) -> int:
        return self.num_units(line[:column])

    def index_at(self, line: str, units: int) -> int:
        return _decoded_length(line.encode("utf-8", "surrogatepass")[:units], "utf-8")


class _Utf32(pygls_codec.Utf32):
    def index_at(self, line: str, units: int) -> int:
        return min(units, len(line))


def _decoded_length(data: bytes, codec: str) -> int:
    """How many characters start in ``data``: one cut at the end (half a surrogate pair, part
    of a UTF-8 sequence) counts, as pygls's loop counts a character it steps into."""
    try:
        return len(data.decode(codec, "surrogatepass"))
    except UnicodeDecodeError as error:
        return len(data[: error.start].decode(codec, "surrogatepass")) + 1


_FAST: dict[object, UnitCounter] = {
    types.PositionEncodingKind.Utf8: _Utf8(),
    types.PositionEncodingKind.Utf16: _Utf16(),
    types.PositionEncodingKind.Utf32: _Utf32(),
}


class FastPositionCodec(PositionCodec):
    def __init__(self, encoding: types.PositionEncodingKind | str | None = None) -> None:
        super().__init__(encoding or types.PositionEncodingKind.Utf16)
        self.impl = _FAST.get(self.encoding, _FAST[types.PositionEncodingKind.Utf16])

    def position_from_client_units(
        self, lines: Sequence[str], position: types.Position
    ) -> ServerTextPosition:
        if len(lines) == 0:
            return ServerTextPosition(0, 0)
        if position.line >= len(lines):
            return ServerTextPosition(len(lines) - 1, self.impl.num_units(lines[-1]))
        line = lines[position.line].replace("\r\n", "\n")
        client_len = self.impl.num_units(line)
        if client_len == 0:
            return ServerTextPosition(position.line, 0)
        character = position.character
        if character > client_len:
            character = client_len - 1  # as pygls does
        if line.isascii():
            return ServerTextPosition(position.line, min(character, len(line)))
        index = self.impl.index_at(line, character)  # type: ignore[attr-defined]
        return ServerTextPosition(position.line, min(index, len(line)))


def use_fast_positions(workspace: object) -> None:
    """Gives a pygls workspace (before any document opens) the fast codec."""
    current = getattr(workspace, "_position_codec", None)
    if isinstance(current, PositionCodec) and not isinstance(current, FastPositionCodec):
        workspace._position_codec = FastPositionCodec(current.encoding)  # type: ignore[attr-defined]
