"""Outages: one message to the user when a server goes down, one when it is back; while it is
down, requests skip it for a moment instead of waiting on it."""

from __future__ import annotations

import logging
import time

from engine.backends.errors import BackendError
from engine.notices import Notice, Notify

log = logging.getLogger(__name__)


class OutageTracker:
    # While a backend is down, skip requests for this long after a failure, so every keystroke
    # gets its empty answer at once instead of waiting on a dead server.
    RETRY_AFTER_S = 2.0

    def __init__(self, notify: Notify) -> None:
        self._notify = notify
        self._down_since: dict[str, float] = {}
        self._last_failure: dict[str, float] = {}
        # (url, status) of requests a server refused that the user was told of; forgotten
        # when that server answers again.
        self._refusals_told: set[tuple[str, int | None]] = set()

    def failed(self, error: BackendError, server: str | None = None) -> None:
        """``server``: the replica's base URL the request went to, which is what is skipped
        and shown as down (``error.url`` may be a page under it, such as /tokenize)."""
        url = server or error.url
        now = time.monotonic()
        self._last_failure[url] = now
        if url in self._down_since:
            log.debug("backend still failing: %s", error)
            return
        self._down_since[url] = now
        log.warning("backend failure: %s", error)
        self._notify(
            Notice(
                "error",
                f"iquest: model server {url} {error.kind.value}: "
                f"{error.detail}. Suggestions pause until it answers again.",
            )
        )

    def refused(self, error: BackendError) -> None:
        """A server that answered a request with an error about that request (a 4xx): no
        pause, the next request goes as usual; the user is told once what it said."""
        log.info("request refused: %s", error)
        key = (error.url, error.status)
        if key in self._refusals_told:
            return
        self._refusals_told.add(key)
        hint = " (is base_url right? vLLM's usually ends in /v1)" if error.status == 404 else ""
        self._notify(
            Notice(
                "warning",
                f"iquest: model server {error.url} refused a request: {error.detail}{hint}",
            )
        )

    def succeeded(self, url: str) -> None:
        self._refusals_told = {told for told in self._refusals_told if told[0] != url}
        if self._down_since.pop(url, None) is not None:
            self._last_failure.pop(url, None)
            log.info("backend back: %s", url)
            self._notify(Notice("info", f"iquest: model server {url} answers again."))

    def should_skip(self, url: str) -> bool:
        last = self._last_failure.get(url)
        return last is not None and time.monotonic() - last < self.RETRY_AFTER_S

    def is_down(self, url: str) -> bool:
        return url in self._down_since
