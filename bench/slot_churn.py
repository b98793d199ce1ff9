"""Connection churn from one address: every way an editor's socket can start and end, each
cycled many times, so that a slot not given back on some path shows as a lockout.

Used by ``bench.abuse`` (the ``slot-churn`` attack, beside honest editors) and by
tests/test_slot_churn.py (against a daemon with a small per-address cap, where a leak on any
path locks the address out within a few cycles)."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from lsp.serve.framing import frame


@dataclass(frozen=True)
class Target:
    host: str
    tcp_port: int
    ws_port: int
    token: str
    # A client context when the daemon speaks TLS; None for plain TCP and ws://.
    tls: ssl.SSLContext | None = None
    # The client's own address (an attacker on another address than honest editors).
    local_host: str | None = None

    def _local(self) -> tuple[str, int] | None:
        return (self.local_host, 0) if self.local_host else None

    async def open_tcp(
        self, port: int, tls: bool = True
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(
            self.host,
            port,
            ssl=self.tls if tls else None,
            server_hostname=self.host if (tls and self.tls) else None,
            local_addr=self._local(),
        )


Cycle = Callable[[Target], Awaitable[None]]


class Refused(Exception):
    """The daemon answered otherwise than this cycle expects (a lockout shows as a 503)."""


def _initialize(token: str) -> bytes:
    hello = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "processId": None,
            "capabilities": {},
            "initializationOptions": {"token": token},
        },
    }
    return frame(json.dumps(hello).encode())


async def _answered(reader: asyncio.StreamReader) -> None:
    """Waits for the first answer's header (the daemon has taken the connection)."""
    await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Ends the socket with a TCP reset, as a client that crashed or lost its network."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _closed(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), 5)
    except (ConnectionError, ssl.SSLError, TimeoutError):
        pass


async def tcp_close(target: Target) -> None:
    reader, writer = await target.open_tcp(target.tcp_port)
    writer.write(_initialize(target.token))
    await _answered(reader)
    await _closed(writer)


async def tcp_reset(target: Target) -> None:
    reader, writer = await target.open_tcp(target.tcp_port)
    writer.write(_initialize(target.token))
    await _answered(reader)
    _reset(writer)


async def tcp_bad_token(target: Target) -> None:
    reader, writer = await target.open_tcp(target.tcp_port)
    writer.write(_initialize("not-a-token"))
    await _answered(reader)
    await _closed(writer)


async def tcp_silent(target: Target) -> None:
    """Connected (TLS included), then gone before saying anything."""
    _, writer = await target.open_tcp(target.tcp_port)
    await _closed(writer)


async def tls_garbage(target: Target) -> None:
    """Plain bytes to a TLS port: the TLS handshake fails."""
    reader, writer = await target.open_tcp(target.tcp_port, tls=False)
    writer.write(b"GET / HTTP/1.1\r\n\r\n" * 8)
    try:
        await asyncio.wait_for(reader.read(), 5)
    except (ConnectionError, TimeoutError):
        pass
    await _closed(writer)


def _upgrade(target: Target, token: str, upgrade: bool) -> bytes:
    lines = [
        "GET / HTTP/1.1",
        f"Host: {target.host}:{target.ws_port}",
        f"Authorization: Bearer {token}",
    ]
    if upgrade:
        lines += [
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _ws_handshake(
    target: Target, token: str, expected: bytes, upgrade: bool = True
) -> asyncio.StreamWriter:
    reader, writer = await target.open_tcp(target.ws_port)
    writer.write(_upgrade(target, token, upgrade))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = head.split(b"\r\n", 1)[0]
    if not status.startswith(b"HTTP/1.1 " + expected):
        writer.close()
        raise Refused(status.decode("latin-1"))
    return writer


async def ws_close(target: Target) -> None:
    writer = await _ws_handshake(target, target.token, b"101")
    writer.write(b"\x88\x82" + b"\x00\x00\x00\x00" + struct.pack("!H", 1000))  # close frame
    await _closed(writer)


async def ws_reset(target: Target) -> None:
    _reset(await _ws_handshake(target, target.token, b"101"))


async def ws_bad_token(target: Target) -> None:
    await _closed(await _ws_handshake(target, "not-a-token", b"401"))


async def ws_failed_upgrade(target: Target) -> None:
    """A valid token, then a request that is no WebSocket upgrade: refused after the token
    was accepted."""
    await _closed(await _ws_handshake(target, target.token, b"4", upgrade=False))


async def ws_silent(target: Target) -> None:
    _, writer = await target.open_tcp(target.ws_port)
    await _closed(writer)


CYCLES: dict[str, Cycle] = {
    "tcp-close": tcp_close,
    "tcp-reset": tcp_reset,
    "tcp-bad-token": tcp_bad_token,
    "tcp-silent": tcp_silent,
    "tls-garbage": tls_garbage,
    "ws-close": ws_close,
    "ws-reset": ws_reset,
    "ws-bad-token": ws_bad_token,
    "ws-failed-upgrade": ws_failed_upgrade,
    "ws-silent": ws_silent,
}


def cycles_for(target: Target) -> dict[str, Cycle]:
    """The cycles that make sense for ``target`` (a TLS failure needs a TLS port)."""
    return {
        name: cycle
        for name, cycle in CYCLES.items()
        if target.tls is not None or name != "tls-garbage"
    }


async def churn(target: Target, cycle: Cycle, count: int, parallel: int = 4) -> list[str]:
    """Runs ``cycle`` ``count`` times, ``parallel`` at a time; the errors met (a lockout
    shows as refusals: 503s, resets, closed sockets)."""
    errors: list[str] = []
    left = iter(range(count))

    async def worker() -> None:
        for _ in left:
            try:
                await cycle(target)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, Refused) as error:
                errors.append(f"{type(error).__name__}: {str(error)[:100]}")

    await asyncio.gather(*(worker() for _ in range(parallel)))
    return errors


async def open_sockets(ws_port: int, host: str = "127.0.0.1") -> float:
    """The daemon's ``iquest_open_sockets`` from its /metrics (summed over its workers)."""
    import httpx

    async with httpx.AsyncClient() as http:
        scraped = (await http.get(f"http://{host}:{ws_port}/metrics")).text
    return sum(
        float(line.split()[-1])
        for line in scraped.splitlines()
        if line.startswith("iquest_open_sockets")
    )


async def served_over_websocket(ws_port: int, token: str, host: str = "127.0.0.1") -> bool:
    """Whether a new ws:// connection with ``token`` gets an answer at once."""
    from websockets.asyncio.client import connect

    async with connect(
        f"ws://{host}:{ws_port}", additional_headers={"Authorization": f"Bearer {token}"}
    ) as socket:
        await socket.send('{"jsonrpc": "2.0", "id": 1, "method": "iquest/stats"}')
        answer = await asyncio.wait_for(socket.recv(), 5)
    return (b'"id": 1' if isinstance(answer, bytes) else '"id": 1') in answer
