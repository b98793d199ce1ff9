"""Read a completion stream until the post-processing stage has enough, then hang up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass

from engine.backends.errors import BackendError, FailureKind
from engine.backends.openai_compatible import CompletionBackend, GenerationParams, Usage
from engine.completion.postprocessing import StreamCutter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationOutcome:
    # One text per completion asked for (params.n), in the server's order.
    texts: tuple[str, ...]
    usage: Usage | None
    # The daemon closed the stream before the model finished (vLLM aborted the rest).
    cut_early: bool

    @property
    def text(self) -> str:
        return self.texts[0]


async def generate(
    backend: CompletionBackend,
    params: GenerationParams,
    cutters: Sequence[StreamCutter],
    timeout_s: float,
    read_to_end: bool = False,
) -> GenerationOutcome:
    """Streams ``params.n`` completions, each through its own cutter, until every cutter has
    enough (then hangs up: vLLM aborts what is left) or the stream ends. ``read_to_end``: never
    hang up early (a benchmark's fixed lengths)."""
    usage: Usage | None = None
    chunks_read = 0
    try:
        async with asyncio.timeout(timeout_s), aclosing(backend.stream(params)) as chunks:
            async for chunk in chunks:
                await asyncio.sleep(0)  # a fast stream must not starve the editor's messages
                chunks_read += 1
                usage = chunk.usage or usage
                cutter = cutters[chunk.index]
                if not cutter.done:
                    cutter.feed(chunk.text)
                if not read_to_end and all(each.done for each in cutters):
                    # Leaving the block closes the HTTP stream: vLLM aborts the request.
                    return GenerationOutcome(_texts(cutters), usage, cut_early=True)
    except asyncio.CancelledError:
        log.debug("completion stream closed by cancellation after %d chunks", chunks_read)
        raise
    except TimeoutError as exc:
        raise BackendError(
            backend.url, FailureKind.TIMEOUT, f"no complete answer within {timeout_s:g} s"
        ) from exc
    return GenerationOutcome(_texts(cutters), usage, cut_early=False)


def _texts(cutters: Sequence[StreamCutter]) -> tuple[str, ...]:
    return tuple(cutter.text for cutter in cutters)
