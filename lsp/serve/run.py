"""Running the team daemon until it is stopped."""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from lsp.serve.daemon import TeamDaemon
from lsp.serve.options import ServeOptions


async def run_serve(options: ServeOptions, ready: Callable[[], None] | None = None) -> int:
    _raise_open_file_limit()
    daemon = TeamDaemon(options)
    await daemon.start()
    if ready is not None:
        ready()
    # What start-up built (modules, grammars, lsprotocol's and pydantic's classes: ~150,000
    # objects) lives as long as the daemon; frozen, a full collection no longer walks it. Those
    # walks stalled every connection for 70-95 ms every few seconds with a hundred editors.
    gc.collect()
    gc.freeze()
    # IQUEST_TRACEMALLOC=FILE: where memory grew between the first minute and the end.
    trace_file = os.environ.get("IQUEST_TRACEMALLOC")
    baseline: list[tracemalloc.Snapshot] = []
    if trace_file:
        tracemalloc.start(12)
        asyncio.get_running_loop().call_later(
            60, lambda: baseline.append(tracemalloc.take_snapshot())
        )
    try:
        await asyncio.Event().wait()
    finally:
        if trace_file and baseline:
            _write_growth(Path(trace_file), tracemalloc.take_snapshot(), baseline[0])
        await daemon.aclose()
    return 0


def _write_growth(target: Path, now: tracemalloc.Snapshot, then: tracemalloc.Snapshot) -> None:
    lines = []
    for stat in now.compare_to(then, "traceback")[:15]:
        lines.append(f"{stat.size_diff / 1e6:+.2f} MB in {stat.count_diff:+d} blocks")
        lines.extend(f"    {frame}" for frame in stat.traceback.format()[-12:])
    target.write_text("\n".join(lines) + "\n")  # at exit, nothing else runs


def _raise_open_file_limit() -> None:
    """Sockets are files: the soft limit (often 1,024) is what a flood of half-open TLS
    connections exhausted. The hard limit is the daemon's to take."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass
