"""Stage 1: what the model sees around the cursor."""

from engine.completion.context.window import CursorContext, build_cursor_context

__all__ = ["CursorContext", "build_cursor_context"]
