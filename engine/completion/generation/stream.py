"""Read a completion stream until the post-processing stage has enough, then hang up."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from dataclasses import dataclass

from engine.backends.errors import BackendError, FailureKind
from engine.backends.openai_compatible import CompletionBackend, GenerationParams, Usage
from engine.completion.postprocessing import StreamCutter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerationOutcome:
    text: str
    usage: Usage | None
    # The daemon closed the stream before the model finished (vLLM aborted the rest).
    cut_early: bool


async def generate(
    backend: CompletionBackend, params: GenerationParams, cutter: StreamCutter, timeout_s: float
) -> GenerationOutcome:
    usage: Usage | None = None
    chunks_read = 0
    try:
        async with asyncio.timeout(timeout_s), aclosing(backend.stream(params)) as chunks:
            async for chunk in chunks:
                await asyncio.sleep(0)  # a fast stream must not starve the editor's messages
                chunks_read += 1
                usage = chunk.usage or usage
                cutter.feed(chunk.text)
                if cutter.done:
                    # Leaving the block closes the HTTP stream: vLLM aborts the request.
                    return GenerationOutcome(cutter.text, usage, cut_early=True)
    except asyncio.CancelledError:
        log.debug("completion stream closed by cancellation after %d chunks", chunks_read)
        raise
    except TimeoutError as exc:
        raise BackendError(
            backend.url, FailureKind.TIMEOUT, f"no complete answer within {timeout_s:g} s"
        ) from exc
    return GenerationOutcome(cutter.text, usage, cut_early=False)
