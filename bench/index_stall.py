"""How long one hostile file holds the event loop while a checkout is indexed and watched.

A checkout of ``--files`` small Python files plus one 0.9 MB file of source-like junk (no NUL
byte, short lines: only parsing tells it from code), indexed as the daemon does (in a worker
thread), then the junk rewritten ``--rewrites`` times and each rewrite applied as the watcher
does. Meanwhile a ticker on the event loop records its largest lag: what every editor on the
daemon would wait. Run it on two trees side by side (PYTHONPATH) to compare.

    .venv/bin/python -m bench.index_stall [--files 300] [--rewrites 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import tempfile
import time
from pathlib import Path

import watchfiles

from engine.repository.index import RepositoryIndex

ALPHABET = b"abcdefghij(){}[];:,.\n \t'\"=+-*/"


def junk(seed: int) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.choice(ALPHABET) for _ in range(900_000))


async def largest_lag(stop: asyncio.Event) -> float:
    worst, step = 0.0, 0.01
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(step)
        worst = max(worst, time.perf_counter() - started - step)
    return worst


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--rewrites", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for n in range(args.files):
            (root / f"module_{n}.py").write_text(f"def function_{n}(value):\n    return value\n")
        hostile = root / "hostile_generated.py"
        hostile.write_bytes(junk(0))
        index = RepositoryIndex(root)
        stop = asyncio.Event()
        ticker = asyncio.create_task(largest_lag(stop))
        started = time.perf_counter()
        report = await asyncio.to_thread(index.build_blocking)
        built = time.perf_counter() - started
        stop.set()
        build_lag = await ticker
        rewrite_lags, rewrite_times = [], []
        for n in range(args.rewrites):
            hostile.write_bytes(junk(n + 1))
            stop = asyncio.Event()
            ticker = asyncio.create_task(largest_lag(stop))
            started = time.perf_counter()
            await asyncio.to_thread(
                index.apply_changes, [(watchfiles.Change.modified, str(hostile))]
            )
            rewrite_times.append(time.perf_counter() - started)
            stop.set()
            rewrite_lags.append(await ticker)
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"indexed {report.files} files in {built:.2f} s, event loop's largest lag "
        f"{build_lag * 1000:.0f} ms; each rewrite applied in "
        f"{', '.join(f'{t:.2f}' for t in rewrite_times)} s, largest lag "
        f"{', '.join(f'{lag * 1000:.0f}' for lag in rewrite_lags)} ms; peak RSS {rss:.0f} MB"
    )


if __name__ == "__main__":
    asyncio.run(main())
