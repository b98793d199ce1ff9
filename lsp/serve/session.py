"""A connection of the team daemon: what it shares with the others, and what is its own.

Shared: model discovery with its clients (connection pools, token counts), the server-side
checkouts' indexes, and the fair share of the model server. Its own: documents, settings
(within what an editor may set), findings, and a ``cache_salt`` that keeps its user's prompts
out of other users' cache."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from cattrs import Converter
from lsprotocol import types
from pygls.uris import to_fs_path

from engine.completion.discovery import ModelDirectory
from engine.config import Settings
from engine.endpoints import ActionSlots
from engine.repository.index import RepositoryIndex
from engine.team.fair_share import FairShare
from engine.team.identity import Identity
from engine.workspace import Workspace
from lsp.protocol import TeamProtocol
from lsp.session import Session, shared_converter
from lsp.settings import Bounds, SettingsLayers


class TeamSession(Session):
    protocol_cls = TeamProtocol
    # The file would be on the server, out of the editor's reach.
    writes_explanation_files = False
    # Logging is process-wide: it would carry other users' lines to this one.
    forwards_logs = False

    def __init__(
        self,
        layers: SettingsLayers,
        models: ModelDirectory,
        repositories: list[RepositoryIndex],
        fair_share: FairShare,
        close: Callable[[], None],
        identity: Identity,
        action_slots: ActionSlots | None = None,
    ) -> None:
        super().__init__(layers, models, action_slots)
        self.identity = identity
        self.repositories = repositories
        self.fair_share = fair_share
        self._close = close
        # The editor's folders (paths on its machine) -> server-side checkouts.
        self.path_map: list[tuple[Path, Path]] = []

    @staticmethod
    def converter_factory() -> Converter:
        return shared_converter()

    def initialize(self, params: types.InitializeParams) -> None:
        # Paths on the editor's machine: never read here. Folders named like a server-side
        # checkout get its context.
        by_name = {index.name: index.root for index in self.repositories}
        self.path_map = [
            (Path(path), by_name[folder.name])
            for folder in params.workspace_folders or []
            if folder.name in by_name and (path := to_fs_path(folder.uri))
        ]

    def on_this_machine(self, client_path: Path) -> Path:
        """The client's folder swapped for the server-side checkout of the same name."""
        for client_root, server_root in self.path_map:
            if client_path.is_relative_to(client_root):
                return server_root / client_path.relative_to(client_root)
        return client_path

    def open_workspace(self, settings: Settings) -> Workspace | None:
        workspace = Workspace(None, settings.index.exclude)
        workspace.indexes.extend(self.repositories)
        return workspace

    def share(self) -> Callable[[], AbstractContextManager[int]] | None:
        return functools.partial(self.fair_share.request, self.identity.user)

    def stats_extra(self) -> dict[str, Any]:
        return {"worker_pid": os.getpid()}  # with --workers, which process serves this editor

    def close_connection(self) -> None:
        self._close()


# Team mode: what a connected editor may set. Endpoints, logging, the index and the cache salt
# belong to whoever runs the server (an editor pointing the daemon at another URL, or writing
# its log file, or sharing another user's cache salt, must not be possible).
EDITOR_KEYS: dict[str, dict[str, Bounds]] = {
    "completion": {
        "debounce_ms": (0, 2000),
        "max_tokens": (1, None),
        "temperature": (0.0, 2.0),
        "top_p": (0.01, 1.0),
        "multiline": None,
    },
    "actions": {"show_thinking": None, "max_tokens": (1, None)},
}


def team_session(
    user: str,
    config_path: Path | None,
    secret: bytes,
    salt_per: str,
    models: ModelDirectory,
    repositories: list[RepositoryIndex],
    fair_share: FairShare,
    close: Callable[[], None],
    action_slots: ActionSlots | None = None,
) -> TeamSession:
    identity = Identity(user, secret, salt_per)
    layers = SettingsLayers(
        config_path,
        forced={"completion": {"cache_salt": identity.cache_salt}},
        editor_keys=EDITOR_KEYS,
    )
    return TeamSession(layers, models, repositories, fair_share, close, identity, action_slots)
