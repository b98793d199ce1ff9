"""LSP's base protocol on a byte stream, with limits: headers, then a body of Content-Length.

pygls's reader trusts Content-Length; facing the network, a header over the limit or a body
larger than allowed closes the connection instead of allocating what a stranger asks for."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

MAX_HEADER_LINE = 1024
MAX_HEADERS = 8


class FramingError(ValueError):
    """The stream is not LSP framing (or breaks a limit): the connection must close."""


async def read_bodies(reader: asyncio.StreamReader, max_bytes: int) -> AsyncIterator[bytes]:
    """Each message body; ends at a clean end of stream, raises FramingError otherwise."""
    while True:
        length: int | None = None
        for count in range(MAX_HEADERS + 1):
            try:
                line = await reader.readuntil(b"\r\n")
            except asyncio.IncompleteReadError as error:
                if not error.partial and count == 0:
                    return  # the peer closed between messages
                raise FramingError("the stream ended inside a header") from error
            except asyncio.LimitOverrunError as error:
                raise FramingError("a header line is too long") from error
            if len(line) > MAX_HEADER_LINE:
                raise FramingError("a header line is too long")
            if line == b"\r\n":
                break
            name, _, value = line.decode("ascii", "replace").partition(":")
            if name.strip().lower() == "content-length":
                try:
                    length = int(value.strip())
                except ValueError as error:
                    raise FramingError(
                        f"Content-Length is not a number: {value.strip()!r}"
                    ) from error
        else:
            raise FramingError("too many header lines")
        if length is None or length < 0:
            raise FramingError("a message without Content-Length")
        if length > max_bytes:
            raise FramingError(f"a message of {length} bytes (the limit is {max_bytes})")
        try:
            yield await reader.readexactly(length)
        except asyncio.IncompleteReadError as error:
            raise FramingError("the stream ended inside a message") from error


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
