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


class IquestProtocol(LanguageServerProtocol):
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
            raise JsonRpcInvalidParams() from error
        except Exception as error:
            log.debug("a message that cannot be read: %s", type(error).__name__)
            raise JsonRpcInternalError() from error

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

    @lsp_method(types.EXIT)
    def lsp_exit(self, *args: Any) -> None:  # type: ignore[override]
        close = getattr(self._server, "close_connection", None)
        if callable(close):
            close()
