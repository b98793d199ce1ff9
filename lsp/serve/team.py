"""What a connection in team mode shares with the others, and what is only its own."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from engine.completion.models import ModelDirectory
from engine.repository.index import RepositoryIndex
from engine.scheduling import FairShare


@dataclass
class TeamContext:
    user: str
    # Shared by every connection: model discovery with its connection pools and token counts,
    # and the server-side repository checkouts (indexed and watched once).
    models: ModelDirectory
    repositories: list[RepositoryIndex]
    # vLLM cache_salt for this user's requests: nobody shares (or probes) another's cache.
    cache_salt: str
    # Closes this connection only (an editor's `exit` must not stop the daemon).
    close: Callable[[], None] = field(default=lambda: None)
    # Shared by every connection: each user's requests at the model server.
    fair_share: FairShare = field(default_factory=FairShare)

    def share(self) -> AbstractContextManager[int]:
        return self.fair_share.request(self.user)
