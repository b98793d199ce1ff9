"""Inline completions while code actions stream on the same vLLM, with and without priority.

One vLLM (CPU build, tiny model) runs ``--scheduling-policy priority`` with few sequence slots
(``--max-num-seqs``), so long action streams fill them and queue, as on a busy shared GPU.
The real language server runs ``--actions`` explain loops on the reasoning endpoint while the
client asks for inline completions one after another and times each answer. Three rows, in
one run: no actions (the floor), actions at the inline priority (0: first come, first served),
and actions at a lower priority (10, the default). Each row has its own cache_salt.

    .venv/bin/python -m bench.priority [--actions 8] [--inline 40] [--max-num-seqs 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.common import lsp_client, percentile, tiny_vllm

SOURCE = '''def moving_average(values, window):
    """Average of each run of `window` values."""
    result = []
    for start in range(len(values) - window + 1):
        chunk = values[start : start + window]
'''


async def action_loop(client: LanguageClient, uri: str, stop: asyncio.Event) -> int:
    done = 0
    while not stop.is_set():
        try:
            await client.workspace_execute_command_async(
                types.ExecuteCommandParams(command="iquest.explain", arguments=[{"uri": uri}])
            )
            done += 1
        except Exception as error:  # a failed action is counted out, not fatal to the bench
            print(f"action failed: {error}", flush=True)
    return done


async def inline_latencies(client: LanguageClient, uri: str, count: int) -> list[float]:
    text, version, samples = SOURCE, 1, []
    for n in range(count):
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


async def run_row(
    root: str, model: str, work: Path, name: str, actions: int, action_priority: int, inline: int
) -> tuple[list[float], int]:
    endpoint = {"base_url": f"{root}/v1", "model": model}
    options = {
        "instruct": endpoint,
        "reasoning": endpoint,
        "completion": {
            "debounce_ms": 0,
            "max_tokens": 24,
            "temperature": 0.0,
            "timeout_s": 120,
            "cache_salt": f"bench-{name}",
        },
        "actions": {
            "max_tokens": 400,
            "temperature": 0.0,  # greedy: a random model would otherwise stop at random
            "priority": action_priority,
            "timeout_s": 600,
        },
        "index": {"enabled": False},
    }
    folder = work / name
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
        stop = asyncio.Event()
        loops = [asyncio.create_task(action_loop(client, uri, stop)) for _ in range(actions)]
        await asyncio.sleep(3.0 if actions else 0)  # the action streams fill the slots
        samples = await inline_latencies(client, uri, inline)
        stop.set()
        finished = sum(await asyncio.gather(*loops))
    return samples, finished


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=8)
    parser.add_argument("--inline", type=int, default=40)
    parser.add_argument("--max-num-seqs", type=int, default=4)
    parser.add_argument("--vllm-root", help="reuse a running tiny-model vLLM (priority policy)")
    args = parser.parse_args()
    extra = ("--scheduling-policy", "priority", "--max-num-seqs", str(args.max_num_seqs))
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with tiny_vllm(work, args.vllm_root, extra_args=extra) as (root, model):
            rows = [
                ("no actions running", 0, 0),
                ("actions at priority 0 (FCFS)", args.actions, 0),
                ("actions at priority 10", args.actions, 10),
            ]
            results = []
            for index, (label, actions, priority) in enumerate(rows):
                print(f"row: {label} ...", flush=True)
                samples, finished = await run_row(
                    root, model, work, f"row{index}", actions, priority, args.inline
                )
                results.append((label, samples, finished))
    print(
        f"\n{args.actions} explain loops (400 tokens each) against --max-num-seqs "
        f"{args.max_num_seqs}; {args.inline} inline completions (24 tokens) per row"
    )
    print(f"{'':32} {'p50 ms':>9} {'p95 ms':>9} {'mean ms':>9} {'actions done':>13}")
    for label, samples, finished in results:
        print(
            f"{label:32} {percentile(samples, 0.5):9.0f} {percentile(samples, 0.95):9.0f} "
            f"{statistics.mean(samples):9.0f} {finished:13d}"
        )
    fcfs, prioritized = results[1][1], results[2][1]
    print(
        f"\npriority cuts inline p50 by {percentile(fcfs, 0.5) / percentile(prioritized, 0.5):.1f}x"
        f" and p95 by {percentile(fcfs, 0.95) / percentile(prioritized, 0.95):.1f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
