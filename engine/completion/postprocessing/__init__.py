"""Stage 4: turn raw model text into a suggestion worth showing, or nothing."""

from engine.completion.postprocessing.line_mode import LineMode, choose_line_mode
from engine.completion.postprocessing.trimming import StreamCutter, finalize

__all__ = ["LineMode", "StreamCutter", "choose_line_mode", "finalize"]
