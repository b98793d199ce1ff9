"""Stage 3: asking the model, one request in flight per document."""

from engine.completion.generation.latest_wins import LatestWins
from engine.completion.generation.stream import GenerationOutcome, generate

__all__ = ["GenerationOutcome", "LatestWins", "generate"]
