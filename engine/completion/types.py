"""Plain data passed between the stages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CompletionRequest:
    """What the editor asked for, in plain terms: a document and a cursor offset in code points."""

    document_uri: str
    language_id: str
    text: str
    cursor: int
    # The user pressed a key to ask (not an automatic, as-you-type trigger).
    explicit: bool = False
    # A path relative to the workspace for the prompt's file header, when known.
    relative_path: str | None = None
    workspace_name: str | None = None
    # The file on disk, when the document has one: locates it in the repository index.
    path: Path | None = None
    # Keeps a session on one vLLM replica (engine/endpoints/replicas.py); sent as X-Session-ID.
    session: str | None = None
    # The user alone, as opaque (engine/endpoints/replicas.py); sent as X-User-ID.
    user_key: str | None = None


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
