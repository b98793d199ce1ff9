"""One message of an authenticated connection: parsed, checked against its user's limits,
handed to the connection's language server, and a clear error for anything malformed."""

from __future__ import annotations

import json
import logging
import time

from engine.notices import Notice
from lsp.serve.connections import Connection, Connections
from lsp.serve.limits import UserLimits
from lsp.serve.metrics import DaemonMetrics

log = logging.getLogger(__name__)

# Never refused by a limit: the session's own life cycle.
_NEVER_LIMITED = {"initialize", "shutdown"}
REQUEST_FAILED = -32803


class Dispatcher:
    def __init__(
        self, limits: UserLimits, metrics: DaemonMetrics, connections: Connections
    ) -> None:
        self._limits = limits
        self._metrics = metrics
        self._connections = connections

    def dispatch(
        self, connection: Connection, body: bytes | None = None, first_message: object = None
    ) -> None:
        server = connection.server
        protocol = server.protocol
        try:
            # One pass: structured as pygls's own reader does it (inner objects first). Only a
            # message that fails is parsed again, plainly, to say what was wrong with it.
            text = json.dumps(first_message) if first_message is not None else body or b""
            message = json.loads(text, object_hook=protocol.structure_message)
        except Exception:
            self._reply_invalid(connection, text)
            return
        connection.last_seen = time.monotonic()
        method = getattr(message, "method", None)
        refusal = self._refusal(connection, message, method)
        if refusal is not None:
            self._metrics.limited.labels(str(method)).inc()
            if hasattr(message, "id"):
                self._reply_error(
                    connection, message.id, REQUEST_FAILED, f"iquest: limit reached: {refusal}"
                )
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
                self._connections.usage(connection.user).running(running)
        connection.fold_stats()

    def _refusal(self, connection: Connection, message: object, method: object) -> str | None:
        """Why this message must not run (a limit of its user), or None."""
        limits = self._limits
        if _is_limited_request(message, method):
            return self._connections.usage(connection.user).take_request()
        if method == "textDocument/didOpen":
            mine = [c.server.workspace for c in self._connections.of_user(connection.user)]
            documents = sum(len(w.text_documents) for w in mine)
            size = sum(len(d.source) for w in mine for d in w.text_documents.values())
            text = message.params.text_document.text  # type: ignore[attr-defined]
            if documents >= limits.open_documents:
                return f"more than {limits.open_documents} open documents"
            if size + len(text) > limits.document_bytes:
                return f"more than {limits.document_bytes} bytes of open documents"
        return None

    def _reply_invalid(self, connection: Connection, text: str | bytes) -> None:
        try:
            raw = json.loads(text)
        except ValueError as error:
            self._reply_error(connection, None, -32700, f"parse error: {error}")
            return
        method = raw.get("method") if isinstance(raw, dict) else None
        if not isinstance(method, str):
            code, reason = -32600, "invalid request"
        elif connection.server.protocol.get_message_type(method) is not None:
            code, reason = -32602, f"invalid params for {method}"
        else:
            code, reason = -32601, f"unknown method {method}"
        if isinstance(raw, dict) and isinstance(method, str) and "id" not in raw:
            return  # a notification gets no answer, even a wrong one
        self._reply_error(
            connection, raw.get("id") if isinstance(raw, dict) else None, code, reason
        )

    def _reply_error(self, connection: Connection, msg_id: object, code: int, text: str) -> None:
        answer = {"jsonrpc": "2.0", "id": msg_id, "error": {"code": code, "message": text}}
        connection.server.protocol._send_data(answer)


def _is_limited_request(message: object, method: object) -> bool:
    """A request from the editor (it has an id and a method) that per-user limits apply to."""
    return hasattr(message, "id") and isinstance(method, str) and method not in _NEVER_LIMITED
