"""Prefix-cache hits with several vLLM replicas: behind vllm-router or picked by the daemon.

Several editors, each its own daemon (``python -m lsp``) and workspace folder (so its own
session: X-Session-ID is a hash of user and folder) and its own ``cache_salt`` (team mode's
per-user isolation), replay the same kind of typing session as bench/prefix_cache.py at once.
Three ways to reach two replicas, side by side in one run on the same servers:

- vllm-router ``--policy consistent_hash``, the daemon with ``router = true``;
- vllm-router ``--policy round_robin``, the same daemon settings;
- no router: the daemon's own choice (``replicas = [...]``, rendezvous hashing).

Printed per configuration: the prefix-cache hit ratio over both replicas (vLLM's counters),
requests per replica, and the sessions seen on more than one replica.

    .venv/bin/python -m bench.router [--editors 4] [--keys 150] [--replicas ROOT,ROOT]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from bench.common import lsp_client, tiny_vllm, vllm_counters
from bench.prefix_cache import PROJECT, replay, session
from tests.support.router import vllm_router

QUERIES = "vllm:prefix_cache_queries_total"
HITS = "vllm:prefix_cache_hits_total"
FINISHED = "vllm:request_success_total"
CONFIGS = ("router, consistent_hash", "router, round_robin", "daemon's own choice (no router)")


@dataclass
class Row:
    config: str
    hits: float
    queries: float
    per_replica: list[float]
    seconds: float

    def line(self) -> str:
        split = " / ".join(f"{count:.0f}" for count in self.per_replica)
        return (
            f"{self.config:34} {self.hits / max(self.queries, 1):>10.1%} "
            f"{sum(self.per_replica):>9.0f} {split:>14} {self.seconds:>7.0f}"
        )


@contextlib.asynccontextmanager
async def endpoint_for(
    config: str, roots: list[str], work: Path
) -> AsyncIterator[dict[str, object]]:
    """The daemons' [instruct] table for ``config`` (starting its router, if any)."""
    if config.startswith("router"):
        policy = config.split(", ")[1]
        async with vllm_router(roots, policy, work / f"router-{policy}.log") as router:
            yield {"base_url": f"{router}/v1", "router": True}
    else:
        yield {"replicas": [f"{root}/v1" for root in roots]}


async def run_config(
    config: str, roots: list[str], model: str, work: Path, editors: int, keys: int
) -> Row:
    before = await asyncio.gather(*(vllm_counters(root) for root in roots))
    started = time.monotonic()
    async with endpoint_for(config, roots, work) as endpoint:

        async def editor(n: int) -> None:
            initial, strokes = session(keys, seed=n)
            workspace = work / f"config-{CONFIGS.index(config)}-{n}" / f"project-{n}"
            shutil.copytree(PROJECT, workspace, ignore=shutil.ignore_patterns("__pycache__"))
            for name, text in initial.items():
                (workspace / name).write_text(text)
            options = {
                "instruct": {**endpoint, "model": model},
                "completion": {
                    "max_tokens": 16,
                    "temperature": 0.0,
                    "cache_salt": f"bench-router-{config}-{n}-{time.time()}",
                },
                "index": {"cache_dir": str(workspace.parent / "index-cache")},
            }
            async with lsp_client(workspace, options) as client:
                await asyncio.sleep(2.0)  # the workspace index builds
                await replay(client, workspace, initial, strokes)

        await asyncio.gather(*(editor(n) for n in range(editors)))
    seconds = time.monotonic() - started
    after = await asyncio.gather(*(vllm_counters(root) for root in roots))

    def moved(name: str) -> list[float]:
        return [a.get(name, 0.0) - b.get(name, 0.0) for a, b in zip(after, before, strict=True)]

    return Row(config, sum(moved(HITS)), sum(moved(QUERIES)), moved(FINISHED), seconds)


@contextlib.asynccontextmanager
async def replicas(work: Path, reuse: str | None) -> AsyncIterator[tuple[list[str], str]]:
    if reuse:
        roots = reuse.split(",")
        async with tiny_vllm(work / "a", roots[0]) as (_, model):
            yield roots, model
        return
    (work / "a").mkdir()
    (work / "b").mkdir()
    async with (
        tiny_vllm(work / "a", None) as (first, model),
        tiny_vllm(work / "b", None) as (
            second,
            _,
        ),
    ):
        yield [first, second], model


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", type=int, default=4)
    parser.add_argument("--keys", type=int, default=150, help="keystrokes per editor")
    parser.add_argument("--replicas", help="comma-separated roots of running vLLM replicas")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with replicas(work, args.replicas) as (roots, model):
            rows = []
            for config in CONFIGS:
                rows.append(await run_config(config, roots, model, work, args.editors, args.keys))
                print(f"  {config}: done in {rows[-1].seconds:.0f} s", flush=True)
    print(
        f"\n{args.editors} editors at once, {args.keys} keystrokes each (each its own session "
        f"and cache_salt), {len(roots)} replicas\n"
    )
    print(
        f"{'configuration':34} {'hit ratio':>10} {'requests':>9} {'per replica':>14} {'seconds':>7}"
    )
    for row in rows:
        print(row.line())


if __name__ == "__main__":
    asyncio.run(main())
