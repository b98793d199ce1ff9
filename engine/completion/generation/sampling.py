"""What one completion asks the model for: length by line mode, temperature by how many
candidates, stops from the template. Pure: the runner adds the request's fields and headers."""

from __future__ import annotations

import random
from dataclasses import replace

from engine.backends.openai_compatible import GenerationParams
from engine.completion.postprocessing import LineMode
from engine.config import CompletionConfig


def sampling_params(
    settings: CompletionConfig,
    prompt: str,
    stop: tuple[str, ...],
    line_mode: LineMode,
    candidates: int,
    fields: dict[str, object],
    headers: dict[str, str],
) -> GenerationParams:
    single_line_cap = min(settings.max_tokens, settings.max_tokens_single_line)
    return GenerationParams(
        prompt=prompt,
        max_tokens=settings.max_tokens if line_mode is LineMode.MULTI else single_line_cap,
        # Several candidates from one request need sampling to differ.
        temperature=(
            max(settings.temperature, settings.candidates_temperature)
            if candidates > 1
            else settings.temperature
        ),
        top_p=settings.top_p,
        stop=stop,
        extra_body=fields,
        headers=headers,
        n=candidates,
    )


# completion.bench_fixed_lengths: the lengths the capacity benchmark decodes (tokens).
BENCH_SINGLE_LINE = (8, 24)
BENCH_MULTI_LINE = (40, 128)
_bench_draws = random.Random(7)


def bench_fixed_length(params: GenerationParams, line_mode: LineMode) -> GenerationParams:
    """``params`` made to decode exactly a drawn number of tokens (benchmarks only)."""
    low, high = BENCH_MULTI_LINE if line_mode is LineMode.MULTI else BENCH_SINGLE_LINE
    length = _bench_draws.randint(low, high)
    fields = {**params.extra_body, "min_tokens": length, "ignore_eos": True}
    return replace(params, max_tokens=length, stop=(), extra_body=fields)
