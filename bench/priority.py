"""Inline completions while code actions stream on the same vLLM, with and without priority.

One vLLM (CPU build, tiny model) runs ``--scheduling-policy priority`` with few sequence slots
(``--max-num-seqs``), so long action streams fill them and queue, as on a busy shared GPU.
The real language server runs ``--actions`` explain loops on the reasoning endpoint while the
client asks for inline completions one after another and times each answer. Four rows, in
one run: no actions (the floor), actions at the inline priority (0: first come, first served),
actions at a lower priority (10, the default) with no budget, and the same with the daemon's
budget of running actions (issue 13: completions always find a free slot). Each row has its
own cache_salt and measures for ``--seconds``; actions/min counts those finished inside it.

    .venv/bin/python -m bench.priority [--actions 8] [--seconds 60] [--max-num-seqs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.common import daemon_stats, lsp_client, percentile, tiny_vllm
from engine.endpoints import budget_for

SOURCE = '''def moving_average(values, window):
    """Average of each run of `window` values."""
    result = []
    for start in range(len(values) - window + 1):
        chunk = values[start : start + window]
'''


@dataclass
class ActionLoops:
    """Explain actions run back to back by ``count`` loops; ends of actions are timed."""

    client: LanguageClient
    uri: str
    finished_at: list[float] = field(default_factory=list)
    in_flight: set[str] = field(default_factory=set)
    stopping: bool = False

    async def loop(self, name: str) -> None:
        for n in itertools.count():
            if self.stopping:
                return
            request_id = f"{name}-{n}"
            self.in_flight.add(request_id)
            try:
                await self.client.protocol.send_request_async(
                    types.WORKSPACE_EXECUTE_COMMAND,
                    types.ExecuteCommandParams(
                        command="iquest.explain", arguments=[{"uri": self.uri}]
                    ),
                    msg_id=request_id,
                )
                self.finished_at.append(time.perf_counter())
            except Exception as error:  # a failed or cancelled action is counted out
                if not self.stopping:
                    print(f"action failed: {error}", flush=True)
            finally:
                self.in_flight.discard(request_id)

    def stop(self) -> None:
        """Cancels what runs or waits: the next row starts on an idle server."""
        self.stopping = True
        for request_id in list(self.in_flight):
            self.client.protocol.notify("$/cancelRequest", types.CancelParams(id=request_id))


async def inline_latencies(
    client: LanguageClient, uri: str, count: int, until: float = math.inf
) -> list[float]:
    text, version, samples = SOURCE, 1, []
    for n in range(count):
        if time.perf_counter() >= until:
            break
        # A new line each time: no answer can come from the typing-through memory.
        addition = f"        total_{n} = sum(chunk)\n"
        lines = text.split("\n")
        end = types.Position(line=len(lines) - 1, character=len(lines[-1]))
        version += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(
                        range=types.Range(start=end, end=end), text=addition
                    )
                ],
            )
        )
        text += addition
        lines = text.split("\n")
        cursor = types.Position(line=len(lines) - 1, character=0)
        started = time.perf_counter()
        await client.text_document_inline_completion_async(
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=cursor,
                context=types.InlineCompletionContext(
                    trigger_kind=types.InlineCompletionTriggerKind.Invoked
                ),
            )
        )
        samples.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.2)
    return samples


@dataclass(frozen=True)
class Row:
    label: str
    loops: int
    priority: int
    budgeted: bool


@dataclass(frozen=True)
class RowResult:
    row: Row
    latencies_ms: list[float]
    actions_per_minute: float
    # The daemon's own time per completion (request in -> HTTP request out, debounce timer
    # lateness included): how busy the action streams kept its event loop.
    overhead_p95_ms: float


async def run_row(
    root: str, model: str, work: Path, index: int, row: Row, max_num_seqs: int, seconds: float
) -> RowResult:
    # The budgeted row is told the server's sequence limit, as `iquest-lsp vllm` writes it;
    # the others lift the budget out of the way (the daemon before issue 13).
    endpoint = {"base_url": f"{root}/v1", "model": model}
    if row.budgeted:
        endpoint["max_num_seqs"] = max_num_seqs
    options = {
        "instruct": endpoint,
        "reasoning": endpoint,
        "completion": {
            "debounce_ms": 0,
            "max_tokens": 24,
            "temperature": 0.0,
            "timeout_s": 120,
            "cache_salt": f"bench-{index}",
        },
        "actions": {
            "max_tokens": 400,
            "temperature": 0.0,  # greedy: a random model would otherwise stop at random
            "priority": row.priority,
            "timeout_s": 600,
            "max_running": 0 if row.budgeted else 100_000,
        },
        "index": {"enabled": False},
    }
    folder = work / f"row{index}"
    folder.mkdir()
    uri = (folder / "stats.py").as_uri()
    async with lsp_client(folder, options) as client:
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(
                    uri=uri, language_id="python", version=1, text=SOURCE
                )
            )
        )
        await inline_latencies(client, uri, 2)  # discovery and warm-up, not measured
        actions = ActionLoops(client, uri)
        loops = [asyncio.create_task(actions.loop(f"loop{n}")) for n in range(row.loops)]
        await asyncio.sleep(3.0 if row.loops else 0)  # the action streams fill the slots
        started = time.perf_counter()
        samples = await inline_latencies(client, uri, 1_000_000, until=started + seconds)
        ended = time.perf_counter()
        stats = await daemon_stats(client)
        actions.stop()
        await asyncio.gather(*loops)
    finished = sum(started <= t <= ended for t in actions.finished_at)
    overheads = [float(v) for v in stats.get("overheads_ms") or []][-len(samples) :]
    return RowResult(
        row, samples, finished * 60 / (ended - started), percentile(overheads or [0.0], 0.95)
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=8, help="explain loops")
    parser.add_argument("--seconds", type=float, default=60, help="measured time per row")
    parser.add_argument("--max-num-seqs", type=int, default=4)
    parser.add_argument("--vllm-root", help="reuse a running tiny-model vLLM (priority policy)")
    args = parser.parse_args()
    extra = ("--scheduling-policy", "priority", "--max-num-seqs", str(args.max_num_seqs))
    rows = [
        Row("no actions running", 0, 0, False),
        Row("actions at priority 0 (FCFS)", args.actions, 0, False),
        Row("actions at priority 10", args.actions, 10, False),
        Row("actions budgeted", args.actions, 10, True),
    ]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with tiny_vllm(work, args.vllm_root, extra_args=extra) as (root, model):
            results = []
            for index, row in enumerate(rows):
                print(f"row: {row.label} ...", flush=True)
                results.append(
                    await run_row(root, model, work, index, row, args.max_num_seqs, args.seconds)
                )
    print(
        f"\n{args.actions} explain loops (400 tokens each) against --max-num-seqs "
        f"{args.max_num_seqs}; inline completions (24 tokens) for {args.seconds:.0f} s per row; "
        f"budget {budget_for(args.max_num_seqs)} running actions"
    )
    print(
        f"{'':30} {'inline n':>9} {'p50 ms':>8} {'p95 ms':>8} {'mean ms':>8} {'actions/min':>12}"
        f" {'daemon p95 ms':>14}"
    )
    for result in results:
        samples = result.latencies_ms
        print(
            f"{result.row.label:30} {len(samples):9d} {percentile(samples, 0.5):8.0f} "
            f"{percentile(samples, 0.95):8.0f} {statistics.mean(samples):8.0f} "
            f"{result.actions_per_minute:12.1f} {result.overhead_p95_ms:14.1f}"
        )
    idle, _, prioritized, budgeted = results
    print(
        f"\nbudgeted inline p95 / idle p95: "
        f"{percentile(budgeted.latencies_ms, 0.95) / percentile(idle.latencies_ms, 0.95):.2f}x "
        f"(target <= 1.5x); priority-only: "
        f"{percentile(prioritized.latencies_ms, 0.95) / percentile(idle.latencies_ms, 0.95):.2f}x"
    )
    if prioritized.actions_per_minute:
        print(
            f"budgeted action throughput / priority-only: "
            f"{budgeted.actions_per_minute / prioritized.actions_per_minute:.2f} (target >= 0.90)"
        )


if __name__ == "__main__":
    asyncio.run(main())
