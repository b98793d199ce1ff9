"""Where editors connect: LSP over TCP (TLS with a certificate) and over WebSocket, with
``GET /healthz`` and ``/metrics`` on the WebSocket port.

Authentication: on WebSocket, ``Authorization: Bearer`` at the handshake; on TCP, the first
message must be ``initialize`` with ``initializationOptions.token`` (``iquest-lsp connect``
adds it), within ``auth_timeout_s`` and ``max_unauthenticated_bytes``. Anything else closes the
connection; tokens never reach a log or the language server.

Before that, a stranger costs little: the TLS handshake has ``tls_handshake_timeout_s``, the
first message ``max_unauthenticated_bytes``, connections are capped in all and per address,
the daemon raises its open-file limit to the hard limit at start, and refusals are logged at a
bounded rate."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

from pygls.io_ import WebSocketWriter
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.team.tokens import TokenEntry, TokenStore
from lsp.log_guard import connection_tag
from lsp.serve.connections import Connection
from lsp.serve.dispatch import Dispatcher
from lsp.serve.framing import FramingError, frame, read_bodies
from lsp.serve.guards import GuardedWriter, RateLimitedLog, transport_buffer
from lsp.serve.metrics import DaemonMetrics
from lsp.serve.options import ServeOptions
from lsp.serve.slots import Slot, SocketSlots

log = logging.getLogger(__name__)

UNAUTHORIZED = -32001  # in the server-defined error range

OpenConnection = Callable[[TokenEntry, Callable[[], None]], Connection]
CloseConnection = Callable[[Connection], Awaitable[None]]


class Listeners:
    def __init__(
        self,
        options: ServeOptions,
        tokens: TokenStore,
        metrics: DaemonMetrics,
        dispatcher: Dispatcher,
        open_connection: OpenConnection,
        close_connection: CloseConnection,
    ) -> None:
        self._options = options
        self._tokens = tokens
        self._metrics = metrics
        self._dispatcher = dispatcher
        self._open = open_connection
        self._close = close_connection
        self._servers: list[asyncio.Server | Server] = []
        # WebSocket upgrades whose token was accepted, until their handler takes them (or
        # the socket is lost first: a failed upgrade never reaches the handler).
        self._ws_pending: dict[int, tuple[TokenEntry, Slot]] = {}
        self._refusals = RateLimitedLog(log)
        # Open sockets by peer address (TCP and WebSocket together).
        self.slots = SocketSlots(
            options.max_connections,
            options.max_connections_per_address,
            options.new_connections_per_address_per_s,
            options.new_connections_burst,
        )
        self.slots.on_change = metrics.sockets.set

        self._closing: set[asyncio.Future[None]] = set()
        self.bound: dict[str, int] = {}
        self.tls = False

    async def start(self) -> None:
        options = self._options
        context = self._tls_context()
        self.tls = context is not None
        if options.port is not None:
            # A socket that never says hello waits tls_handshake_timeout_s at most (asyncio's
            # default, 60 s, let a few hundred of them exhaust the file descriptors).
            tcp = await asyncio.start_server(
                self._on_tcp,
                options.host,
                options.port,
                ssl=context,
                ssl_handshake_timeout=options.tls_handshake_timeout_s if context else None,
                limit=64 * 1024,
                reuse_port=options.reuse_port,
            )
            self._servers.append(tcp)
            self.bound["tcp"] = tcp.sockets[0].getsockname()[1]
        if options.ws_port is not None:
            ws = await serve(
                self._on_websocket,
                options.host,
                options.ws_port,
                ssl=context,
                process_request=self._on_http,
                max_size=options.max_message_bytes,
                reuse_port=options.reuse_port,
                ssl_handshake_timeout=options.tls_handshake_timeout_s if context else None,
                open_timeout=max(2.0, options.auth_timeout_s * 2),
            )
            self._servers.append(ws)
            self.bound["ws"] = next(iter(ws.sockets)).getsockname()[1]

    def close(self) -> None:
        for server in self._servers:
            server.close()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self._options.tls_cert is None:
            return None
        return server_tls_context(self._options.tls_cert, self._options.tls_key)

    # --- TCP ---------------------------------------------------------------------------------
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        slot = self._admit(_address(writer.get_extra_info("peername")))
        if slot is None:
            writer.close()
            return
        try:
            await self._serve_tcp(reader, writer)
        finally:
            slot.release()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        options = self._options
        connection: Connection | None = None
        try:
            bodies = read_bodies(
                reader, options.max_message_bytes, options.max_unauthenticated_bytes
            )
            try:
                first = await asyncio.wait_for(anext(bodies), options.auth_timeout_s)
                message = json.loads(first)
            except (
                TimeoutError,
                StopAsyncIteration,
                FramingError,
                ValueError,
                RecursionError,
            ) as error:
                self._metrics.refused.labels("no initialize with a token").inc()
                self._refusals.info(
                    "refused a connection: no initialize with a token (%s)", _kind(error)
                )
                return
            entry = self._authenticate_initialize(message)
            if entry is None:
                self._metrics.refused.labels("bad token").inc()
                self._refusals.info("refused a connection: bad token")
                refusal = {"code": UNAUTHORIZED, "message": "unauthorized"}
                msg_id = message.get("id") if isinstance(message, dict) else None
                answer = {
                    "jsonrpc": "2.0",
                    "id": msg_id if isinstance(msg_id, int | str) else None,
                    "error": refusal,
                }
                writer.write(frame(json.dumps(answer).encode()))
                await writer.drain()
                return
            connection = self._open(entry, writer.close)
            connection_tag.set(id(connection))  # this task's log lines are this connection's
            connection.server.protocol.set_writer(
                GuardedWriter(
                    writer,
                    transport_buffer(writer.transport),
                    options.max_unsent_bytes,
                    writer.close,
                )
            )
            self._dispatcher.dispatch(connection, first_message=message)
            async for body in bodies:
                await self._dispatcher.pace(connection, body)
                self._dispatcher.dispatch(connection, body=body)
        except FramingError as error:
            log.warning("closing a connection: %s", error)
        except (ConnectionError, ssl.SSLError, TimeoutError) as error:
            log.info("connection lost: %s", _kind(error))
        finally:
            if connection is not None:
                await self._close(connection)
            writer.close()

    def _admit(self, address: str) -> Slot | None:
        """A slot for a new socket from ``address``, unless a cap is reached."""
        taken = self.slots.take(address)
        if isinstance(taken, Slot):
            return taken
        self._metrics.refused.labels(taken).inc()
        self._refusals.info("refused a connection: %s", taken)
        return None

    def _authenticate_initialize(self, message: object) -> TokenEntry | None:
        if not isinstance(message, dict) or message.get("method") != "initialize":
            return None
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        token = options.pop("token", None) if isinstance(options, dict) else None
        return self._tokens.entry_for(token if isinstance(token, str) else None)

    # --- WebSocket and HTTP --------------------------------------------------------------------
    def _on_http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(200, "ok\n")
        if request.path == "/metrics":
            headers = Headers([("Content-Type", "text/plain; version=0.0.4")])
            return Response(200, "OK", headers, self._metrics.scrape())
        # One Authorization header, or none accepted (several made the lookup fail: a 500).
        values = request.headers.get_all("Authorization")
        authorization = values[0] if len(values) == 1 else ""
        token = (
            authorization.removeprefix("Bearer ").strip()
            if authorization.startswith("Bearer ")
            else None
        )
        entry = self._tokens.entry_for(token)
        if entry is None:
            self._metrics.refused.labels("bad token").inc()
            self._refusals.info("refused a WebSocket connection: bad token")
            return connection.respond(401, "unauthorized\n")
        slot = self._admit(_address(connection.remote_address))
        if slot is None:
            return connection.respond(503, "too many connections\n")
        key = id(connection)
        self._ws_pending[key] = (entry, slot)

        def lost(_: object) -> None:
            # Every way a socket ends (normal close, reset, failed upgrade, handshake
            # timeout, TLS error) loses its connection: the one place its slot is sure to
            # be given back.
            self._ws_pending.pop(key, None)
            slot.release()

        connection.connection_lost_waiter.add_done_callback(lost)
        return None

    async def _on_websocket(self, socket: ServerConnection) -> None:
        pending = self._ws_pending.pop(id(socket), None)
        if pending is None:
            await socket.close(code=1008)
            return
        entry, slot = pending
        try:
            await self._serve_websocket(socket, entry)
        finally:
            slot.release()

    async def _serve_websocket(self, socket: ServerConnection, entry: TokenEntry) -> None:
        def close() -> None:
            closing = asyncio.ensure_future(socket.close())
            self._closing.add(closing)  # held until done: a task nobody holds may vanish
            closing.add_done_callback(self._closing.discard)

        connection = self._open(entry, close)
        connection_tag.set(id(connection))
        writer = GuardedWriter(
            WebSocketWriter(socket),
            transport_buffer(socket.transport),
            self._options.max_unsent_bytes,
            close,
        )
        connection.server.protocol.set_writer(writer, include_headers=False)
        try:
            async for data in socket:
                body = data.encode() if isinstance(data, str) else data
                await self._dispatcher.pace(connection, body)
                self._dispatcher.dispatch(connection, body=body)
        except Exception as error:  # a broken socket ends this connection only
            log.info("websocket closed: %s", _kind(error))
        finally:
            await self._close(connection)


# TLS 1.2 only with forward secrecy and an AEAD cipher (CBC suites are refused); TLS 1.3's
# suites are all AEAD and not set by this string.
TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL"


def server_tls_context(cert: Path, key: Path | None) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.load_cert_chain(cert, key)
    return context


def _address(peer: object) -> str:
    """The peer's IP address (a socket's peername is a tuple; anything else is one bucket)."""
    return str(peer[0]) if isinstance(peer, tuple) and peer else "unknown"


def _kind(error: BaseException) -> str:
    """An error's kind and a short reason, never a client's bytes at length."""
    return f"{type(error).__name__}: {str(error)[:120]}"
