"""Many editors typing through one team-mode daemon against a real vLLM.

Starts ``iquest-lsp --serve`` (a separate process, as deployed) and ``--editors`` simulated
editors, each its own TCP connection and token, each typing into a real source file and asking
for inline completions as it goes (automatic trigger: the daemon debounces and cancels as for
a person). Reports errors, suggestions, the daemon's own overhead per backend request (from
each connection's ``iquest/stats``), suggestion latency, and the daemon's resident memory
after a warm-up and at the end (``--seconds`` longer makes it a soak).

    .venv/bin/python -m bench.team_load [--editors 100] [--seconds 60] [--vllm-root URL]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import statistics
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import percentile, start_team_daemon, tiny_vllm
from engine.team.tokens import TokenStore
from lsp.serve.framing import frame, read_bodies

SOURCES = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:200]


@dataclass
class EditorResult:
    requests: int = 0
    suggestions: int = 0
    errors: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    overheads_ms: list[float] = field(default_factory=list)
    worker_pid: int | None = None


class Rpc:
    """The smallest JSON-RPC client: requests by id, server requests answered with null."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 0
        self.task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        async for body in read_bodies(reader, 64 * 1024 * 1024):
            message = json.loads(body)
            if "id" in message and "method" in message:  # a request from the server
                answer: object = [{}] if message["method"] == "workspace/configuration" else None
                self.send({"jsonrpc": "2.0", "id": message["id"], "result": answer})
            elif "id" in message and message["id"] in self.pending:
                self.pending.pop(message["id"]).set_result(message)

    def send(self, message: dict[str, Any]) -> None:
        self.writer.write(frame(json.dumps(message).encode()))

    def notify(self, method: str, params: object) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    async def request(self, method: str, params: object, timeout_s: float = 30) -> dict[str, Any]:
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[self.next_id] = future
        self.send({"jsonrpc": "2.0", "id": self.next_id, "method": method, "params": params})
        return await asyncio.wait_for(future, timeout_s)


async def open_editor(
    rpc: Rpc,
    token: str,
    n: int,
    rng: random.Random,
    max_lines: int,
    capabilities: dict[str, Any] | None = None,
) -> tuple[str, list[str]]:
    """Editor ``n`` initializes with its token and opens a random real source file: its URI
    and lines."""
    await rpc.request(
        "initialize",
        {
            "processId": None,
            "capabilities": capabilities or {"textDocument": {"inlineCompletion": {}}},
            "initializationOptions": {"token": token},
            "workspaceFolders": [{"uri": f"file:///editor{n}/proj", "name": "proj"}],
        },
    )
    rpc.notify("initialized", {})
    source = rng.choice(SOURCES)
    lines = source.read_text(errors="replace").splitlines()[:max_lines] or [""]
    uri = f"file:///editor{n}/proj/{source.name}"
    rpc.notify(
        "textDocument/didOpen",
        {
            "textDocument": {
                "uri": uri,
                "languageId": "python",
                "version": 1,
                "text": "\n".join(lines),
            }
        },
    )
    return uri, lines


@dataclass
class Cursor:
    """Where an editor types; each keystroke is sent as the editor sends it (an insertion at
    the cursor, one version later). Shared by every benchmark that types."""

    uri: str
    line: int
    column: int
    version: int = 1

    def type(self, rpc: Rpc, char: str) -> dict[str, int]:
        """Sends ``char`` typed at the cursor; the position after it."""
        self.version += 1
        start = {"line": self.line, "character": self.column}
        rpc.notify(
            "textDocument/didChange",
            {
                "textDocument": {"uri": self.uri, "version": self.version},
                "contentChanges": [{"range": {"start": start, "end": start}, "text": char}],
            },
        )
        if char == "\n":
            self.line, self.column = self.line + 1, 0
        else:
            self.column += 1
        return {"line": self.line, "character": self.column}


def typing_cursor(uri: str, lines: list[str], rng: random.Random) -> Cursor:
    """At the end of a real line in the middle of the file (new code typed after it)."""
    line = rng.randrange(len(lines) // 3, max(len(lines) // 3 + 1, len(lines) - 1))
    return Cursor(uri, line, len(lines[line]))


async def ask_inline(rpc: Rpc, cursor_at: dict[str, int], uri: str) -> dict[str, Any]:
    """The automatic inline completion request an editor makes after a keystroke."""
    return await rpc.request(
        "textDocument/inlineCompletion",
        {"textDocument": {"uri": uri}, "position": cursor_at, "context": {"triggerKind": 2}},
    )


async def editor(port: int, token: str, n: int, until: float, seed: int) -> EditorResult:
    rng = random.Random(seed)
    result = EditorResult()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rpc = Rpc(reader, writer)
    try:
        uri, lines = await open_editor(rpc, token, n, rng, max_lines=400)
        cursor = typing_cursor(uri, lines, rng)
        typed = "    value = compute(items, key=lambda item: item.size) + offset\n" * 50
        for char in typed:
            if time.monotonic() > until:
                break
            position = cursor.type(rpc, char)
            sent = time.perf_counter()
            result.requests += 1
            try:
                answer = await ask_inline(rpc, position, uri)
            except TimeoutError:
                result.errors.append("no answer in 30 s")
                continue
            if "error" in answer:
                result.errors.append(str(answer["error"].get("message")))
            elif answer.get("result") and answer["result"].get("items"):
                result.suggestions += 1
                result.latencies_ms.append((time.perf_counter() - sent) * 1000)
            await asyncio.sleep(rng.uniform(0.08, 0.25))
        stats = await rpc.request("iquest/stats", None)
        result.overheads_ms = list(stats.get("result", {}).get("overheads_ms", []))
        result.worker_pid = stats.get("result", {}).get("worker_pid")
        await rpc.request("shutdown", None)
        rpc.notify("exit", None)
    except Exception as error:
        result.errors.append(f"{type(error).__name__}: {error}")
    finally:
        rpc.task.cancel()
        writer.close()
    return result


def process_tree(pid: int) -> list[int]:
    """The daemon and its worker processes (--workers)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(c) for c in (task / "children").read_text().split()]
    return [pid, *children]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of the daemon's processes so far."""
    return sum(process_cpu_seconds(each) for each in process_tree(pid))


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU time of one process so far (its threads, not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_idle() -> tuple[float, float]:
    """(idle, total) CPU ticks of the whole machine so far."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return ticks[3] + ticks[4], sum(ticks[:8])


def rss_mb(pid: int) -> float:
    """Resident memory of the daemon's processes, summed."""
    total = 0.0
    for each in process_tree(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) / 1024
    return total


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=15, help="seconds before the first RSS")
    parser.add_argument("--vllm-root", help="reuse a running tiny-model vLLM")
    parser.add_argument("--workers", type=int, default=1, help="daemon worker processes")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with tiny_vllm(work, args.vllm_root) as (root, model):
            store = TokenStore(work / "tokens.json")
            tokens = [store.add(f"user{n}") for n in range(args.editors)]
            config = work / "server.toml"
            config.write_text(
                f'log_file = "{work / "daemon.log"}"\n'
                f'[instruct]\nbase_url = "{root}/v1"\nmodel = "{model}"\n'
                "[completion]\nmax_tokens = 16\ntemperature = 0.0\ntimeout_s = 20.0\n"
            )
            # IQUEST_PROFILE=FILE: the daemon runs under cProfile (written when it stops).
            profile = os.environ.get("IQUEST_PROFILE")
            profiler = ["-m", "cProfile", "-o", profile] if profile else []
            daemon, port, _ = await start_team_daemon(
                *("--tokens", str(store.path), "--config", str(config)),
                *(["--workers", str(args.workers)] if args.workers > 1 else []),
                python=tuple(profiler),
            )
            print(
                f"daemon up (port {port}); {args.editors} editors for {args.seconds:g} s",
                flush=True,
            )
            try:
                until = time.monotonic() + args.seconds
                jobs = [
                    asyncio.create_task(editor(port, tokens[n], n, until, seed=n))
                    for n in range(args.editors)
                ]
                cpu_from, idle_from = cpu_seconds(daemon.pid), machine_idle()
                await asyncio.sleep(min(args.warmup, args.seconds / 2))
                warm_rss = rss_mb(daemon.pid)
                results = await asyncio.gather(*jobs)
                end_rss = rss_mb(daemon.pid)
                daemon_cpu = cpu_seconds(daemon.pid) - cpu_from
                idle_to = machine_idle()
            finally:
                daemon.send_signal(signal.SIGINT)  # a clean stop: the profile gets written
                try:
                    await asyncio.wait_for(daemon.wait(), 20)
                except TimeoutError:
                    daemon.kill()
                    await daemon.wait()
    errors = [e for r in results for e in r.errors]
    overheads = [o for r in results for o in r.overheads_ms]
    latencies = [x for r in results for x in r.latencies_ms]
    requests = sum(r.requests for r in results)
    print(
        f"\n{args.editors} editors, {args.seconds:g} s: {requests} inline requests "
        f"({requests / args.seconds:.0f}/s), {sum(r.suggestions for r in results)} suggestions, "
        f"{len(errors)} errors"
    )
    for message in sorted(set(errors))[:5]:
        print(f"  error: {message} (x{errors.count(message)})")
    print(
        f"daemon overhead per backend request: p50 {percentile(overheads, 0.5):.2f} ms, "
        f"p95 {percentile(overheads, 0.95):.2f} ms, p99 {percentile(overheads, 0.99):.2f} ms "
        f"over {len(overheads)} requests (target p95 <= 10 ms)"
    )
    pids = [r.worker_pid for r in results if r.worker_pid is not None]
    if args.workers > 1:
        spread = sorted((pids.count(pid) for pid in set(pids)), reverse=True)
        print(f"editors per worker process: {spread}")
    idle_share = (idle_to[0] - idle_from[0]) / max(1, idle_to[1] - idle_from[1])
    print(
        f"daemon CPU: {daemon_cpu:.1f} s in {args.seconds:g} s "
        f"({daemon_cpu / args.seconds * 100:.0f}% of a core), "
        f"{daemon_cpu * 1000 / max(1, requests):.2f} ms per inline request; "
        f"the machine's {os.cpu_count()} cores were {idle_share * 100:.0f}% idle (when none is "
        "idle, the daemon waits for the scheduler and that wait counts as its overhead)"
    )
    if latencies:
        print(
            f"suggestion latency at the editor: p50 {percentile(latencies, 0.5):.0f} ms, "
            f"p95 {percentile(latencies, 0.95):.0f} ms, mean {statistics.mean(latencies):.0f} ms"
        )
    warmup = min(args.warmup, args.seconds / 2)
    print(
        f"daemon resident memory: {warm_rss:.0f} MB after {warmup:g} s, "
        f"{end_rss:.0f} MB at the end ({(end_rss / warm_rss - 1) * 100:+.1f}%; soak target < 5%)"
    )


if __name__ == "__main__":
    asyncio.run(main())
