"""pygls's protocol with ``workspace/executeCommand`` awaited in the request's own task.

Stock pygls runs a command in a sub-task, so ``$/cancelRequest`` answers -32800 while the
command (a long model stream) keeps running. Awaiting it here lets cancellation reach it."""

from __future__ import annotations

import inspect
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.language_server import lsp_method


class IquestProtocol(LanguageServerProtocol):
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
