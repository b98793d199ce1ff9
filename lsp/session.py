"""One editor connection's engine: its settings, workspace, endpoints and services.

A session is built by a factory for the mode in force: :func:`single_user_session` here, and
``lsp.serve.session.team_session`` for ``--serve``. Handlers ask the session; only the two
session classes know which mode runs (pylsp keeps its transports out of its server the same
way)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import platformdirs
from cattrs import Converter
from lsprotocol import types
from pygls.protocol import default_converter
from pygls.uris import to_fs_path

from engine.actions.findings import FindingsStore
from engine.actions.service import ActionService
from engine.assistant import Assistant
from engine.completion.discovery import ModelDirectory
from engine.completion.pipeline import CompletionService
from engine.config import APP_NAME, Settings, SettingsError, default_log_path
from engine.definitions import RepositoryContext
from engine.endpoints import ActionSlots, EndpointClients, Endpoints
from engine.metrics import CompletionStats
from engine.notices import Notice, Notify
from engine.place import Place
from engine.team.identity import Identity
from engine.workspace import IndexingProgress, Workspace, default_index_cache
from lsp.logging_setup import configure_file_logging
from lsp.protocol import IquestProtocol
from lsp.settings import SettingsLayers

log = logging.getLogger(__name__)


class Session:
    # Whose requests these are, and every id derived from it (the single user by default).
    identity = Identity()
    protocol_cls: type[IquestProtocol] = IquestProtocol
    # Explanations written as files and shown with window/showDocument: only where the
    # editor can open the daemon's files (the same machine).
    writes_explanation_files = True
    # The daemon's log lines sent to the editor (window/logMessage).
    forwards_logs = True

    def __init__(
        self,
        layers: SettingsLayers,
        models: ModelDirectory,
        action_slots: ActionSlots | None = None,
    ) -> None:
        self.layers = layers
        # Shared by every connection in team mode: clients, discovered models, the budget of
        # running actions per server.
        self.models = models
        self.action_slots = action_slots or ActionSlots()
        self.findings = FindingsStore()
        self.notify: Notify = lambda notice: None
        # Set by the language server: a folder's indexing as work-done progress.
        self.indexing: IndexingProgress = lambda _folder, _done: None
        self.workspace: Workspace | None = None
        self._assistant: Assistant | None = None

    @staticmethod
    def converter_factory() -> Converter:
        return default_converter()

    # --- what each mode decides ------------------------------------------------------------
    def initialize(self, params: types.InitializeParams) -> None:
        """The editor's folders, from ``initialize``."""

    def on_this_machine(self, client_path: Path) -> Path:
        """Where a file of the editor's machine is on this one (the same path here)."""
        return client_path

    def open_workspace(self, settings: Settings) -> Workspace | None:
        return None

    def configure_logging(self, settings: Settings) -> None:
        pass

    def share(self) -> Callable[[], AbstractContextManager[int]] | None:
        """Takes this user's place at the model server (team mode's fair share)."""
        return None

    def stats_extra(self) -> dict[str, Any]:
        return {}

    def close_connection(self) -> None:
        """The editor said ``exit``."""

    def explanations_dir(self) -> Path:
        return Path(platformdirs.user_cache_dir(APP_NAME)) / "explanations"

    # --- the engine ----------------------------------------------------------------------------
    @property
    def assistant(self) -> Assistant:
        if self._assistant is None:
            # A client that skips `initialized` still gets completions on file/env settings.
            self._assistant = self._build(self.settings_or_defaults())
        return self._assistant

    @property
    def endpoints(self) -> Endpoints:
        return self.assistant.endpoints

    @property
    def completions(self) -> CompletionService:
        return self.assistant.completions

    @property
    def actions(self) -> ActionService:
        return self.assistant.actions

    def completion_stats(self) -> CompletionStats | None:
        return self._assistant.completions.stats if self._assistant is not None else None

    def settings_or_defaults(self) -> Settings:
        try:
            return self.layers.build()
        except SettingsError as error:
            self.notify(Notice("error", f"iquest: {error}; using defaults"))
            return Settings()

    async def apply_settings(self) -> None:
        """The layers changed (or the editor is ready): start on them, or reconfigure."""
        if self._assistant is None:
            settings = self.settings_or_defaults()
            self.configure_logging(settings)
            self._assistant = self._build(settings)
            await self._assistant.start()
            return
        try:
            settings = self.layers.build()
        except SettingsError as error:
            self.notify(Notice("error", f"iquest: {error}; keeping the previous settings"))
            return
        self.configure_logging(settings)
        await self._assistant.reconfigure(settings)

    def locate(self, uri: str, folders: Iterable[types.WorkspaceFolder]) -> Place:
        """Where the document ``uri`` is, worked out once per request."""
        client_path = to_fs_path(uri)
        path = self.on_this_machine(Path(client_path)) if client_path is not None else None
        folder_relative = workspace_name = None
        if client_path is not None:
            for folder in folders:
                root = to_fs_path(folder.uri)
                if root and Path(client_path).is_relative_to(root):
                    folder_relative = Path(client_path).relative_to(root).as_posix()
                    workspace_name = folder.name
                    break
        indexed = None
        if self.workspace is not None and path is not None:
            _, indexed = self.workspace.locate(path)
        name = Path(client_path).name if client_path else None
        return Place(
            document_uri=uri,
            path=path,
            indexed=indexed,
            relative_path=indexed or folder_relative or name,
            workspace_name=workspace_name,
            session=self.identity.session_id(workspace_name),
            user_key=self.identity.user_key,
        )

    async def aclose(self) -> None:
        if self._assistant is not None:
            await self._assistant.aclose()

    def _build(self, settings: Settings) -> Assistant:
        if self.workspace is None:
            self.workspace = self.open_workspace(settings)
        return Assistant(
            settings,
            identity=self.identity,
            models=self.models,
            repository=RepositoryContext(self.workspace),
            notify=self.notify,
            action_slots=self.action_slots,
            share=self.share(),
        )


class SingleUserSession(Session):
    """The editor's own daemon over stdio: its folders are indexed here, its logs go to a file
    of its choosing and to the editor."""

    def __init__(self, layers: SettingsLayers, models: ModelDirectory) -> None:
        super().__init__(layers, models)
        self.folders: list[Path] = []

    def initialize(self, params: types.InitializeParams) -> None:
        uris = [f.uri for f in params.workspace_folders or []] or (
            [params.root_uri] if params.root_uri else []
        )
        self.folders = [
            Path(path) for uri in uris if (path := to_fs_path(uri)) and Path(path).is_dir()
        ]

    def open_workspace(self, settings: Settings) -> Workspace | None:
        if not (settings.index.enabled and self.folders):
            return None
        cache = (
            Path(settings.index.cache_dir) if settings.index.cache_dir else default_index_cache()
        )
        workspace = Workspace(
            cache,
            settings.index.exclude,
            own_files=(_log_path(settings),),
            on_failure=lambda message: self.notify(Notice("warning", message)),
            on_progress=lambda folder, done: self.indexing(folder, done),
        )
        for folder in self.folders:
            workspace.add_folder(folder)
        return workspace

    def configure_logging(self, settings: Settings) -> None:
        configure_file_logging(_log_path(settings), settings.log_level)

    async def aclose(self) -> None:
        await super().aclose()
        # Owned here: nobody else uses them.
        await self.models.aclose()
        await self.models.clients.aclose()
        if self.workspace is not None:
            await self.workspace.aclose()


def single_user_session(config_path: Path | None = None) -> SingleUserSession:
    return SingleUserSession(SettingsLayers(config_path), ModelDirectory(EndpointClients()))


def _log_path(settings: Settings) -> Path:
    return Path(settings.log_file) if settings.log_file else default_log_path()


@functools.cache
def shared_converter() -> Converter:
    """One converter for every connection of a team daemon: cattrs compiles its structuring
    code per converter and type, which per connection cost thousands of compiles."""
    return default_converter()
