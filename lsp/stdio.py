"""The editor's own daemon over stdin/stdout, read with limits.

pygls's reader trusts a message's Content-Length: ``Content-Length: 100000000000000`` made it
allocate that much and the server die with MemoryError. Here a header line is bounded, and a
body over the limit is read through in small pieces and dropped (with one log line), so the
stream stays in step and the session goes on."""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from typing import BinaryIO

from pygls.io_ import StdoutWriter, run_async

from lsp.language_server import IquestServer

log = logging.getLogger(__name__)

# The largest message read: well above any file an editor opens whole (the team daemon's
# limits are smaller: there the peer is not trusted).
MAX_MESSAGE_BYTES = 256 * 1024 * 1024
MAX_HEADER_LINE = 1024
_CHUNK = 1 << 16
# What a dropped message becomes: a notification pygls ignores (``$/`` methods are optional).
_SKIPPED = b'{"jsonrpc": "2.0", "method": "$/iquest/skipped"}'  # lsp.protocol.SKIPPED


class BoundedStdinReader:
    """pygls's reader interface over a binary stream, with limits."""

    def __init__(self, stdin: BinaryIO, max_bytes: int = MAX_MESSAGE_BYTES) -> None:
        self._stdin = stdin
        self._max_bytes = max_bytes

    async def readline(self) -> bytes:
        return await asyncio.to_thread(self._stdin.readline, MAX_HEADER_LINE)

    async def readexactly(self, length: int) -> bytes:
        if length <= self._max_bytes:
            return await asyncio.to_thread(self._stdin.read, length)
        log.error("a message of %d bytes (the limit is %d): skipped", length, self._max_bytes)
        left = length
        while left > 0:
            chunk = await asyncio.to_thread(self._stdin.read, min(left, _CHUNK))
            if not chunk:
                return b""  # the stream ended: the session ends as it would anyway
            left -= len(chunk)
        return _SKIPPED


def serve_stdio(
    server: IquestServer, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None
) -> None:
    """pygls's ``start_io``, with the bounded reader."""
    server._stop_event = threading.Event()
    server.protocol.set_writer(StdoutWriter(stdout or sys.stdout.buffer))
    reader = BoundedStdinReader(stdin or sys.stdin.buffer, MAX_MESSAGE_BYTES)
    try:
        asyncio.run(
            run_async(
                stop_event=server._stop_event,
                reader=reader,
                protocol=server.protocol,
                logger=log,
                error_handler=server.report_server_error,
            )
        )
    except BrokenPipeError:
        log.error("the connection to the editor is lost: shutting down")
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.shutdown()
