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


async def read_bodies(
    reader: asyncio.StreamReader, max_bytes: int, first_max_bytes: int | None = None
) -> AsyncIterator[bytes]:
    """Each message body; ends at a clean end of stream, raises FramingError otherwise.
    ``first_max_bytes``: a smaller limit for the first message (before authentication)."""
    limit = first_max_bytes if first_max_bytes is not None else max_bytes
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
        if length > limit:
            raise FramingError(f"a message of {length} bytes (the limit is {limit})")
        try:
            body = await reader.readexactly(length)
        except asyncio.IncompleteReadError as error:
            raise FramingError("the stream ended inside a message") from error
        limit = max_bytes
        yield body


def frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
