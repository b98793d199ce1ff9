"""``iquest-lsp connect URL``: stdio <-> a team server, so every editor launches a local command.

The token comes from ``$IQUEST_TOKEN`` or ``--token-file``, never from argv (which other users
of the machine can read). On TCP it is added to the ``initialize`` message; on WebSocket it is
sent as ``Authorization: Bearer`` at the handshake."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import ssl
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidMessage, InvalidStatus

from lsp.serve.framing import frame, read_bodies

# What the editor sends: generous, the server applies its own limit.
MAX_FROM_EDITOR = 256 * 1024 * 1024


class BridgeError(RuntimeError):
    pass


def read_token(token_file: Path | None, warn: Callable[[str], None] = lambda _: None) -> str:
    """The token from ``token_file`` (``~`` expanded) or $IQUEST_TOKEN; a file others can read
    is used, with a warning."""
    if token_file is None:
        token = os.environ.get("IQUEST_TOKEN", "").strip()
        if not token:
            raise BridgeError("no token: set IQUEST_TOKEN or pass --token-file")
        return token
    path = token_file.expanduser()
    try:
        mode = path.stat().st_mode
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise BridgeError(
            f"token file {path} not found: save the token `iquest-lsp token add NAME` printed "
            "there (chmod 600)"
        ) from None
    except (OSError, UnicodeDecodeError) as error:
        raise BridgeError(f"cannot read token file {path}: {error}") from None
    if not token:
        raise BridgeError(f"token file {path} is empty: save your token there")
    if mode & 0o077:
        warn(
            f"warning: token file {path} is mode {mode & 0o777:o}: others can read your "
            f"token; chmod 600 {path}"
        )
    return token


def cleartext_warning(url: str) -> str | None:
    """What to tell the user when their token would cross the network unencrypted."""
    target = urlparse(url)
    if target.scheme in ("tcp", "ws") and not is_loopback(target.hostname or ""):
        return (
            f"warning: {url} is not encrypted: your token and your code cross the network in "
            f"clear. Use {'tls' if target.scheme == 'tcp' else 'wss'}:// instead."
        )
    return None


def is_loopback(host: str) -> bool:
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_bridge(url: str, token: str, ca_file: Path | None = None) -> int:
    target = urlparse(url)
    secure = target.scheme in ("tls", "wss")
    context = (
        ssl.create_default_context(cafile=str(ca_file) if ca_file else None) if secure else None
    )
    if target.scheme not in ("tcp", "tls", "ws", "wss"):
        raise BridgeError(f"{url}: the scheme must be tcp, tls, ws or wss")
    if target.scheme in ("tcp", "tls") and (not target.hostname or not target.port):
        raise BridgeError(f"{url}: expected tcp://HOST:PORT or tls://HOST:PORT")
    stdin = await _stdin_reader()
    bodies = aiter(read_bodies(stdin, MAX_FROM_EDITOR))
    # Connect once the editor has spoken: the daemon gives a connection a second to present
    # its token, and an editor may take longer than that to send `initialize` after starting
    # the bridge (a busy machine, a slow plugin host).
    first = await anext(bodies, None)
    if first is None:
        return 0
    try:
        return await _relay(url, target.scheme, target, context, token, first, bodies)
    except BridgeError:
        raise
    except Exception as error:
        raise BridgeError(explain_failure(url, error)) from error


def explain_failure(url: str, error: BaseException) -> str:
    """One line on why a connection to a team server failed, and what to do."""
    scheme = urlparse(url).scheme
    if isinstance(error, InvalidStatus):
        status = error.response.status_code
        if status == 401:
            return (
                f"{url} refused the token (HTTP 401): check it, or ask for a new one "
                "(iquest-lsp token add NAME on the server)"
            )
        return f"{url} refused the connection (HTTP {status})"
    if isinstance(error, InvalidHandshake | InvalidMessage | EOFError):
        return (
            f"{url} did not answer as a WebSocket server: ws:// and wss:// go to the daemon's "
            "--ws-port (7071 by default), tcp:// and tls:// to its --port (7070)"
        )
    if isinstance(error, ssl.SSLCertVerificationError):
        return (
            f"{url}: the server's certificate is not trusted ({error.verify_message}): pass "
            "--ca-file with the CA that signed it"
        )
    if isinstance(error, ssl.SSLError) or (
        scheme in ("tls", "wss") and isinstance(error, ConnectionResetError)
    ):
        plain = "tcp" if scheme == "tls" else "ws"
        reason = error.reason if isinstance(error, ssl.SSLError) else type(error).__name__
        return (
            f"TLS with {url} failed ({reason}): is the server started with --tls-cert? "
            f"A server without it takes {plain}://"
        )
    if isinstance(error, ConnectionRefusedError):
        return f"nothing listens at {url}: is iquest-lsp --serve running there, on that port?"
    if isinstance(error, OSError):
        return f"cannot connect to {url}: {error.strerror or type(error).__name__}"
    return f"connection to {url} failed: {type(error).__name__}: {str(error)[:200]}"


async def _relay(
    url: str,
    scheme: str,
    target: Any,
    context: ssl.SSLContext | None,
    token: str,
    first: bytes,
    bodies: Any,
) -> int:
    if scheme in ("tcp", "tls"):
        assert target.hostname and target.port
        reader, writer = await asyncio.open_connection(target.hostname, target.port, ssl=context)

        async def upstream() -> None:
            writer.write(frame(_with_token(first, token)))
            await writer.drain()
            async for body in bodies:
                writer.write(frame(body))
                await writer.drain()
            writer.close()

        refused = False

        async def downstream() -> None:
            nonlocal refused
            first = True
            while chunk := await reader.read(65536):
                # The daemon answers a bad token's `initialize` with UNAUTHORIZED and closes:
                # the editor gets that answer, the command line a line saying what to do.
                refused = refused or (first and b'"code": -32001' in chunk)
                first = False
                _write_stdout(chunk)

        await _until_either(upstream(), downstream())
        if refused:
            raise BridgeError(
                f"{url} refused the token: check it, or ask for a new one "
                "(iquest-lsp token add NAME on the server)"
            )
        return 0
    async with connect(
        url,
        additional_headers={"Authorization": f"Bearer {token}"},
        ssl=context,
        max_size=None,
    ) as socket:

        async def ws_upstream() -> None:
            await socket.send(first.decode("utf-8"))
            async for body in bodies:
                await socket.send(body.decode("utf-8"))

        async def ws_downstream() -> None:
            async for message in socket:
                _write_stdout(frame(message.encode() if isinstance(message, str) else message))

        await _until_either(ws_upstream(), ws_downstream())
    return 0


def _with_token(body: bytes, token: str) -> bytes:
    message = json.loads(body)
    if isinstance(message, dict) and message.get("method") == "initialize":
        params = message.setdefault("params", {})
        options = params.get("initializationOptions")
        if not isinstance(options, dict):
            options = {} if options is None else {"iquest": options}
        options["token"] = token
        params["initializationOptions"] = options
        return json.dumps(message).encode()
    return body


async def _stdin_reader() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1024 * 1024)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer)
    return reader


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


async def _until_either(*jobs: Coroutine[Any, Any, None]) -> None:
    tasks = [asyncio.ensure_future(job) for job in jobs]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    for task in done:
        error = task.exception()
        if error is not None and not isinstance(error, ConnectionError):
            raise error
