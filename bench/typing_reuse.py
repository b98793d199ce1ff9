"""How often typing continues a request still streaming, with a real model (issue 28).

Random weights never write what a person types next, so this is measured with the embedded
model (SmolLM2-135M on vLLM's CPU build, no hub) on real code: at sampled lines of the standard
library's modules the line is emptied and typed back a character at a time (every
``--interval-ms``), each keystroke a didChange and an automatic inline request, as an editor
sends them. Side by side on one server, the same keystrokes: **continue** (a keystroke that
types what the streaming request has produced waits for it: ``completion.continue_streaming``)
and **cancel** (every keystroke cancels the request in flight and asks again).

Reported per configuration: requests sent to vLLM, keystrokes answered from the typing-through
memory and from a streaming request, tokens vLLM decoded (its counter) per keystroke, and the
suggestions' latency. Greedy decoding, so both configurations see the same model answers.

    .venv/bin/python -m bench.typing_reuse [--lines 12] [--interval-ms 150] [--vllm-root URL]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sysconfig
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from bench.common import daemon_stats, lsp_client, percentile, vllm_counters
from engine.local.embedded_model import EMBEDDED_MODEL_NAME, ensure_embedded_model
from engine.local.vllm_process import LocalVllmServer, LocalVllmSpec

SOURCES = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))


@dataclass(frozen=True)
class Line:
    path: Path
    number: int
    indent: str
    code: str


def sample_lines(count: int, seed: int) -> list[Line]:
    """Code lines of 20-60 characters inside functions (indented, not comments or strings)."""
    rng = random.Random(seed)
    found: list[Line] = []
    for path in rng.sample(SOURCES, len(SOURCES)):
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
        usable = [
            n
            for n, line in enumerate(lines)
            if line.startswith("        ")
            and 20 <= len(line.strip()) <= 60
            and not line.strip().startswith(("#", '"', "'", "@"))
            and line.isascii()
        ]
        if usable:
            n = rng.choice(usable)
            code = lines[n].strip()
            found.append(Line(path, n, lines[n][: len(lines[n]) - len(code)], code))
        if len(found) == count:
            break
    return found


async def type_line(client: object, uri: str, line: Line, interval_s: float) -> list[float]:
    """Types ``line`` back at its place; the latency of each non-empty answer."""
    latencies: list[float] = []
    pending: list[asyncio.Task[None]] = []
    typed = ""

    async def ask(position: types.Position, sent: float) -> None:
        result = await client.text_document_inline_completion_async(  # type: ignore[attr-defined]
            types.InlineCompletionParams(
                text_document=types.TextDocumentIdentifier(uri=uri),
                position=position,
                context=types.InlineCompletionContext(types.InlineCompletionTriggerKind.Automatic),
            )
        )
        items = result.items if isinstance(result, types.InlineCompletionList) else result
        if items:
            latencies.append((time.perf_counter() - sent) * 1000)

    for version, char in enumerate(line.code, start=2):
        column = len(line.indent) + len(typed)
        at = types.Position(line.number, column)
        client.text_document_did_change(  # type: ignore[attr-defined]
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=types.Range(at, at), text=char)
                ],
            )
        )
        typed += char
        position = types.Position(line.number, column + 1)
        pending.append(asyncio.create_task(ask(position, time.perf_counter())))
        await asyncio.sleep(interval_s)
    await asyncio.gather(*pending)
    return latencies


async def run_config(
    name: str,
    continue_streaming: bool,
    lines: list[Line],
    base_url: str,
    model: str,
    root: str,
    interval_s: float,
    work: Path,
) -> str:
    options = {
        "instruct": {"base_url": base_url, "model": model},
        "completion": {
            "temperature": 0.0,
            "candidates": 1,
            "multiline": "never",
            "prompt_token_budget": 512,
            "continue_streaming": continue_streaming,
        },
        "index": {"enabled": False},
        "log_file": str(work / f"{name.replace(' ', '-')}.log"),
    }
    before = await vllm_counters(root)
    latencies: list[float] = []
    keystrokes = 0
    async with lsp_client(work, options) as client:
        for number, line in enumerate(lines):
            source = line.path.read_text(encoding="utf-8", errors="replace").split("\n")
            source[line.number] = line.indent
            uri = (work / f"{name.replace(' ', '-')}-{number}-{line.path.name}").as_uri()
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    types.TextDocumentItem(uri, "python", 1, "\n".join(source))
                )
            )
            latencies += await type_line(client, uri, line, interval_s)
            keystrokes += len(line.code)
            client.text_document_did_close(
                types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(uri))
            )
        stats = await daemon_stats(client)
    after = await vllm_counters(root)
    decoded = after.get("vllm:generation_tokens_total", 0) - before.get(
        "vllm:generation_tokens_total", 0
    )
    sent = stats["backend_requests"]
    return (
        f"| {name} | {keystrokes} | {sent} ({sent / keystrokes:.0%}) | "
        f"{stats['served_from_memory']} | {stats['continued_streaming']} | "
        f"{decoded / keystrokes:.1f} | {len(latencies)} | "
        f"{statistics.median(latencies) if latencies else float('nan'):.0f} / "
        f"{percentile(latencies, 0.95):.0f} |"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=12)
    parser.add_argument("--interval-ms", type=float, default=150)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--vllm-root", help="a running vLLM serving the embedded model")
    args = parser.parse_args()
    lines = sample_lines(args.lines, args.seed)
    async with AsyncExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        if args.vllm_root:
            root, model = args.vllm_root, EMBEDDED_MODEL_NAME
        else:
            server = LocalVllmServer(
                LocalVllmSpec(
                    model_dir=await asyncio.to_thread(ensure_embedded_model),
                    served_model_name=EMBEDDED_MODEL_NAME,
                    work_dir=work,
                    max_model_len=2048,
                    block_size=32,
                    dtype="float32",
                )
            )
            await server.start(timeout_s=600)
            stack.push_async_callback(server.stop)
            root, model = server.root_url, EMBEDDED_MODEL_NAME
        print(
            f"{len(lines)} lines, {sum(len(line.code) for line in lines)} keystrokes, one every "
            f"{args.interval_ms:.0f} ms; {model} on {root}\n"
        )
        print(
            "| configuration | keystrokes | requests to vLLM | from memory | from a streaming "
            "request | tokens decoded / keystroke | suggestions | latency p50 / p95 ms |"
        )
        print("|---|---|---|---|---|---|---|---|")
        # Continue again at the end: the first and last rows show what order alone changes.
        for name, enabled in (("continue", True), ("cancel", False), ("continue again", True)):
            print(
                await run_config(
                    name,
                    enabled,
                    lines,
                    f"{root}/v1",
                    model,
                    root,
                    args.interval_ms / 1000,
                    work,
                ),
                flush=True,
            )


if __name__ == "__main__":
    asyncio.run(main())
