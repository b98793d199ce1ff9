"""How many sequences vLLM needs for a number of editors, from what one editor asks of it.

An editor typing keeps some of its requests running at vLLM (each keystroke's request runs
until the next one cancels it or the suggestion is done): by Little's law the sequences a team
keeps busy are its editors times that share. The share is what bench/capacity.py measured
(vLLM's running requests divided by the editors typing, at the largest step inside the latency
target, bench/RESULTS.md); bursts need headroom above the mean."""

from __future__ import annotations

import math
from dataclasses import dataclass

# vLLM's mean running requests per typing editor (bench/capacity.py's "run/ed" column): on
# one H200, 0.18-0.37 for the 40B shape (its ~23 ms tokens keep each request longer), 0.01-0.23
# for the 7B shape (bench/RESULTS.md, issue 28). With the headroom below, 0.375 covers both.
SEQUENCES_PER_EDITOR = 0.25
# Bursts: the step's peak of running requests over its mean.
BURST_HEADROOM = 1.5
# vLLM batches in CUDA-graph sizes of 8: a limit between them buys nothing.
STEP = 8


@dataclass(frozen=True)
class EditorSizing:
    editors: int
    max_num_seqs: int

    def reason(self) -> str:
        return (
            f"--max-num-seqs {self.max_num_seqs}: sized for {self.editors} editors (each keeps "
            f"~{SEQUENCES_PER_EDITOR:g} requests running at vLLM, bench/capacity.py; x"
            f"{BURST_HEADROOM:g} for bursts)"
        )


def sequences_for(editors: int) -> EditorSizing:
    if editors < 1:
        raise ValueError(f"--editors {editors}: must be at least 1")
    wanted = editors * SEQUENCES_PER_EDITOR * BURST_HEADROOM
    return EditorSizing(editors, max(STEP, math.ceil(wanted / STEP) * STEP))


def editors_served(max_num_seqs: int) -> int:
    """The editors ``max_num_seqs`` sequences serve with the same headroom."""
    return int(max_num_seqs / (SEQUENCES_PER_EDITOR * BURST_HEADROOM))
