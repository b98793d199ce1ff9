"""Plain data passed between the action stages."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from engine.place import AtPlace, Place


class ActionKind(StrEnum):
    EXPLAIN = "explain"
    FIX = "fix"
    FIND_BUGS = "find_bugs"
    ASK = "ask"


@dataclass(frozen=True)
class ActionRequest(AtPlace):
    """A document at its place, a selection in code-point offsets (empty: the whole file) and
    the ask."""

    kind: ActionKind
    place: Place
    language_id: str
    text: str
    start: int
    end: int
    # Ask: the user's question. Fix: what is wrong, when known (a diagnostic's message).
    question: str | None = None

    @property
    def whole_file(self) -> bool:
        return self.start == self.end

    @property
    def selection(self) -> str:
        return self.text if self.whole_file else self.text[self.start : self.end]


@dataclass(frozen=True)
class Answer:
    """A model's answer with the reasoning separated out."""

    content: str
    thinking: str
    endpoint: str
    model: str
    prompt_tokens: int | None = None
    cached_tokens: int | None = None


@dataclass(frozen=True)
class Explanation:
    markdown: str
    thinking: str


@dataclass(frozen=True)
class TextEdit:
    """Replace ``text[start:end]`` (code points) with ``new_text``."""

    start: int
    end: int
    new_text: str


@dataclass(frozen=True)
class FixOutcome:
    """An edit that applies and parses, or why there is none."""

    edit: TextEdit | None
    problem: str | None
    thinking: str
    attempts: int


Severity = Literal["error", "warning", "information", "hint"]


@dataclass(frozen=True)
class Finding:
    """A suspected bug, 0-based lines, both inclusive."""

    start_line: int
    end_line: int
    severity: Severity
    message: str


class ActionError(Exception):
    """An action that could not finish; the message is for the user."""
