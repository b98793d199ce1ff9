"""Request fields a server refused, remembered so that they are not sent to it again.

vLLM refuses a non-zero ``priority`` unless it schedules by priority, and a server may lack
structured outputs (``response_format``). Rather than failing every request, the field is
dropped for that server after its first 400 naming it, and the request is sent again."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar

from engine.backends.errors import BackendError

log = logging.getLogger(__name__)
T = TypeVar("T")


class RefusedFields:
    def __init__(self) -> None:
        self.names: set[str] = set()

    def without(self, fields: Mapping[str, object]) -> dict[str, object]:
        return {name: value for name, value in fields.items() if name not in self.names}

    def learn(self, error: BackendError, sent: Mapping[str, object]) -> list[str]:
        """The fields among ``sent`` that ``error`` refuses, now remembered."""
        refused = [name for name in sent if error.rejects_field(name)]
        self.names.update(refused)
        return refused


async def send_without_refused(
    refused: RefusedFields,
    fields: Mapping[str, object],
    send: Callable[[dict[str, object]], Awaitable[T]],
) -> T:
    """``send(fields)`` less those the server refused; a refusal of a field not known yet drops
    it and sends again (once per field). Any other error is the caller's."""
    while True:
        kept = refused.without(fields)
        try:
            return await send(kept)
        except BackendError as error:
            newly = refused.learn(error, kept)
            if not newly:
                raise
            log.info("%s refuses %s: sending without it", error.url, ", ".join(newly))
