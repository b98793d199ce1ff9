"""Where editors connect: LSP over TCP (TLS with a certificate) and over WebSocket, with
``GET /healthz`` and ``/metrics`` on the WebSocket port.

Authentication: on WebSocket, ``Authorization: Bearer`` at the handshake; on TCP, the first
message must be ``initialize`` with ``initializationOptions.token`` (``iquest-lsp connect``
adds it), within ``auth_timeout_s``. Anything else closes the connection; tokens never reach
a log or the language server."""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable

from pygls.io_ import WebSocketWriter
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.team.tokens import TokenStore
from lsp.serve.connections import Connection
from lsp.serve.dispatch import Dispatcher
from lsp.serve.framing import FramingError, frame, read_bodies
from lsp.serve.metrics import DaemonMetrics
from lsp.serve.options import ServeOptions

log = logging.getLogger(__name__)

UNAUTHORIZED = -32001  # in the server-defined error range

OpenConnection = Callable[[str, Callable[[], None]], Connection]
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
        self._ws_users: dict[int, str] = {}
        self._closing: set[asyncio.Future[None]] = set()
        self.bound: dict[str, int] = {}
        self.tls = False

    async def start(self) -> None:
        options = self._options
        context = self._tls_context()
        self.tls = context is not None
        if options.port is not None:
            tcp = await asyncio.start_server(
                self._on_tcp,
                options.host,
                options.port,
                ssl=context,
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
            )
            self._servers.append(ws)
            self.bound["ws"] = next(iter(ws.sockets)).getsockname()[1]

    def close(self) -> None:
        for server in self._servers:
            server.close()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self._options.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self._options.tls_cert, self._options.tls_key)
        return context

    # --- TCP ---------------------------------------------------------------------------------
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies = read_bodies(reader, self._options.max_message_bytes)
        connection: Connection | None = None
        try:
            try:
                first = await asyncio.wait_for(anext(bodies), self._options.auth_timeout_s)
                message = json.loads(first)
            except (TimeoutError, StopAsyncIteration, FramingError, ValueError):
                self._metrics.refused.labels("no initialize with a token").inc()
                return
            user = self._authenticate_initialize(message)
            if user is None:
                self._metrics.refused.labels("bad token").inc()
                error = {"code": UNAUTHORIZED, "message": "unauthorized"}
                answer = {"jsonrpc": "2.0", "id": message.get("id"), "error": error}
                writer.write(frame(json.dumps(answer).encode()))
                await writer.drain()
                return
            connection = self._open(user, writer.close)
            connection.server.protocol.set_writer(writer)
            self._dispatcher.dispatch(connection, first_message=message)
            async for body in bodies:
                self._dispatcher.dispatch(connection, body=body)
        except FramingError as error:
            log.warning("closing a connection: %s", error)
        except (ConnectionError, ssl.SSLError) as error:
            log.info("connection lost: %s", error)
        finally:
            if connection is not None:
                await self._close(connection)
            writer.close()

    def _authenticate_initialize(self, message: object) -> str | None:
        if not isinstance(message, dict) or message.get("method") != "initialize":
            return None
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        token = options.pop("token", None) if isinstance(options, dict) else None
        return self._tokens.user_for(token if isinstance(token, str) else None)

    # --- WebSocket and HTTP --------------------------------------------------------------------
    def _on_http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(200, "ok\n")
        if request.path == "/metrics":
            headers = Headers([("Content-Type", "text/plain; version=0.0.4")])
            return Response(200, "OK", headers, self._metrics.scrape())
        authorization = request.headers.get("Authorization", "")
        token = (
            authorization.removeprefix("Bearer ").strip()
            if authorization.startswith("Bearer ")
            else None
        )
        user = self._tokens.user_for(token)
        if user is None:
            self._metrics.refused.labels("bad token").inc()
            return connection.respond(401, "unauthorized\n")
        self._ws_users[id(connection)] = user
        return None

    async def _on_websocket(self, socket: ServerConnection) -> None:
        user = self._ws_users.pop(id(socket), None)
        if user is None:
            await socket.close(code=1008)
            return

        def close() -> None:
            closing = asyncio.ensure_future(socket.close())
            self._closing.add(closing)  # held until done: a task nobody holds may vanish
            closing.add_done_callback(self._closing.discard)

        connection = self._open(user, close)
        connection.server.protocol.set_writer(WebSocketWriter(socket), include_headers=False)
        try:
            async for data in socket:
                body = data.encode() if isinstance(data, str) else data
                self._dispatcher.dispatch(connection, body=body)
        except Exception as error:  # a broken socket ends this connection only
            log.info("websocket closed: %s", error)
        finally:
            await self._close(connection)
