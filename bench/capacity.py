"""How many developers one vLLM serves with suggestions inside 300 ms: ours vs a plain layout.

Editors type **open loop**, as people do: bursts of keystrokes at 4-8 characters a second and
pauses of 0.3-3 s, whatever the answers do. Each keystroke is a ``didChange`` and an automatic
``inlineCompletion`` (the daemon debounces and cancels); 10% of editors also run an Explain
every 60 s. Files are real source files (the standard library's); each editor has its own token
and user, so its own ``cache_salt``. Latency is from the last keystroke before a pause to the
suggestion's arrival at the editor. Suggestion lengths are fixed by ``bench.length_proxy``
(single-line 8-24 tokens, multi-line 40-128), the same for both configurations.

Side by side on one vLLM, alternating per N: **ours** (stable layout, cursor line after the FIM
middle, actions at a lower priority) and **plain** (our daemon with ``layout = "naive"``, the
cursor line in the prefix and priority off: what a client without our layout sends). Each
configuration is its own ``--serve`` daemon (own token store, so own salts).

    .venv/bin/python -m bench.capacity --editors 2,4 --seconds 15          # CPU, tiny model
    python3 -m bench.capacity --vllm-root http://127.0.0.1:8000 --editors 16,32,64,128,256
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import signal
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import percentile, start_team_daemon, tiny_vllm
from bench.length_proxy import proxy_process
from bench.team_load import Rpc, ask_inline, cpu_seconds, open_editor, typing_cursor
from engine.team.tokens import TokenStore

TARGET_MS = 300.0
SINGLE_LINE_CAP = 32  # completion.max_tokens_single_line for both daemons: the proxy reads it


@dataclass
class Config:
    name: str
    layout: str
    cursor_line: str
    action_priority: int


CONFIGS = (
    Config("ours", "stable", "middle", 10),
    Config("plain", "naive", "prefix", 0),
)


@dataclass
class EditorLog:
    latencies_ms: list[float] = field(default_factory=list)
    # The same, for the suggestions of one line only (most of them; a multi-line one of
    # 40-128 tokens takes longer to generate than the 300 ms target on its own).
    single_line_ms: list[float] = field(default_factory=list)
    requests: int = 0
    pauses: int = 0  # bursts that ended: each should bring a suggestion
    errors: list[str] = field(default_factory=list)
    explains: int = 0


@dataclass(frozen=True)
class VllmSnapshot:
    counters: dict[str, float]
    ttft_buckets: dict[float, float]


async def vllm_snapshot(root: str) -> VllmSnapshot:
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{root}/metrics")).text
    counters: dict[str, float] = {}
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            counters[sample.name] = counters.get(sample.name, 0.0) + sample.value
            if sample.name == "vllm:time_to_first_token_seconds_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return VllmSnapshot(counters, buckets)


def bucket_percentile(before: dict[float, float], after: dict[float, float], q: float) -> float:
    """The histogram's bound under which a share ``q`` of the step's observations fall."""
    bounds = sorted(after)
    delta = [after[b] - before.get(b, 0.0) for b in bounds]
    total = delta[-1] if delta else 0.0
    for bound, count in zip(bounds, delta, strict=True):
        if total and count >= q * total:
            return bound
    return float("nan")


async def sample_gauges(root: str, stop: asyncio.Event, into: dict[str, list[float]]) -> None:
    """vLLM's KV cache usage and (where nvidia-smi exists) GPU utilization, twice a second."""
    smi = shutil.which("nvidia-smi")
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            with contextlib.suppress(httpx.HTTPError):
                text = (await client.get(f"{root}/metrics")).text
                for family in text_string_to_metric_families(text):
                    for sample in family.samples:
                        if sample.name in ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"):
                            into["kv"].append(sample.value * 100)
            if smi:
                process = await asyncio.create_subprocess_exec(
                    smi,
                    "--query-gpu=utilization.gpu",
                    "--format=csv,noheader,nounits",
                    stdout=asyncio.subprocess.PIPE,
                )
                out, _ = await process.communicate()
                values = [float(v) for v in out.decode().split() if v.strip().isdigit()]
                if values:
                    into["gpu"].append(statistics.mean(values))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)


async def open_loop_editor(
    port: int, token: str, n: int, until: float, seed: int, explain: bool
) -> EditorLog:
    rng = random.Random(seed)
    log = EditorLog()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    rpc = Rpc(reader, writer)
    pending: set[asyncio.Task[None]] = set()
    try:
        capabilities = {
            "textDocument": {"inlineCompletion": {}},
            "window": {"workDoneProgress": False},
        }
        uri, lines = await open_editor(rpc, token, n, rng, 600, capabilities)
        cursor = typing_cursor(uri, lines, rng)
        typing = "\n        result = compute(items, key=lambda item: item.size) + offset"
        if time.monotonic() >= until:
            log.errors.append("setting up took the whole step")
        next_explain = time.monotonic() + rng.uniform(0, 60) if explain else float("inf")
        while time.monotonic() < until:
            if time.monotonic() >= next_explain:
                next_explain += 60
                log.explains += 1
                pending.add(asyncio.create_task(_explain(rpc, uri, log)))
            rate = rng.uniform(4, 8)
            burst = rng.randint(3, 20)
            last: asyncio.Future[tuple[float, bool] | None] | None = None
            for _ in range(burst):
                position = cursor.type(rpc, typing[rng.randrange(len(typing))])
                log.requests += 1
                last = asyncio.ensure_future(_complete(rpc, uri, position, log))
                await asyncio.sleep(1 / rate)
            if last is not None:
                log.pauses += 1
                pending.add(asyncio.create_task(_record(last, log)))
            await asyncio.sleep(rng.uniform(0.3, 3.0))
        await asyncio.gather(*pending)
        await rpc.request("shutdown", None)
        rpc.notify("exit", None)
    except Exception as error:
        log.errors.append(f"{type(error).__name__}: {error}")
    finally:
        rpc.task.cancel()
        writer.close()
    return log


async def _complete(
    rpc: Rpc, uri: str, position: dict[str, int], log: EditorLog
) -> tuple[float, bool] | None:
    """(milliseconds to a suggestion, whether it is one line); None for an empty answer
    (superseded ones are empty)."""
    sent = time.perf_counter()
    try:
        answer = await ask_inline(rpc, position, uri)
    except TimeoutError:
        log.errors.append("no answer in 30 s")
        return None
    if "error" in answer:
        log.errors.append(str(answer["error"].get("message")))
        return None
    items = (answer.get("result") or {}).get("items") if answer.get("result") else None
    if not items:
        return None
    text = items[0].get("insertText")
    one_line = "\n" not in (text if isinstance(text, str) else "")
    return (time.perf_counter() - sent) * 1000, one_line


async def _record(last: asyncio.Future[tuple[float, bool] | None], log: EditorLog) -> None:
    answer = await last
    if answer is not None:
        log.latencies_ms.append(answer[0])
        if answer[1]:
            log.single_line_ms.append(answer[0])


async def _explain(rpc: Rpc, uri: str, log: EditorLog) -> None:
    try:
        await rpc.request(
            "workspace/executeCommand",
            {"command": "iquest.explain", "arguments": [{"uri": uri}]},
            timeout_s=300,
        )
    except TimeoutError:
        log.errors.append("explain: no answer in 300 s")


@dataclass
class Step:
    config: str
    editors: int
    seconds: float
    logs: list[EditorLog]
    before: VllmSnapshot
    after: VllmSnapshot
    gauges: dict[str, list[float]]
    daemon_cpu_s: float

    @property
    def latencies(self) -> list[float]:
        return [x for log in self.logs for x in log.latencies_ms]

    @property
    def single_line(self) -> list[float]:
        return [x for log in self.logs for x in log.single_line_ms]

    @property
    def p95_single_line(self) -> float:
        return percentile(self.single_line, 0.95) if self.single_line else float("inf")

    @property
    def errors(self) -> list[str]:
        return [e for log in self.logs for e in log.errors]

    def delta(self, name: str) -> float:
        return self.after.counters.get(name, 0.0) - self.before.counters.get(name, 0.0)

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 0.95) if self.latencies else float("inf")

    def row(self) -> str:
        suggestions = len(self.latencies)
        requests = sum(log.requests for log in self.logs)
        computed = self.delta("vllm:prompt_tokens_total") - self.delta(
            "vllm:prefix_cache_hits_total"
        )
        ttft50 = bucket_percentile(self.before.ttft_buckets, self.after.ttft_buckets, 0.5)
        ttft95 = bucket_percentile(self.before.ttft_buckets, self.after.ttft_buckets, 0.95)
        kv = self.gauges["kv"]
        gpu = self.gauges["gpu"]
        return (
            f"{self.editors:>6} {self.config:>6} "
            f"{percentile(self.latencies, 0.5) if suggestions else float('nan'):>7.0f} "
            f"{self.p95:>7.0f} {self.p95_single_line:>7.0f} {suggestions / self.seconds:>8.1f} "
            f"{computed / max(1, self.delta('vllm:request_success_total')):>9.0f} "
            f"{ttft50 * 1000:>8.0f} {ttft95 * 1000:>8.0f} "
            f"{max(kv) if kv else float('nan'):>6.1f} "
            f"{self.delta('vllm:generation_tokens_total') / self.seconds:>8.0f} "
            f"{statistics.mean(gpu) if gpu else float('nan'):>5.0f} "
            f"{self.daemon_cpu_s * 1000 / max(1, requests):>7.2f} {requests:>6} "
            f"{len(self.errors):>6}"
        )


HEADER = (
    f"{'editors':>6} {'config':>6} {'p50 ms':>7} {'p95 ms':>7} {'p95 1l':>7} {'sugg/s':>8} "
    f"{'computed':>9} {'ttft50':>8} {'ttft95':>8} {'kv% max':>6} {'gen t/s':>8} "
    f"{'gpu%':>5} {'cpu ms':>7} {'keys':>6} {'errors':>6}"
)
LEGEND = (
    "p95 1l: p95 of the single-line suggestions; computed: prompt tokens vLLM computed (not "
    "from its cache) per request it finished; "
    "ttft: vLLM's time to first token (histogram bound, ms); kv% max: KV cache usage; "
    "gen t/s: generated tokens/s; gpu%: nvidia-smi utilization; cpu ms: daemon CPU per "
    "keystroke request; keys: keystrokes typed (each an inline request)"
)


@dataclass(frozen=True)
class DaemonFiles:
    tokens: list[str]
    store: Path
    settings: Path


def daemon_files(work: Path, config: Config, root: str, model: str, editors: int) -> DaemonFiles:
    folder = work / config.name
    folder.mkdir(exist_ok=True)
    store = TokenStore(folder / "tokens.json")
    tokens = [store.add(f"user{n}") for n in range(editors)]
    settings = folder / "server.toml"
    settings.write_text(
        f'[instruct]\nbase_url = "{root}/v1"\nmodel = "{model}"\n'
        "[completion]\nmax_tokens = 128\n"
        # Sampled, not greedy: on dummy weights a greedy model repeats one token after a bare
        # FIM middle marker (plain's prompts all end there), and when that token is a special
        # one every suggestion decodes to nothing (the first GPU run's plain rows).
        f"max_tokens_single_line = {SINGLE_LINE_CAP}\ntemperature = 1.0\ntimeout_s = 20.0\n"
        f'layout = "{config.layout}"\ncursor_line = "{config.cursor_line}"\n'
        f"[actions]\nmax_tokens = 256\ntemperature = 0.0\npriority = {config.action_priority}\n"
        "[index]\nenabled = false\n"
    )
    return DaemonFiles(tokens, store.path, settings)


async def start_daemon(files: DaemonFiles, workers: int) -> tuple[asyncio.subprocess.Process, int]:
    daemon, port, _ = await start_team_daemon(
        *("--tokens", str(files.store), "--config", str(files.settings)),
        *(["--workers", str(workers)] if workers > 1 else []),
    )
    return daemon, port


async def run_step(
    config: Config,
    daemon: asyncio.subprocess.Process,
    port: int,
    tokens: list[str],
    editors: int,
    seconds: float,
    root: str,
) -> Step:
    before = await vllm_snapshot(root)
    gauges: dict[str, list[float]] = {"kv": [], "gpu": []}
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_gauges(root, stop, gauges))
    cpu_from = cpu_seconds(daemon.pid)
    until = time.monotonic() + seconds
    logs = await asyncio.gather(
        *(
            open_loop_editor(port, tokens[n], n, until, seed=n, explain=n % 10 == 0)
            for n in range(editors)
        )
    )
    cpu = cpu_seconds(daemon.pid) - cpu_from
    stop.set()
    await sampler
    after = await vllm_snapshot(root)
    return Step(config.name, editors, seconds, logs, before, after, gauges, cpu)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", default="2,4", help="comma-separated sweep of N")
    parser.add_argument("--seconds", type=float, default=30, help="per step")
    parser.add_argument("--workers", type=int, default=1, help="daemon worker processes")
    parser.add_argument("--vllm-root", help="reuse a running vLLM")
    args = parser.parse_args()
    sweep = [int(n) for n in args.editors.split(",")]
    steps: list[Step] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with (
            tiny_vllm(work, args.vllm_root) as (root, model),
            proxy_process(root, SINGLE_LINE_CAP) as (proxy, lengths),
        ):
            daemons: dict[str, tuple[asyncio.subprocess.Process, int, list[str]]] = {}
            try:
                for config in CONFIGS:
                    files = daemon_files(work, config, proxy, model, max(sweep))
                    daemon, port = await start_daemon(files, args.workers)
                    daemons[config.name] = (daemon, port, files.tokens)
                print(HEADER, flush=True)
                for editors in sweep:
                    for config in CONFIGS:
                        daemon, port, tokens = daemons[config.name]
                        step = await run_step(
                            config, daemon, port, tokens, editors, args.seconds, root
                        )
                        steps.append(step)
                        print(step.row(), flush=True)
                    if all(s.p95_single_line > 4 * TARGET_MS for s in steps[-len(CONFIGS) :]):
                        break  # both far past the target: larger N only gets worse
            finally:
                for daemon, _, _ in daemons.values():
                    daemon.send_signal(signal.SIGINT)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(daemon.wait(), 20)
    print(LEGEND)
    single = lengths.single_line / max(1, lengths.single_line + lengths.multi_line)
    print(
        f"suggestion lengths (tokens, fixed by the proxy): {single:.0%} single-line (8-24), "
        f"{1 - single:.0%} multi-line (40-128), mean {statistics.mean(lengths.lengths or [0]):.0f}"
    )
    for config in CONFIGS:
        mine = [s for s in steps if s.config == config.name]
        fits = [s.editors for s in mine if s.p95 <= TARGET_MS and not s.errors]
        single = [s.editors for s in mine if s.p95_single_line <= TARGET_MS and not s.errors]
        print(
            f"capacity, {config.name}: {max(fits) if fits else 0} editors with p95 <= "
            f"{TARGET_MS:.0f} ms and no errors; {max(single) if single else 0} counting "
            f"single-line suggestions (largest N tried {max(s.editors for s in mine)})"
        )
    for message in sorted({e for s in steps for e in s.errors})[:5]:
        print(f"  error: {message}")
    print(json.dumps({"steps": [[s.config, s.editors, s.p95] for s in steps]}))


if __name__ == "__main__":
    asyncio.run(main())
