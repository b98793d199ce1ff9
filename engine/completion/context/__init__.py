"""Stage 1: what the model sees: other files' headers, the current file, the cursor."""

from engine.completion.context.builder import ContextBuilder, CursorContext, build_cursor_context
from engine.completion.context.repository import ContextEntry
from engine.completion.context.tokens import TokenCounts

__all__ = ["ContextBuilder", "ContextEntry", "CursorContext", "TokenCounts", "build_cursor_context"]
