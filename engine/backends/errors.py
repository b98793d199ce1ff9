from __future__ import annotations

from enum import StrEnum


class FailureKind(StrEnum):
    UNREACHABLE = "unreachable"
    TIMEOUT = "timed out"
    HTTP_STATUS = "error status"
    MALFORMED = "malformed answer"


class BackendError(Exception):
    """A request to a model server that failed; says where and why, in words a user can act on."""

    def __init__(self, url: str, kind: FailureKind, detail: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {kind.value}: {detail}")
        self.url = url
        self.kind = kind
        self.detail = detail
        self.status = status

    @property
    def server_is_failing(self) -> bool:
        """Down, silent, failing inside (5xx) or saying so (408, 429), or answering garbage:
        the server's state, worth a pause and a message. Any other 4xx concerns the one
        request that got it (a prompt over the context length, an empty prompt)."""
        if self.status is None or self.status >= 500:
            return True
        return self.status in (408, 429)

    def rejects_field(self, name: str) -> bool:
        """A 400 that names a request field: the server does not take it (vLLM refuses a
        non-zero ``priority`` unless it schedules by priority)."""
        return self.status == 400 and name.lower() in self.detail.lower()
