"""Plain data passed between the stages."""

from __future__ import annotations

from dataclasses import dataclass

from engine.place import AtPlace, Place


@dataclass(frozen=True)
class CompletionRequest(AtPlace):
    """What the editor asked for, in plain terms: a document at its place and a cursor offset
    in code points."""

    place: Place
    language_id: str
    text: str
    cursor: int
    # The user pressed a key to ask (not an automatic, as-you-type trigger).
    explicit: bool = False


@dataclass(frozen=True)
class Suggestion:
    """Text to insert at the cursor."""

    text: str
    latency_ms: float
    # Served from the typing-through memory, with no request to the model.
    from_memory: bool = False
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    # More candidates after ``text`` (an explicit request with completion.candidates > 1),
    # distinct from it and from each other.
    alternatives: tuple[str, ...] = ()

    @property
    def candidates(self) -> tuple[str, ...]:
        return (self.text, *self.alternatives)
