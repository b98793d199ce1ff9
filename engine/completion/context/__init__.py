"""Stage 1: what the model sees: other files' headers, the current file, the cursor."""

from engine.completion.context.builder import ContextBuilder, CursorContext, build_cursor_context
from engine.definitions.tier import ContextEntry
from engine.definitions.tokens import TokenCounts

__all__ = ["ContextBuilder", "ContextEntry", "CursorContext", "TokenCounts", "build_cursor_context"]
