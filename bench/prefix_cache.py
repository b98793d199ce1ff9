"""How much of each prompt vLLM serves from its prefix cache while someone types.

Replays editing sessions through the real language server (``python -m lsp`` over stdio)
against a real vLLM (the CPU build on the tiny model: caching does not depend on weights):
real files of a well-known project (httpx, from the installed packages) retyped character by
character with realistic pauses, with jumps between files, edits in the middle of files,
typos deleted and retyped (``--project cobra`` or another corpus project: a Go or Rust session
on Debian's sources, regions cut from the middle of its largest files). Each layout runs the
same session with its own ``cache_salt``, so
none reuses another's cache, and reads vLLM's own counters and the per-request
``usage.prompt_tokens_details.cached_tokens``.

    .venv/bin/python -m bench.prefix_cache [--keys 400] [--project NAME]
        [--vllm-root http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx as httpx_package
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from bench.common import daemon_stats, kv_block_size, lsp_client, tiny_vllm, vllm_counters
from bench.context_recall import EXTENSIONS
from engine.repository.languages import language_for
from tests.support.corpus import OTHER_LANGUAGES, PROJECTS, project_root

PROJECT = Path(httpx_package.__file__).parent
# (file, first line of the region to retype, number of lines) — mid-file function bodies.
REGIONS = [
    ("_urls.py", 300, 40),
    ("_models.py", 520, 40),
    ("_urls.py", 420, 30),
    ("_client.py", 900, 40),
]

LAYOUTS = {
    "ours (stable, cursor line after FIM middle)": {"layout": "stable", "cursor_line": "middle"},
    "ours (stable, plain PSM)": {"layout": "stable", "cursor_line": "prefix"},
    "naive (reordered context, sliding window)": {"layout": "naive", "cursor_line": "prefix"},
}


@dataclass(frozen=True)
class Keystroke:
    file: str
    offset: int  # where, in the file's current text
    insert: str  # text inserted there ('' for a deletion)
    delete: int  # characters deleted before the offset
    pause_s: float


def corpus_regions(root: Path, suffix: str) -> list[tuple[str, int, int]]:
    """Mid-file regions of a project's three largest files of one language (tests aside): a
    third of the way down each, and two thirds down the largest."""
    files = sorted(
        (p for p in root.rglob(f"*{suffix}") if "test" not in p.relative_to(root).as_posix()),
        key=lambda p: -p.stat().st_size,
    )[:3]
    regions = []
    for rank, path in enumerate(files):
        count = path.read_text(errors="replace").count("\n")
        relative = path.relative_to(root).as_posix()
        regions.append((relative, count // 3, 30))
        if rank == 0:
            regions.append((relative, 2 * count // 3, 20))
    return regions


def session(
    keys: int, seed: int, project: Path = PROJECT, regions: list[tuple[str, int, int]] = REGIONS
) -> tuple[dict[str, str], list[Keystroke]]:
    """Initial texts (regions cut out) and the keystrokes that type them back in."""
    rng = random.Random(seed)
    originals = {name: (project / name).read_text() for name, _, _ in regions}
    texts = dict(originals)
    plan: list[tuple[str, int, str]] = []  # (file, offset, text to type)
    # Cut every region first (from the bottom up, so offsets stay valid), then retype in order.
    cuts: dict[str, list[tuple[int, str]]] = {}
    for name, first, count in sorted(regions, key=lambda r: (r[0], -r[1])):
        lines = texts[name].splitlines(keepends=True)
        start = sum(len(line) for line in lines[:first])
        region = "".join(lines[first : first + count])
        texts[name] = texts[name][:start] + texts[name][start + len(region) :]
        cuts.setdefault(name, []).append((start, region))
    for name, first, _ in regions:
        start, region = next(
            (s, r) for s, r in cuts[name] if s == _start_of(originals[name], first)
        )
        plan.append((name, start, region))
    initial = dict(texts)
    strokes: list[Keystroke] = []
    shift: dict[str, list[tuple[int, int]]] = {}
    for name, start, region in plan:
        # Earlier typing in the same file above this point moved it.
        offset = start + sum(n for at, n in shift.get(name, []) if at <= start)
        typed = 0
        index = 0
        budget = keys // len(plan)  # every region gets its share: the session jumps files
        while index < len(region) and budget > 0:
            char = region[index]
            if char == "\n":
                # Enter: the editor inserts the next line's indentation with it.
                indent_end = index + 1
                while indent_end < len(region) and region[indent_end] in " \t":
                    indent_end += 1
                chunk = region[index:indent_end]
            else:
                chunk = char
            if char.isalpha() and rng.random() < 0.03:
                strokes.append(Keystroke(name, offset, rng.choice("qxzj"), 0, _pause(rng)))
                strokes.append(Keystroke(name, offset + 1, "", 1, _pause(rng)))
                budget -= 2
            strokes.append(Keystroke(name, offset, chunk, 0, _pause(rng)))
            offset += len(chunk)
            typed += len(chunk)
            index += len(chunk)
            budget -= 1
        shift.setdefault(name, []).append((start, typed))
    return initial, strokes


def _start_of(text: str, line: int) -> int:
    return sum(len(item) for item in text.splitlines(keepends=True)[:line])


def _pause(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.70:
        return rng.uniform(0.06, 0.14)
    if roll < 0.95:
        return rng.uniform(0.14, 0.40)
    return rng.uniform(0.6, 1.5)  # thinking


def position(text: str, offset: int) -> types.Position:
    line = text.count("\n", 0, offset)
    start = text.rfind("\n", 0, offset) + 1
    return types.Position(line=line, character=len(text[start:offset].encode("utf-16-le")) // 2)


async def replay(
    client: LanguageClient, workspace: Path, initial: dict[str, str], strokes: list[Keystroke]
) -> None:
    texts = dict(initial)
    versions = dict.fromkeys(texts, 1)
    opened: set[str] = set()
    pending = []
    for stroke in strokes:
        uri = (workspace / stroke.file).as_uri()
        if stroke.file not in opened:
            client.text_document_did_open(
                types.DidOpenTextDocumentParams(
                    text_document=types.TextDocumentItem(
                        uri=uri,
                        language_id=language_for(stroke.file) or "plaintext",
                        version=1,
                        text=texts[stroke.file],
                    )
                )
            )
            opened.add(stroke.file)
        text = texts[stroke.file]
        start = stroke.offset - stroke.delete
        change_range = types.Range(start=position(text, start), end=position(text, stroke.offset))
        text = text[:start] + stroke.insert + text[stroke.offset :]
        texts[stroke.file] = text
        versions[stroke.file] += 1
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(
                    uri=uri, version=versions[stroke.file]
                ),
                content_changes=[
                    types.TextDocumentContentChangePartial(range=change_range, text=stroke.insert)
                ],
            )
        )
        cursor = position(text, start + len(stroke.insert))
        pending.append(
            asyncio.ensure_future(
                client.text_document_inline_completion_async(
                    types.InlineCompletionParams(
                        text_document=types.TextDocumentIdentifier(uri=uri),
                        position=cursor,
                        context=types.InlineCompletionContext(
                            trigger_kind=types.InlineCompletionTriggerKind.Automatic
                        ),
                    )
                )
            )
        )
        await asyncio.sleep(stroke.pause_s)
    await asyncio.gather(*pending, return_exceptions=True)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=400, help="keystrokes per layout")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--budget", type=int, default=2048, help="prompt token budget")
    parser.add_argument("--vllm-root", help="use this running vLLM instead of starting one")
    parser.add_argument("--project", help="a corpus project (tests/support/corpus.py)")
    args = parser.parse_args()
    source, regions, name = PROJECT, REGIONS, "httpx"
    if args.project:
        chosen = next(p for p in (*PROJECTS, *OTHER_LANGUAGES) if p.name == args.project)
        source, name = project_root(chosen), chosen.name
        regions = corpus_regions(source, EXTENSIONS[chosen.language][0])
    initial, strokes = session(args.keys, args.seed, source, regions)
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        workspace = work / name
        shutil.copytree(source, workspace, ignore=shutil.ignore_patterns("__pycache__"))
        for file, text in initial.items():
            (workspace / file).write_text(text)
        async with tiny_vllm(work, args.vllm_root) as (root, model):
            block_size = await kv_block_size(root)
            rows = []
            for label, layout in LAYOUTS.items():
                before = await vllm_counters(root)
                options = {
                    "instruct": {"base_url": f"{root}/v1", "model": model},
                    "completion": {
                        **layout,
                        "max_tokens": 16,
                        "temperature": 0.0,
                        "prompt_token_budget": args.budget,
                        "cache_salt": f"bench-{label}-{time.time()}",
                    },
                    "index": {"cache_dir": str(work / "index-cache")},
                }
                async with lsp_client(workspace, options) as client:
                    await asyncio.sleep(2.0)  # the workspace index builds
                    await replay(client, workspace, initial, strokes)
                    stats = await daemon_stats(client)
                after = await vllm_counters(root)
                queries = (
                    after["vllm:prefix_cache_queries_total"]
                    - before["vllm:prefix_cache_queries_total"]
                )
                hits = (
                    after["vllm:prefix_cache_hits_total"] - before["vllm:prefix_cache_hits_total"]
                )
                prompt_tokens = (
                    after["vllm:prompt_tokens_total"] - before["vllm:prompt_tokens_total"]
                )
                rows.append((label, stats, hits, queries, prompt_tokens))
    print(
        f"\n{len(strokes)} keystrokes per layout over {len(regions)} regions of {name} "
        f"({', '.join(sorted({r[0] for r in regions}))}); prompt budget {args.budget} tokens; "
        f"vLLM at {args.vllm_root or 'a CPU server it started'}, KV block size {block_size}\n"
    )
    print(
        f"{'layout':46} {'requests':>8} {'prompt tok/req':>14} {'hit ratio (vLLM metrics)':>25} "
        f"{'cached (usage)':>15}"
    )
    for label, stats, hits, queries, prompt_tokens in rows:
        requests = stats["backend_requests"]
        usage_ratio = stats["cached_tokens"] / max(stats["prompt_tokens"], 1)
        print(
            f"{label:46} {requests:8d} {prompt_tokens / max(requests, 1):14.0f} "
            f"{hits / max(queries, 1):25.1%} {usage_ratio:15.1%}"
        )
    print(
        "\nhit ratio: vllm:prefix_cache_hits_total / vllm:prefix_cache_queries_total over the "
        "run. cached (usage): usage.prompt_tokens_details.cached_tokens over prompt_tokens, for "
        "the requests whose stream ran to its end (a stream the daemon cuts early, once it has "
        "its line, never receives usage)."
    )


if __name__ == "__main__":
    asyncio.run(main())
