"""Where a request is: one value for a document's place, worked out once per request by the
session and taken by completion requests, action requests and the repository context alike
(the same fields were written four times and copied by hand between them)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Place:
    document_uri: str
    # The file on this machine (team mode: in the server-side checkout), if it is a file.
    path: Path | None = None
    # Its path in a repository index, when one holds it (the key of its context).
    indexed: str | None = None
    # The path the prompt shows: in the index, else in the editor's folder, else its name.
    relative_path: str | None = None
    # The editor's workspace folder holding it.
    workspace_name: str | None = None
    # Keeps this user's work in this folder on one vLLM replica (X-Session-ID).
    session: str | None = None
    # The user alone, for a router's per-user keys (X-User-ID).
    user_key: str | None = None


class AtPlace:
    """The place's fields read through a request (or a file) that carries one."""

    place: Place

    @property
    def document_uri(self) -> str:
        return self.place.document_uri

    @property
    def path(self) -> Path | None:
        return self.place.path

    @property
    def relative_path(self) -> str | None:
        return self.place.relative_path

    @property
    def workspace_name(self) -> str | None:
        return self.place.workspace_name

    @property
    def session(self) -> str | None:
        return self.place.session

    @property
    def user_key(self) -> str | None:
        return self.place.user_key
