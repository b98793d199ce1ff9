"""Our extensions to LSP, in one place: method, notification and command names, and their
payloads as typed models (pydantic, validated at the edge).

The editor plugins mirror the names: ``editors/vscode/src/protocol.ts`` and
``editors/nvim/lua/iquest/protocol.lua`` (``tests/test_extensions.py`` checks they agree)."""

from __future__ import annotations

from typing import Any, TypeVar

from lsprotocol import types
from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, ValidationError

# Requests and notifications.
STATS = "iquest/stats"
# Sent by the plugins when the user takes part of a suggestion (next word or line).
PARTIAL_ACCEPT = "iquest/didPartiallyAccept"
# Sent to the plugins with an explanation or an answer to render.
EXPLANATION = "iquest/explanation"

# Commands (workspace/executeCommand).
EXPLAIN = "iquest.explain"
FIX = "iquest.fix"
FIND_BUGS = "iquest.findBugs"
ASK = "iquest.ask"
# Run by the editor when the user accepts a whole inline suggestion.
ACCEPTED = "iquest.accepted"

# Code action kinds.
KIND_EXPLAIN = "iquest.explain"
KIND_FIND_BUGS = "source.iquest.findBugs"

# What a plugin that renders explanations itself says in its client capabilities:
# ``experimental: {"iquest": {"explanations": true}}``.
CAPABILITY = "iquest"

P = TypeVar("P", bound="Payload")


class InvalidPayload(ValueError):
    """A payload that does not match its model; the message says what was wrong, briefly."""


class Payload(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)

    @classmethod
    def parse(cls: type[P], value: object) -> P:
        """From the JSON value a client sent (a dict, or pygls's namespace object)."""
        try:
            return cls.model_validate(_plain(value))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                for e in error.errors()[:3]
            )
            raise InvalidPayload(f"{cls.__name__}: {problems}") from None

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


class Position(Payload):
    line: NonNegativeInt
    character: NonNegativeInt


class Range(Payload):
    start: Position
    end: Position

    def to_lsp(self) -> types.Range:
        return types.Range(
            start=types.Position(line=self.start.line, character=self.start.character),
            end=types.Position(line=self.end.line, character=self.end.character),
        )

    @classmethod
    def of(cls, range_: types.Range) -> Range:
        return cls(
            start=Position(line=range_.start.line, character=range_.start.character),
            end=Position(line=range_.end.line, character=range_.end.character),
        )


class ActionArguments(Payload):
    """The one argument of iquest.explain / fix / findBugs / ask."""

    uri: str = Field(max_length=8192)
    # None: the whole file.
    range: Range | None = None
    # Ask: the user's question.
    question: str | None = None
    # Fix from a diagnostic: its message.
    problem: str | None = None


class AcceptedArguments(Payload):
    uri: str | None = None
    length: NonNegativeInt = 0
    # Which candidate (0: the first); past the most a request asks for, not counted by place.
    index: NonNegativeInt = 0


class PartialAcceptParams(Payload):
    uri: str | None = None
    accepted_length: NonNegativeInt = Field(0, alias="acceptedLength")


class ExplanationParams(Payload):
    uri: str
    range: Range
    # "explain" or "ask".
    kind: str
    question: str | None
    markdown: str
    # Where it was also written, for clients that only show documents.
    document: str | None = None


class FixResult(Payload):
    applied: bool
    reason: str | None
    attempts: int


class FindBugsResult(Payload):
    findings: int


class DaemonStats(Payload):
    """iquest/stats: the completion counters (engine.metrics.CompletionStats, by their names)
    and the daemon's state."""

    model_config = ConfigDict(populate_by_name=True, extra="allow", frozen=True)

    model: str | None
    template: str | None
    backend_down: bool
    in_flight: int
    # Team mode with --workers: the process serving this editor.
    worker_pid: int | None = None


def _plain(value: object) -> object:
    """pygls hands the payloads of methods it does not know over as namedtuples (nested): back
    to dicts and lists."""
    if hasattr(value, "_asdict"):
        return {k: _plain(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return {k: _plain(v) for k, v in vars(value).items()}
    return value
