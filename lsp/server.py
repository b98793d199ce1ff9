"""The language server: thin handlers that hand documents to the engine and convert answers."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path
from typing import Any

import platformdirs
from cattrs import Converter
from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.protocol import default_converter
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from engine import __version__
from engine.actions.findings import FindingsStore
from engine.actions.service import ActionService
from engine.completion.context import ContextBuilder
from engine.completion.pipeline import CompletionService
from engine.completion.types import CompletionRequest, Suggestion
from engine.config import APP_NAME, Settings, SettingsError, default_log_path
from engine.health import Notice, OutageTracker
from engine.replicas import session_id
from engine.workspace import Workspace, default_index_cache
from lsp import actions, convert
from lsp.documents import open_document
from lsp.logging_setup import attach_client_logging, configure_file_logging
from lsp.positions import offset_at
from lsp.protocol import IquestProtocol, TeamProtocol
from lsp.serve.team import TeamContext
from lsp.settings import SECTION, SettingsLayers

log = logging.getLogger(__name__)

STATS_METHOD = "iquest/stats"
# Sent by the editor plugins when the user takes part of a suggestion (next word or line).
PARTIAL_ACCEPT_NOTIFICATION = "iquest/didPartiallyAccept"
_NOTICE_TYPES = {
    "error": types.MessageType.Error,
    "warning": types.MessageType.Warning,
    "info": types.MessageType.Info,
}


class IquestServer(LanguageServer):
    def __init__(self, config_path: Path | None = None, team: TeamContext | None = None) -> None:
        super().__init__(
            "iquest-lsp",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            protocol_cls=TeamProtocol if team else IquestProtocol,
            # Team mode: one converter for every connection. cattrs compiles its structuring
            # code per converter and type, which per connection cost thousands of compiles.
            converter_factory=_shared_converter if team else default_converter,
        )
        self.team = team
        forced = {"completion": {"cache_salt": team.cache_salt}} if team else None
        self.layers = SettingsLayers(config_path, forced)
        # Team mode: the editor's folders (paths on its machine) -> server-side checkouts.
        self.path_map: list[tuple[Path, Path]] = []
        self.completions: CompletionService | None = None
        self.action_service: ActionService | None = None
        self.findings = FindingsStore()
        self.outages = OutageTracker(self.notify_user)
        self.folders: list[Path] = []
        self.engine_workspace: Workspace | None = None

    def notify_user(self, notice: Notice) -> None:
        self.window_show_message(
            types.ShowMessageParams(type=_NOTICE_TYPES[notice.level], message=notice.message)
        )

    def service(self) -> CompletionService:
        if self.completions is None:
            # A client that skips `initialized` still gets completions on file/env settings.
            self.completions = self._new_service(self._settings_or_defaults())
        return self.completions

    def actions(self) -> ActionService:
        if self.action_service is None:
            settings = self.service().settings

            def completion_context() -> ContextBuilder | None:
                served = self.completions.served_model if self.completions else None
                return served.context if served else None

            self.action_service = ActionService(
                settings,
                self.notify_user,
                self.outages,
                self.engine_workspace,
                completion_context,
                share=self.team.share if self.team else None,
            )
        return self.action_service

    def explanations_dir(self) -> Path:
        return Path(platformdirs.user_cache_dir(APP_NAME)) / "explanations"

    def close_connection(self) -> None:
        if self.team is not None:
            self.team.close()

    def session_for(self, workspace_name: str | None) -> str:
        """The replica-affinity key of this user's work in a folder (X-Session-ID)."""
        return session_id(self.team.user if self.team else None, workspace_name)

    def session_for_document(self, uri: str) -> str:
        return self.session_for(_workspace_path(self, uri)[1])

    def server_path(self, uri: str) -> Path | None:
        """Where a document would live on this machine: in team mode, the client's folder is
        swapped for the server-side checkout of the same name."""
        path = to_fs_path(uri)
        if path is None:
            return None
        for client_root, server_root in self.path_map:
            if Path(path).is_relative_to(client_root):
                return server_root / Path(path).relative_to(client_root)
        return Path(path)

    def _new_service(self, settings: Settings) -> CompletionService:
        if self.team is not None:
            if self.engine_workspace is None:
                self.engine_workspace = Workspace(None, settings.index.exclude)
                self.engine_workspace.indexes.extend(self.team.repositories)
            return CompletionService(
                settings,
                self.notify_user,
                self.engine_workspace,
                self.outages,
                self.team.models,
                share=self.team.share,
            )
        if settings.index.enabled and self.folders and self.engine_workspace is None:
            cache = (
                Path(settings.index.cache_dir)
                if settings.index.cache_dir
                else (default_index_cache())
            )
            log_file = Path(settings.log_file) if settings.log_file else default_log_path()
            self.engine_workspace = Workspace(
                cache,
                settings.index.exclude,
                own_files=(log_file,),
                on_failure=lambda message: self.notify_user(Notice("warning", message)),
            )
            for folder in self.folders:
                self.engine_workspace.add_folder(folder)
        return CompletionService(settings, self.notify_user, self.engine_workspace, self.outages)

    def _configure_logging(self, settings: Settings) -> None:
        if self.team is not None:
            return  # the daemon's own logging; no editor may redirect it
        configure_file_logging(
            Path(settings.log_file) if settings.log_file else default_log_path(), settings.log_level
        )

    def _settings_or_defaults(self) -> Settings:
        try:
            return self.layers.build()
        except SettingsError as error:
            self.notify_user(Notice("error", f"iquest: {error}; using defaults"))
            return Settings()

    async def reload_settings(self) -> None:
        if _client_can_configure(self):
            try:
                answer = await self.workspace_configuration_async(
                    types.ConfigurationParams(items=[types.ConfigurationItem(section=SECTION)])
                )
                self.layers.set_editor(answer[0] if answer else {})
            except Exception as error:  # a client that cannot answer keeps the other layers
                log.warning("workspace/configuration failed: %s", error)
        if self.completions is None:
            settings = self._settings_or_defaults()
            self._configure_logging(settings)
            self.completions = self._new_service(settings)
            await self.completions.start()
            return
        try:
            settings = self.layers.build()
        except SettingsError as error:
            self.notify_user(Notice("error", f"iquest: {error}; keeping the previous settings"))
            return
        self._configure_logging(settings)
        await self.completions.reconfigure(settings)
        if self.action_service is not None:
            await self.action_service.reconfigure(settings)


@functools.cache
def _shared_converter() -> Converter:
    return default_converter()


def build_server(config_path: Path | None = None, team: TeamContext | None = None) -> IquestServer:
    server = IquestServer(config_path, team)
    _register(server)
    return server


def _register(ls: IquestServer) -> None:
    ls.feature(types.INITIALIZE)(on_initialize)
    ls.feature(types.INITIALIZED)(on_initialized)
    ls.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)(on_did_change_configuration)
    ls.feature(types.TEXT_DOCUMENT_DID_OPEN)(on_did_open)
    ls.feature(types.TEXT_DOCUMENT_DID_CHANGE)(on_did_change)
    ls.feature(types.TEXT_DOCUMENT_DID_CLOSE)(on_did_close)
    ls.feature(types.TEXT_DOCUMENT_DID_SAVE)(on_did_save)
    ls.feature(types.TEXT_DOCUMENT_INLINE_COMPLETION, types.InlineCompletionOptions())(
        on_inline_completion
    )
    ls.feature(types.TEXT_DOCUMENT_COMPLETION, types.CompletionOptions(resolve_provider=False))(
        on_completion
    )
    ls.feature(STATS_METHOD)(on_stats)
    ls.feature(PARTIAL_ACCEPT_NOTIFICATION)(on_partially_accepted)
    ls.command(convert.ACCEPTED_COMMAND)(on_accepted)
    actions.register(ls)


def on_initialize(ls: IquestServer, params: types.InitializeParams) -> None:
    ls.layers.set_initialization_options(params.initialization_options)
    uris = [f.uri for f in params.workspace_folders or []] or (
        [params.root_uri] if params.root_uri else []
    )
    if ls.team is not None:
        # Paths on the editor's machine: never read here. Folders named like a server-side
        # checkout get its context.
        by_name = {index.name: index.root for index in ls.team.repositories}
        folders = params.workspace_folders or []
        ls.path_map = [
            (Path(path), by_name[folder.name])
            for folder in folders
            if folder.name in by_name and (path := to_fs_path(folder.uri))
        ]
        return
    ls.folders = [Path(path) for uri in uris if (path := to_fs_path(uri)) and Path(path).is_dir()]


async def on_initialized(ls: IquestServer, params: types.InitializedParams) -> None:
    if ls.team is None:
        # Logging is process-wide: in team mode it would carry other users' lines to this one.
        attach_client_logging(ls)
    await ls.reload_settings()


async def on_did_change_configuration(
    ls: IquestServer, params: types.DidChangeConfigurationParams
) -> None:
    if not _client_can_configure(ls):
        # Push-style clients send the settings themselves.
        ls.layers.set_editor(params.settings)
    await ls.reload_settings()


def on_did_open(ls: IquestServer, params: types.DidOpenTextDocumentParams) -> None:
    item = params.text_document
    if ls.engine_workspace is not None:
        path = ls.server_path(item.uri)
        _, relative = ls.engine_workspace.locate(path) if path else (None, None)
        ls.engine_workspace.documents.opened(item.uri, relative, item.language_id, item.text)


def on_did_change(ls: IquestServer, params: types.DidChangeTextDocumentParams) -> None:
    # pygls has applied the changes to its copy already: hand the engine the resulting text.
    uri = params.text_document.uri
    document = open_document(ls.workspace, uri)
    if document is None:
        return
    text = document.source
    if ls.engine_workspace is not None:
        ls.engine_workspace.documents.changed(uri, text)
    if ls.findings.reconcile(uri, text):  # findings on changed lines are stale now
        actions.publish_findings(ls, uri)


def on_did_close(ls: IquestServer, params: types.DidCloseTextDocumentParams) -> None:
    ls.service().forget_document(params.text_document.uri)
    if ls.findings.get(params.text_document.uri):
        ls.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[])
        )
    ls.findings.forget(params.text_document.uri)
    if ls.engine_workspace is not None:
        ls.engine_workspace.documents.closed(params.text_document.uri)


def on_did_save(ls: IquestServer, params: types.DidSaveTextDocumentParams) -> None:
    log.debug("saved %s", params.text_document.uri)


async def on_inline_completion(
    ls: IquestServer, params: types.InlineCompletionParams
) -> types.InlineCompletionList:
    document = _open_document(ls, params.text_document.uri)
    request = _completion_request(
        ls,
        document,
        params.position,
        explicit=params.context.trigger_kind == types.InlineCompletionTriggerKind.Invoked,
    )
    suggestion = await _complete(ls, request)
    return convert.inline_items(suggestion, params.position, params.text_document.uri)


async def on_completion(ls: IquestServer, params: types.CompletionParams) -> types.CompletionList:
    document = _open_document(ls, params.text_document.uri)
    explicit = params.context is not None and (
        params.context.trigger_kind == types.CompletionTriggerKind.Invoked
    )
    request = _completion_request(ls, document, params.position, explicit=explicit)
    suggestion = await _complete(ls, request)
    line_start = request.text.rfind("\n", 0, request.cursor) + 1
    return convert.completion_items(
        suggestion,
        params.position,
        request.text[line_start : request.cursor],
        document.position_codec.client_num_units,
        markdown=_completion_renders_markdown(ls),
    )


def _completion_renders_markdown(ls: IquestServer) -> bool:
    text_document = ls.client_capabilities.text_document
    completion = text_document.completion if text_document else None
    item = completion.completion_item if completion else None
    return types.MarkupKind.Markdown in ((item.documentation_format if item else None) or [])


def on_stats(ls: IquestServer, params: Any) -> dict[str, object]:
    stats = ls.service().stats.as_dict()
    served = ls.service().served_model
    stats["model"] = served.name if served else None
    stats["template"] = served.template.name if served else None
    stats["backend_down"] = ls.outages.any_down()
    stats["in_flight"] = ls.service().in_flight()
    if ls.team is not None:
        stats["worker_pid"] = os.getpid()  # with --workers, which process serves this editor
    return stats


def on_accepted(ls: IquestServer, arguments: Any = None) -> None:
    stats = ls.service().stats
    stats.accepted += 1
    stats.accepted_chars += _count_argument(arguments, "length")


def on_partially_accepted(ls: IquestServer, params: Any) -> None:
    stats = ls.service().stats
    stats.partially_accepted += 1
    stats.accepted_chars += _count_argument(params, "acceptedLength")


def _count_argument(arguments: Any, name: str) -> int:
    """A non-negative count from a client's argument object (a dict, or pygls's Object)."""
    value = arguments.get(name) if isinstance(arguments, dict) else getattr(arguments, name, None)
    return value if isinstance(value, int) and value >= 0 else 0


async def _complete(ls: IquestServer, request: CompletionRequest) -> Suggestion | None:
    try:
        return await ls.service().complete(request)
    except Exception:
        # An engine bug costs this suggestion, never the editor session.
        log.exception("completion failed for %s", request.document_uri)
        return None


def _open_document(ls: IquestServer, uri: str) -> TextDocument:
    document = open_document(ls.workspace, uri)
    if document is None:
        raise JsonRpcInvalidParams(f"document {uri[:200]} is not open")
    return document


def _completion_request(
    ls: IquestServer, document: TextDocument, position: types.Position, *, explicit: bool
) -> CompletionRequest:
    relative, workspace_name = _workspace_path(ls, document.uri)
    return CompletionRequest(
        session=ls.session_for(workspace_name),
        path=ls.server_path(document.uri),
        document_uri=document.uri,
        language_id=document.language_id or "plaintext",
        text=document.source,
        cursor=offset_at(document, position),
        explicit=explicit,
        relative_path=relative,
        workspace_name=workspace_name,
    )


def _workspace_path(ls: IquestServer, uri: str) -> tuple[str | None, str | None]:
    path = to_fs_path(uri)
    if path is None:
        return None, None
    for folder in ls.workspace.folders.values():
        root = to_fs_path(folder.uri)
        if root and Path(path).is_relative_to(root):
            return Path(path).relative_to(root).as_posix(), folder.name
    return Path(path).name, None


def _client_can_configure(ls: IquestServer) -> bool:
    workspace = ls.client_capabilities.workspace
    return bool(workspace and workspace.configuration)
