"""Messages for the user: the engine says what happened, the LSP layer shows it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Notice:
    """Something the user should see in the editor (the LSP layer shows it)."""

    level: Literal["error", "warning", "info"]
    message: str


Notify = Callable[[Notice], None]
