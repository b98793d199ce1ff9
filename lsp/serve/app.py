"""``iquest-lsp --serve``: one daemon next to the team's vLLM, many editors.

pygls's own TCP and WebSocket servers serve one client and exit with it, so connections are
accepted here: LSP over TCP (TLS when a certificate is given) and over WebSocket, each with its
own language server (its user's documents, settings and findings) sharing the engine: model
discovery with its connection pools and token counts, and the server-side checkouts' indexes.

Authentication: on WebSocket, ``Authorization: Bearer`` at the handshake; on TCP, the first
message must be ``initialize`` with ``initializationOptions.token`` (``iquest-lsp connect``
adds it), within ``auth_timeout_s``. Anything else closes the connection; tokens never reach
a log or the language server."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import ssl
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from pygls.io_ import WebSocketWriter
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from engine.completion.models import ModelDirectory
from engine.health import Notice
from engine.scheduling import FairShare
from engine.team.tokens import TokenStore
from engine.workspace import Workspace, default_index_cache
from lsp.serve.framing import FramingError, frame, read_bodies
from lsp.serve.limits import UserLimits, UserUsage
from lsp.serve.team import TeamContext
from lsp.server import IquestServer, build_server

log = logging.getLogger(__name__)

UNAUTHORIZED = -32001  # in the server-defined error range
# Never refused by a limit: the session's own life cycle.
_NEVER_LIMITED = {"initialize", "shutdown"}


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int | None = 7070  # LSP over TCP; TLS with a certificate
    ws_port: int | None = 7071  # LSP over WebSocket, plus GET /healthz and /metrics
    tls_cert: Path | None = None
    tls_key: Path | None = None
    repos: tuple[Path, ...] = ()
    tokens: Path | None = None
    config: Path | None = None
    # One cache salt per user (isolation), or one for the whole team (more cache sharing).
    salt_per: str = "user"
    max_message_bytes: int = 8 * 1024 * 1024
    auth_timeout_s: float = 1.0
    limits: UserLimits = field(default_factory=UserLimits)
    # Worker processes (lsp.serve.workers) each bind the same ports with SO_REUSEPORT; the
    # parent prints the banner.
    reuse_port: bool = False
    announce: bool = True


@dataclass
class _Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        # livesum: with worker processes, the sum over the live ones (a user connected to two
        # workers counts twice).
        self.connections = Gauge(
            "iquest_connections",
            "open editor connections",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.users = Gauge(
            "iquest_users", "distinct users connected", registry=r, multiprocess_mode="livesum"
        )
        self.refused = Counter(
            "iquest_refused_connections_total", "connections refused", ["reason"], registry=r
        )
        self.requests = Counter(
            "iquest_completion_requests_total", "inline completion requests", registry=r
        )
        self.prompt_tokens = Counter(
            "iquest_prompt_tokens_total", "prompt tokens sent to vLLM", registry=r
        )
        self.overhead = Histogram(
            "iquest_request_overhead_seconds",
            "the daemon's own time per backend request (context, prompt, budget)",
            buckets=(0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1),
            registry=r,
        )
        self.latency = Histogram(
            "iquest_completion_latency_seconds",
            "inline suggestion latency, request to answer",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0),
            registry=r,
        )
        self.cancelled = Counter(
            "iquest_cancelled_requests_total",
            "inline requests cancelled or superseded",
            registry=r,
        )
        self.limited = Counter(
            "iquest_limited_messages_total",
            "messages refused by a per-user limit",
            ["method"],
            registry=r,
        )
        self.cached_tokens = Counter(
            "iquest_cached_prompt_tokens_total",
            "prompt tokens vLLM served from its cache",
            registry=r,
        )


class TeamDaemon:
    def __init__(self, options: ServeOptions) -> None:
        self.options = options
        self.tokens = TokenStore(options.tokens)
        self.models = ModelDirectory()
        self.checkouts = Workspace(default_index_cache())
        self.metrics = _Metrics()
        self.fair_share = FairShare()
        self._sessions: dict[int, tuple[str, IquestServer]] = {}
        self._ws_users: dict[int, str] = {}
        self._servers: list[asyncio.Server | Server] = []
        self._usage: dict[str, UserUsage] = {}
        self._last_seen: dict[int, float] = {}
        self._seen: dict[int, tuple[int, ...]] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.bound: dict[str, int] = {}

    # --- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        for repo in self.options.repos:
            self.checkouts.add_folder(repo.resolve())
        context = self._tls_context()
        if self.options.port is not None:
            tcp = await asyncio.start_server(
                self._on_tcp,
                self.options.host,
                self.options.port,
                ssl=context,
                limit=64 * 1024,
                reuse_port=self.options.reuse_port,
            )
            self._servers.append(tcp)
            self.bound["tcp"] = tcp.sockets[0].getsockname()[1]
        if self.options.ws_port is not None:
            ws = await serve(
                self._on_websocket,
                self.options.host,
                self.options.ws_port,
                ssl=context,
                process_request=self._on_http,
                max_size=self.options.max_message_bytes,
                reuse_port=self.options.reuse_port,
            )
            self._servers.append(ws)
            self.bound["ws"] = next(iter(ws.sockets)).getsockname()[1]
        self._reaper = asyncio.create_task(self._close_idle_connections())
        scheme = "tls" if context else "tcp"
        log.info("serving %s", ", ".join(f"{k} port {v}" for k, v in self.bound.items()))
        if not self.options.announce:
            return
        print(
            f"iquest-lsp serving: {scheme}://{self.options.host}:{self.bound.get('tcp')} "
            f"{'wss' if context else 'ws'}://{self.options.host}:{self.bound.get('ws')}",
            flush=True,
        )

    async def aclose(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        for server in self._servers:
            server.close()
        for _, session in list(self._sessions.values()):
            await _close_session(session)
        await self.checkouts.aclose()
        await self.models.aclose()

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.options.tls_cert is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        return context

    # --- sessions ----------------------------------------------------------------------------
    def _visible_checkouts(self, user: str) -> list[Any]:
        """The server-side checkouts this user's tokens allow (all, unless restricted)."""
        entries = [e for e in self.tokens.entries() if e.user == user and not e.revoked]
        if any(e.repos is None for e in entries):
            return list(self.checkouts.indexes)
        allowed = {name for e in entries for name in e.repos or ()}
        return [index for index in self.checkouts.indexes if index.name in allowed]

    def _new_session(self, user: str, close: Any) -> IquestServer:
        salt = (
            f"team:{self.options.salt_per}" if self.options.salt_per == "team" else f"user:{user}"
        )
        team = TeamContext(
            user=user,
            models=self.models,
            repositories=self._visible_checkouts(user),
            cache_salt=salt,
            close=close,
            fair_share=self.fair_share,
        )
        server = build_server(self.options.config, team)
        self._sessions[id(server)] = (user, server)
        self._count()
        log.info("connection for user %s", user)
        return server

    def _end_session(self, server: IquestServer) -> None:
        self._sessions.pop(id(server), None)
        self._last_seen.pop(id(server), None)
        self._account(server)
        self._seen.pop(id(server), None)
        self._count()

    async def _close_idle_connections(self) -> None:
        idle = self.options.limits.idle_timeout_s
        while True:
            await asyncio.sleep(min(30.0, idle / 4))
            now = time.monotonic()
            for key, (user, server) in list(self._sessions.items()):
                if now - self._last_seen.get(key, now) > idle:
                    log.info("closing an idle connection of %s", user)
                    server.close_connection()

    def _usage_of(self, user: str) -> UserUsage:
        return self._usage.setdefault(user, UserUsage(self.options.limits))

    def _sessions_of(self, user: str) -> list[IquestServer]:
        return [server for owner, server in self._sessions.values() if owner == user]

    def _refusal(self, server: IquestServer, message: object, method: object) -> str | None:
        """Why this message must not run (a limit of its user), or None."""
        team = server.team
        assert team is not None
        limits = self.options.limits
        if _is_limited_request(message, method):
            return self._usage_of(team.user).take_request()
        if method == "textDocument/didOpen":
            mine = self._sessions_of(team.user)
            documents = sum(len(s.workspace.text_documents) for s in mine)
            size = sum(len(d.source) for s in mine for d in s.workspace.text_documents.values())
            text = message.params.text_document.text  # type: ignore[attr-defined]
            if documents >= limits.open_documents:
                return f"more than {limits.open_documents} open documents"
            if size + len(text) > limits.document_bytes:
                return f"more than {limits.document_bytes} bytes of open documents"
        return None

    def _count(self) -> None:
        self.metrics.connections.set(len(self._sessions))
        self.metrics.users.set(len({user for user, _ in self._sessions.values()}))

    # --- TCP ---------------------------------------------------------------------------------
    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        bodies = read_bodies(reader, self.options.max_message_bytes)
        server: IquestServer | None = None
        try:
            try:
                first = await asyncio.wait_for(anext(bodies), self.options.auth_timeout_s)
                message = json.loads(first)
            except (TimeoutError, StopAsyncIteration, FramingError, ValueError):
                self.metrics.refused.labels("no initialize with a token").inc()
                return
            user = self._authenticate_initialize(message)
            if user is None:
                self.metrics.refused.labels("bad token").inc()
                error = {"code": UNAUTHORIZED, "message": "unauthorized"}
                writer.write(
                    frame(
                        json.dumps(
                            {"jsonrpc": "2.0", "id": message.get("id"), "error": error}
                        ).encode()
                    )
                )
                await writer.drain()
                return
            server = self._new_session(user, writer.close)
            server.protocol.set_writer(writer)
            self._dispatch(server, first_message=message)
            async for body in bodies:
                self._dispatch(server, body=body)
        except FramingError as error:
            log.warning("closing a connection: %s", error)
        except (ConnectionError, ssl.SSLError) as error:
            log.info("connection lost: %s", error)
        finally:
            if server is not None:
                self._end_session(server)
                await _close_session(server)
            writer.close()

    def _authenticate_initialize(self, message: object) -> str | None:
        if not isinstance(message, dict) or message.get("method") != "initialize":
            return None
        params = message.get("params")
        options = params.get("initializationOptions") if isinstance(params, dict) else None
        token = options.pop("token", None) if isinstance(options, dict) else None
        return self.tokens.user_for(token if isinstance(token, str) else None)

    # --- WebSocket and HTTP --------------------------------------------------------------------
    def _on_http(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            return connection.respond(200, "ok\n")
        if request.path == "/metrics":
            body = generate_latest(_scrape_registry(self.metrics.registry))
            headers = Headers([("Content-Type", "text/plain; version=0.0.4")])
            return Response(200, "OK", headers, body)
        authorization = request.headers.get("Authorization", "")
        token = (
            authorization.removeprefix("Bearer ").strip()
            if authorization.startswith("Bearer ")
            else None
        )
        user = self.tokens.user_for(token)
        if user is None:
            self.metrics.refused.labels("bad token").inc()
            return connection.respond(401, "unauthorized\n")
        self._ws_users[id(connection)] = user
        return None

    async def _on_websocket(self, connection: ServerConnection) -> None:
        user = self._ws_users.pop(id(connection), None)
        if user is None:
            await connection.close(code=1008)
            return
        server = self._new_session(user, lambda: asyncio.ensure_future(connection.close()))
        server.protocol.set_writer(WebSocketWriter(connection), include_headers=False)
        try:
            async for data in connection:
                self._dispatch(server, body=data.encode() if isinstance(data, str) else data)
        except Exception as error:  # a broken socket ends this connection only
            log.info("websocket closed: %s", error)
        finally:
            self._end_session(server)
            await _close_session(server)

    # --- messages ------------------------------------------------------------------------------
    def _dispatch(
        self, server: IquestServer, body: bytes | None = None, first_message: object = None
    ) -> None:
        protocol = server.protocol
        try:
            # One pass: structured as pygls's own reader does it (inner objects first). Only a
            # message that fails is parsed again, plainly, to say what was wrong with it.
            text = json.dumps(first_message) if first_message is not None else body or b""
            message = json.loads(text, object_hook=protocol.structure_message)
        except Exception:
            self._reply_invalid(server, text)
            return
        self._last_seen[id(server)] = time.monotonic()
        method = getattr(message, "method", None)
        refusal = self._refusal(server, message, method)
        if refusal is not None:
            self.metrics.limited.labels(str(method)).inc()
            if hasattr(message, "id"):
                self._reply_error(server, message.id, -32803, f"iquest: limit reached: {refusal}")
            else:
                server.notify_user(Notice("warning", f"iquest: not opened here: {refusal}"))
            return
        try:
            protocol.handle_message(message)
        except Exception:  # pygls answers errors itself; anything else must not end the daemon
            log.exception("a message could not be handled")
        if _is_limited_request(message, method):
            # pygls files the request's handler under its id until it is answered.
            running = protocol._request_futures.get(message.id)
            if running is not None and not running.done():
                assert server.team is not None
                self._usage_of(server.team.user).running(running)
        self._account(server)

    def _reply_invalid(self, server: IquestServer, text: str | bytes) -> None:
        try:
            raw = json.loads(text)
        except ValueError as error:
            self._reply_error(server, None, -32700, f"parse error: {error}")
            return
        method = raw.get("method") if isinstance(raw, dict) else None
        if not isinstance(method, str):
            code, reason = -32600, "invalid request"
        elif server.protocol.get_message_type(method) is not None:
            code, reason = -32602, f"invalid params for {method}"
        else:
            code, reason = -32601, f"unknown method {method}"
        if isinstance(raw, dict) and isinstance(method, str) and "id" not in raw:
            return  # a notification gets no answer, even a wrong one
        self._reply_error(server, raw.get("id") if isinstance(raw, dict) else None, code, reason)

    def _reply_error(self, server: IquestServer, msg_id: object, code: int, text: str) -> None:
        answer = {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": text}}
        server.protocol._send_data(answer)

    def _account(self, server: IquestServer) -> None:
        """Fold this connection's new counts and samples into the daemon's metrics."""
        service = server.completions
        if service is None:
            return
        stats = service.stats
        now = (
            stats.requests,
            stats.prompt_tokens,
            stats.cached_tokens,
            stats.backend_requests,
            stats.suggestions,
            stats.cancelled + stats.superseded,
        )
        seen = self._seen.get(id(server), (0,) * len(now))
        self.metrics.requests.inc(now[0] - seen[0])
        self.metrics.prompt_tokens.inc(now[1] - seen[1])
        self.metrics.cached_tokens.inc(now[2] - seen[2])
        self.metrics.cancelled.inc(now[5] - seen[5])
        for sample in stats.overheads_ms.newest(now[3] - seen[3]):
            self.metrics.overhead.observe(sample / 1000)
        for sample in stats.latencies_ms.newest(now[4] - seen[4]):
            self.metrics.latency.observe(sample / 1000)
        self._seen[id(server)] = now


def _is_limited_request(message: object, method: object) -> bool:
    """A request from the editor (it has an id and a method) that per-user limits apply to."""
    return hasattr(message, "id") and isinstance(method, str) and method not in _NEVER_LIMITED


def _scrape_registry(own: CollectorRegistry) -> CollectorRegistry:
    """This process's metrics, or with worker processes every worker's, summed (prometheus
    multiprocess mode: each process writes its values to files in PROMETHEUS_MULTIPROC_DIR)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return own
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return registry


async def _close_session(server: IquestServer) -> None:
    try:
        if server.completions is not None:
            await server.completions.aclose()
        if server.action_service is not None:
            await server.action_service.aclose()
    except Exception:
        log.exception("closing a session")


async def run_serve(options: ServeOptions, ready: Callable[[], None] | None = None) -> int:
    daemon = TeamDaemon(options)
    await daemon.start()
    if ready is not None:
        ready()
    # What start-up built (modules, grammars, lsprotocol's and pydantic's classes: ~150,000
    # objects) lives as long as the daemon; frozen, a full collection no longer walks it. Those
    # walks stalled every connection for 70-95 ms every few seconds with a hundred editors.
    gc.collect()
    gc.freeze()
    # IQUEST_TRACEMALLOC=FILE: where memory grew between the first minute and the end.
    trace_file = os.environ.get("IQUEST_TRACEMALLOC")
    baseline: list[tracemalloc.Snapshot] = []
    if trace_file:
        tracemalloc.start(12)
        asyncio.get_running_loop().call_later(
            60, lambda: baseline.append(tracemalloc.take_snapshot())
        )
    try:
        await asyncio.Event().wait()
    finally:
        if trace_file and baseline:
            growth = tracemalloc.take_snapshot().compare_to(baseline[0], "traceback")
            lines = []
            for stat in growth[:15]:
                lines.append(f"{stat.size_diff / 1e6:+.2f} MB in {stat.count_diff:+d} blocks")
                lines.extend(f"    {frame}" for frame in stat.traceback.format()[-12:])
            Path(trace_file).write_text("\n".join(lines) + "\n")  # noqa: ASYNC240 (at exit)
        await daemon.aclose()
    return 0
