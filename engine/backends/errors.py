from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timed out"
    HTTP_STATUS = "error status"
    MALFORMED = "malformed answer"


class BackendError(Exception):
    """A request to a model server that failed; says where and why, in words a user can act on."""

    def __init__(self, url: str, kind: FailureKind, detail: str) -> None:
        super().__init__(f"{url}: {kind.value}: {detail}")
        self.url = url
        self.kind = kind
        self.detail = detail
