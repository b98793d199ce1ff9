"""Stage 4: turn raw model text into a suggestion worth showing, or nothing."""

from engine.completion.postprocessing.line_mode import LineMode, choose_line_mode
from engine.completion.postprocessing.trimming import StreamCutter, block_indent, finalize

__all__ = ["LineMode", "StreamCutter", "block_indent", "choose_line_mode", "finalize"]
