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
    # The daemon's one FairShare: each user's requests at the model server, over all of that
    # user's connections (a default per connection would share nothing).
    fair_share: FairShare
    # Closes this connection only (an editor's `exit` must not stop the daemon).
    close: Callable[[], None] = field(default=lambda: None)

    def share(self) -> AbstractContextManager[int]:
        return self.fair_share.request(self.user)
