"""One message of an authenticated connection: paced and checked against its user's limits,
handed to the connection's language server, and a clear error for anything malformed.

Limits cover notifications too: every message costs its user work (``UserUsage.paced``); an
edit that would take the user's documents past their cap closes that document instead (the
editor is told); notebooks count their cells as documents."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from lsprotocol import types

from engine.notices import Notice
from lsp import extensions
from lsp.serve.connections import Connection, Connections
from lsp.serve.limits import UserLimits
from lsp.serve.metrics import DaemonMetrics

log = logging.getLogger(__name__)

# Never refused by a limit: the session's own life cycle.
_NEVER_LIMITED = {"initialize", "shutdown"}
REQUEST_FAILED = -32803
# Metric labels come from this set, never from what a client sent.
_KNOWN_METHODS = frozenset({*types.METHOD_TO_TYPES, extensions.STATS, extensions.PARTIAL_ACCEPT})


class Dispatcher:
    def __init__(
        self, limits: UserLimits, metrics: DaemonMetrics, connections: Connections
    ) -> None:
        self._limits = limits
        self._metrics = metrics
        self._connections = connections

    async def pace(self, connection: Connection, body: bytes) -> None:
        """Before reading on: the user's work so far must be within their allowance."""
        cost = max(len(body), self._limits.message_cost)
        await self._connections.usage(connection.user).paced(cost)

    def dispatch(
        self, connection: Connection, body: bytes | None = None, first_message: object = None
    ) -> None:
        server = connection.server
        protocol = server.protocol
        connection.last_seen = time.monotonic()
        try:
            # One pass: structured as pygls's own reader does it (inner objects first). Only a
            # message that fails is parsed again, plainly, to say what was wrong with it.
            text = json.dumps(first_message) if first_message is not None else body or b""
            message = json.loads(text, object_hook=protocol.structure_message)
        except Exception:
            self._reply_invalid(connection, text)
            return
        method = getattr(message, "method", None)
        refusal = self._refusal(connection, message, method)
        if refusal is not None:
            self._metrics.limited.labels(metric_method(method)).inc()
            if hasattr(message, "id"):
                self._reply_error(
                    connection, message.id, REQUEST_FAILED, f"iquest: limit reached: {refusal}"
                )
            elif method == types.TEXT_DOCUMENT_DID_CHANGE:
                self._stop_following(connection, message.params.text_document.uri, refusal)  # type: ignore[attr-defined]
            else:
                server.notify_user(Notice("warning", f"iquest: not opened here: {refusal}"))
            return
        try:
            protocol.handle_message(message)
        except Exception:  # pygls answers errors itself; anything else must not end the daemon
            log.exception("a message could not be handled")
        if _is_limited_request(message, method):
            running = server.rpc.running_request(message.id)
            if running is not None:
                self._connections.usage(connection.user).running(running)
                # Its counts (prompt tokens, latency) reach /metrics when it ends, not with
                # the connection's next message.
                running.add_done_callback(lambda _: connection.fold_stats())
        connection.fold_stats()

    def _refusal(self, connection: Connection, message: Any, method: object) -> str | None:
        """Why this message must not run (a limit of its user), or None."""
        usage = self._connections.usage(connection.user)
        if _is_limited_request(message, method):
            return usage.take_request()
        if method == types.TEXT_DOCUMENT_DID_OPEN:
            item = message.params.text_document
            return self._room_for(connection, documents=1, size=len(item.text))
        if method == types.NOTEBOOK_DOCUMENT_DID_OPEN:
            cells = message.params.cell_text_documents or []
            return self._room_for(connection, len(cells), sum(len(c.text) for c in cells))
        if method == types.NOTEBOOK_DOCUMENT_DID_CHANGE:
            cells = message.params.change.cells
            opened = (cells.structure.did_open or []) if cells and cells.structure else []
            edits = cells.text_content or [] if cells else []
            grown = sum(len(c.text) for c in opened) + sum(
                len(change.text) for edit in edits for change in edit.changes
            )
            return self._room_for(connection, len(opened), grown)
        if method == types.TEXT_DOCUMENT_DID_CHANGE:
            params = message.params
            document = _documents(connection.server).get(params.text_document.uri)
            # Applying an edit copies the document: its size is the work it costs.
            usage.charge(len(document.source) if document is not None else 0)
            grown = sum(len(change.text) for change in params.content_changes)
            return self._room_for(connection, 0, grown)
        return None

    def _room_for(self, connection: Connection, documents: int, size: int) -> str | None:
        limits = self._limits
        mine = [_documents(c.server) for c in self._connections.of_user(connection.user)]
        if sum(len(d) for d in mine) + documents > limits.open_documents:
            return f"more than {limits.open_documents} open documents"
        held = sum(len(d.source) for docs in mine for d in docs.values())
        if held + size > limits.document_bytes:
            return f"more than {limits.document_bytes} bytes of open documents"
        return None

    def _stop_following(self, connection: Connection, uri: str, refusal: str) -> None:
        """An edit past the cap cannot be dropped (the copy would no longer match the editor's):
        the document is closed here instead, and the editor told."""
        from lsp.server import on_did_close  # the handler a real close runs

        server = connection.server
        try:
            on_did_close(
                server,
                types.DidCloseTextDocumentParams(
                    text_document=types.TextDocumentIdentifier(uri=uri)
                ),
            )
            server.workspace.remove_text_document(uri)
        except Exception:
            log.exception("closing a document over the limit")
        server.notify_user(
            Notice("warning", f"iquest: no more suggestions in this document: {refusal}")
        )

    def _reply_invalid(self, connection: Connection, text: str | bytes) -> None:
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as error:
            self._reply_error(connection, None, -32700, f"parse error: {str(error)[:100]}")
            return
        method = raw.get("method") if isinstance(raw, dict) else None
        msg_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(msg_id, int | str):
            msg_id = None
        if isinstance(raw, dict) and isinstance(method, str) and "id" in raw:
            # A malformed request is still a request: it counts against the rate limit.
            refusal = self._connections.usage(connection.user).take_request()
            if refusal is not None:
                self._metrics.limited.labels(metric_method(method)).inc()
                self._reply_error(
                    connection, msg_id, REQUEST_FAILED, f"iquest: limit reached: {refusal}"
                )
                return
        if not isinstance(method, str):
            code, reason = -32600, "invalid request"
        elif connection.server.protocol.get_message_type(method) is not None:
            code, reason = -32602, f"invalid params for {metric_method(method)}"
        else:
            code, reason = -32601, "unknown method"
        if isinstance(raw, dict) and isinstance(method, str) and "id" not in raw:
            return  # a notification gets no answer, even a wrong one
        self._reply_error(connection, msg_id, code, reason)

    def _reply_error(self, connection: Connection, msg_id: object, code: int, text: str) -> None:
        answer = {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": text}}
        connection.server.rpc.send_raw(answer)


def metric_method(method: object) -> str:
    """A method as a metric label: one of a fixed set."""
    if isinstance(method, str) and method in _KNOWN_METHODS:
        return method
    return "other" if isinstance(method, str) else "invalid"


def _documents(server: Any) -> dict[str, Any]:
    """A connection's open documents; none before it is initialized (one editor's early
    message must not break another's)."""
    documents: dict[str, Any] = server.rpc.open_documents()
    return documents


def _is_limited_request(message: object, method: object) -> bool:
    """A request from the editor (it has an id and a method) that per-user limits apply to."""
    return hasattr(message, "id") and isinstance(method, str) and method not in _NEVER_LIMITED
