"""pygls's protocol with ``workspace/executeCommand`` awaited in the request's own task.

Stock pygls runs a command in a sub-task, so ``$/cancelRequest`` answers -32800 while the
command (a long model stream) keeps running. Awaiting it here lets cancellation reach it."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Generator
from typing import Any

from cattrs.errors import ClassValidationError
from lsprotocol import types
from pygls.exceptions import JsonRpcInternalError, JsonRpcInvalidParams
from pygls.protocol import JsonRPCNotification, JsonRPCRequestMessage, LanguageServerProtocol
from pygls.protocol.json_rpc import JsonRPCResponseMessage, ResponseErrorMessage
from pygls.protocol.language_server import lsp_method

log = logging.getLogger(__name__)


# LSP's "server not initialized" error code.
SERVER_NOT_INITIALIZED = -32002
# What an editor hears of an error inside the daemon: never a traceback or a file path (they
# go to the daemon's log).
INTERNAL_ERROR = "iquest: internal error (the daemon's log has the details)"


# What a message that was answered or dropped becomes (a notification nobody handles).
SKIPPED = "$/iquest/skipped"


class IquestProtocol(LanguageServerProtocol):
    """pygls's protocol, with the only reads of pygls's private state (checked against the
    pinned pygls by tests/test_pygls_adapter.py): what the rest of the daemon needs of it
    goes through the public methods below."""

    # Over stdio a malformed request is answered here (see _answered_invalid); the team daemon
    # answers it itself, after counting it against its user's limits (lsp.serve.dispatch).
    answers_malformed_requests = True
    # Set once `initialize` has arrived: before it, requests are answered -32002 (LSP) and
    # notifications dropped, instead of reaching handlers that need a workspace.
    initialize_seen = False

    # --- the adapter: pygls private state, read here only ------------------------------------
    def running_request(self, msg_id: Any) -> Any:
        """The future of a client request still being handled, or None (pygls files each
        under its id in ``_request_futures`` until it is answered)."""
        future = self._request_futures.get(msg_id)
        return future if future is not None and not future.done() else None

    def send_raw(self, message: dict[str, Any]) -> None:
        """Sends a JSON-RPC message the daemon built itself (an error for a message pygls never
        saw)."""
        self._send_data(message)

    def open_documents(self) -> dict[str, Any]:
        """The connection's open documents by URI; none before ``initialize`` (pygls's
        ``workspace`` property raises until then)."""
        workspace = getattr(self, "_workspace", None)
        return workspace.text_documents if workspace is not None else {}

    # --- behaviour ---------------------------------------------------------------------------
    def handle_message(self, message: Any) -> None:
        method = getattr(message, "method", None)
        if method == SKIPPED:
            return  # answered already, or dropped with a line in the log
        if method == types.INITIALIZE:
            self.initialize_seen = True
        elif not self.initialize_seen and method is not None and method != types.EXIT:
            if hasattr(message, "id"):
                self._send_response(
                    message.id,
                    error=types.ResponseError(
                        SERVER_NOT_INITIALIZED, "the server is not initialized: send initialize"
                    ),
                )
            return
        super().handle_message(message)

    def _send_response(
        self, msg_id: Any, result: Any = None, error: types.ResponseError | None = None
    ) -> None:
        """pygls answers an exception in a handler with its type, message and traceback (file
        paths of the server included): the editor gets a plain line instead."""
        if error is not None and error.code == JsonRpcInternalError.CODE:
            log.warning("an internal error answered to the editor: %s", error.message[:300])
            error = types.ResponseError(error.code, INTERNAL_ERROR)
        elif error is not None and error.data is not None:
            error = types.ResponseError(error.code, error.message)
        super()._send_response(msg_id, result, error)

    def structure_message(self, data: dict[str, Any]) -> Any:
        """pygls's own, less its log: pygls logged a whole traceback for each malformed message
        (a request without params), so a client could fill the log at will. The error still
        reaches the client; the log gets one short line."""
        if "jsonrpc" not in data:
            return data
        try:
            if "id" in data:
                if "error" in data:
                    return self._converter.structure(data, ResponseErrorMessage)
                if "method" in data:
                    kind = self.get_message_type(data["method"]) or JsonRPCRequestMessage
                    return self._converter.structure(data, kind)
                kind = self._result_types.pop(data["id"], None) or JsonRPCResponseMessage
                return self._converter.structure(data, kind)
            method = data.get("method", "")
            kind = self.get_message_type(method) or JsonRPCNotification
            return self._converter.structure(data, kind)
        except ClassValidationError as error:
            log.debug("a malformed message: %s", str(error)[:200])
            if self.answers_malformed_requests:
                return self._answered_invalid(data)
            raise JsonRpcInvalidParams() from error
        except Exception as error:
            log.debug("a message that cannot be read: %s", type(error).__name__)
            if self.answers_malformed_requests:
                return self._answered_invalid(data)
            raise JsonRpcInternalError() from error

    def _answered_invalid(self, data: dict[str, Any]) -> JsonRPCNotification:
        """Over stdio pygls's reader only logs a message it cannot read: a malformed request
        (``iquest/stats`` without params) was never answered and its editor waited for ever.
        It is answered here; what the reader goes on with is a notification that does
        nothing."""
        method, msg_id = data.get("method"), data.get("id")
        if "method" in data and isinstance(msg_id, int | str):
            name = method[:100] if isinstance(method, str) else "a request"
            self._send_response(
                msg_id,
                error=types.ResponseError(JsonRpcInvalidParams.CODE, f"invalid params for {name}"),
            )
        return JsonRPCNotification(method=SKIPPED, jsonrpc="2.0", params=None)

    def _execute_handler(
        self, msg_id: Any, handler: Any, callback: Any, *args: Any, **kwargs: Any
    ) -> None:
        """pygls 2.1.1 files every handler it runs under ``msg_id`` in ``_request_futures`` but
        only forgets the futures of client requests: every notification (each keystroke's
        didChange) left one behind for the life of the session. Forget each when it is done."""
        super()._execute_handler(msg_id, handler, callback, *args, **kwargs)
        future = self._request_futures.get(msg_id)
        if future is None:
            return

        def forget(done: Any, key: Any = msg_id) -> None:
            if self._request_futures.get(key) is done:
                del self._request_futures[key]

        if future.done():
            forget(future)
        else:
            future.add_done_callback(forget)

    @lsp_method(types.SHUTDOWN)
    def lsp_shutdown(self, *args: Any) -> Generator[Any, Any, None]:
        """pygls's own, iterating over a copy: cancelling a pending request runs ``forget``
        above, and pygls's loop over the live dict then failed ("dictionary changed size
        during iteration"), so ``shutdown`` with a request in flight answered an error."""
        if (user_handler := self.fm.features.get(types.SHUTDOWN)) is not None:
            yield user_handler, args, None
        current_id = self.msg_id
        for msg_id, future in list(self._request_futures.items()):
            if msg_id != current_id and not future.done():
                future.cancel()
        self._shutdown = True

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    async def lsp_workspace__execute_command(  # type: ignore[override]
        self, params: types.ExecuteCommandParams
    ) -> Any:
        handler = self.fm.commands.get(params.command)
        if handler is None:
            raise JsonRpcInvalidParams(f"command {params.command!r} is not defined")
        result = handler(*(params.arguments or []))
        return await result if inspect.isawaitable(result) else result


class TeamProtocol(IquestProtocol):
    """Team mode: an editor's ``exit`` closes its own connection, never the daemon."""

    answers_malformed_requests = False

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]
        close = getattr(self._server, "close_connection", None)
        if callable(close):
            close()
