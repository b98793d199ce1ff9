"""The pygls server of one editor connection: the session it serves and how it talks to the
editor. Handlers live in ``lsp.server`` (documents, completions) and ``lsp.actions``."""

from __future__ import annotations

import asyncio
import logging

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from engine import __version__
from engine.notices import Notice
from engine.place import Place
from lsp.documents import open_document
from lsp.protocol import IquestProtocol
from lsp.session import Session
from lsp.settings import SECTION

log = logging.getLogger(__name__)

_NOTICE_TYPES = {
    "error": types.MessageType.Error,
    "warning": types.MessageType.Warning,
    "info": types.MessageType.Info,
}


class IquestServer(LanguageServer):
    def __init__(self, session: Session) -> None:
        super().__init__(
            "iquest-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=session.protocol_cls,
            converter_factory=session.converter_factory,
        )
        self.session = session
        session.notify = self.notify_user
        session.indexing = self.indexing_progress
        self._indexing: dict[str, asyncio.Future[bool]] = {}

    @property
    def rpc(self) -> IquestProtocol:
        """The protocol, as our own class (its adapter over pygls's private state)."""
        protocol = self.protocol
        assert isinstance(protocol, IquestProtocol)
        return protocol

    def notify_user(self, notice: Notice) -> None:
        self.window_show_message(
            types.ShowMessageParams(type=_NOTICE_TYPES[notice.level], message=notice.message)
        )

    def indexing_progress(self, folder: str, done: str | None) -> None:
        """A folder's indexing as work-done progress: begun when ``done`` is None, ended with
        what was done (after its begin, however fast the index was)."""
        window = self.client_capabilities.window
        if not (window and window.work_done_progress):
            return
        token = f"iquest-indexing-{folder}"
        if done is None:
            self._indexing[token] = asyncio.ensure_future(self._begin_indexing(token, folder))
            return
        begun = self._indexing.pop(token, None)
        if begun is None:
            return

        def end(future: asyncio.Future[bool]) -> None:
            if not future.cancelled() and future.result():
                self.work_done_progress.end(token, types.WorkDoneProgressEnd(message=done))

        begun.add_done_callback(end)

    async def _begin_indexing(self, token: str, folder: str) -> bool:
        try:
            await self.work_done_progress.create_async(token)
        except Exception as error:  # a client may refuse: indexing goes on without a bar
            log.info("indexing progress refused: %s", error)
            return False
        self.work_done_progress.begin(
            token, types.WorkDoneProgressBegin(title="iquest: indexing", message=folder)
        )
        return True

    def close_connection(self) -> None:
        """The editor's ``exit`` (lsp.protocol.TeamProtocol)."""
        self.session.close_connection()

    def document(self, uri: str) -> TextDocument:
        """The open document, or an invalid-params error for the editor."""
        document = open_document(self.workspace, uri)
        if document is None:
            raise JsonRpcInvalidParams(f"document {uri[:200]} is not open")
        return document

    def place(self, uri: str) -> Place:
        return self.session.locate(uri, self.workspace.folders.values())

    def can_pull_configuration(self) -> bool:
        workspace = self.client_capabilities.workspace
        return bool(workspace and workspace.configuration)

    async def reload_settings(self) -> None:
        """Asks the editor for its settings (when it can answer) and applies every layer."""
        if self.can_pull_configuration():
            try:
                answer = await self.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
                )
                self.session.layers.set_editor(answer[0] if answer else {})
            except Exception as error:  # a client that cannot answer keeps the other layers
                log.warning("workspace/configuration failed: %s", error)
        await self.session.apply_settings()
