"""How many developers one vLLM serves with suggestions inside 300 ms: ours vs a plain layout.

Editors type **open loop**, as people do: bursts of keystrokes at 4-8 characters a second and
pauses of 0.3-3 s, whatever the answers do. Each keystroke is a ``didChange`` and an automatic
``inlineCompletion`` (the daemon debounces and cancels); 10% of editors also run an Explain
every 60 s. Files are real source files (the standard library's); each editor has its own token
and user, so its own ``cache_salt``. Latency is from the last keystroke before a pause to the
suggestion's arrival at the editor.

Suggestion lengths are fixed by the daemon itself (``completion.bench_fixed_lengths``: vLLM's
``min_tokens`` = ``max_tokens``, ``ignore_eos``, read to the end; single-line 8-24 tokens,
multi-line 40-128), the same for both configurations, with nothing between daemon and vLLM.
Editors can be spread over processes (``--editor-processes``) and the daemon over workers
(``--workers``); the host's CPU is reported beside the GPU's utilization, so a row limited by
the host rather than the GPU shows it.

Side by side on one vLLM, alternating per N: **ours** (stable layout, cursor line after the FIM
middle, actions at a lower priority) and **plain** (our daemon with ``layout = "naive"``, the
cursor line in the prefix and priority off: what a client without our layout sends). Each
configuration is its own ``--serve`` daemon (own token store, so own salts).

The headline is the **single-line p95** (most suggestions; a multi-line one of 40-128 tokens
takes longer than 300 ms to generate on its own). Beside each p95 its floor: the debounce, the
step's median TTFT and the mean length times the step's mean inter-token latency.

    .venv/bin/python -m bench.capacity --editors 2,4 --seconds 15          # CPU, tiny model
    python3 -m bench.capacity --vllm-root http://127.0.0.1:8000 --editors 16,64,256,512 \
        --workers 8 --editor-processes 4
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
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.common import percentile, start_team_daemon, tiny_vllm
from bench.team_load import (
    Rpc,
    ask_inline,
    cpu_seconds,
    machine_idle,
    open_editor,
    process_cpu_seconds,
    typing_cursor,
)
from engine.completion.generation.sampling import BENCH_MULTI_LINE, BENCH_SINGLE_LINE
from engine.team.tokens import TokenStore

TARGET_MS = 300.0
# A step: editors connect within SETUP_S + SETUP_PER_EDITOR_S each, type WARMUP_S unmeasured,
# then ``--seconds`` measured.
SETUP_S = 3.0
SETUP_PER_EDITOR_S = 0.02
WARMUP_S = 3.0
SINGLE_LINE_CAP = 32  # completion.max_tokens_single_line for both daemons
DEBOUNCE_MS = 75  # completion.debounce_ms, the default
MEAN_SINGLE_LINE = sum(BENCH_SINGLE_LINE) / 2
MEAN_MULTI_LINE = sum(BENCH_MULTI_LINE) / 2


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
    multi_line_ms: list[float] = field(default_factory=list)
    requests: int = 0
    shown: int = 0  # answers with a suggestion in them (any keystroke's, not only a pause's)
    pauses: int = 0  # bursts that ended: each should bring a suggestion
    errors: list[str] = field(default_factory=list)
    explains: int = 0


@dataclass(frozen=True)
class Window:
    """A step's times (``time.time()``): editors connect before ``start``, type from it to
    ``until``; what happens from ``start + warmup`` on is measured."""

    start: float
    warmup: float
    until: float

    @property
    def measured_from(self) -> float:
        return self.start + self.warmup

    def measured(self, at: float) -> bool:
        return self.measured_from <= at < self.until


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
                        elif sample.name == "vllm:num_requests_running":
                            into["running"].append(sample.value)
                        elif sample.name == "vllm:num_requests_waiting":
                            into["waiting"].append(sample.value)
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
    port: int, token: str, n: int, window: Window, seed: int, explain: bool
) -> EditorLog:
    """One editor: it connects and opens its file, waits for the step's common start, types
    until its end, and records only what falls in the measured part (after the warm-up).
    Times are the wall clock (``time.time()``): one clock for every editor process."""
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
        if time.time() >= window.start:
            log.errors.append("setting up took longer than the step allowed")
        # Editors start at random points of their typing rhythm, not all on one keystroke.
        await asyncio.sleep(max(0.0, window.start - time.time()) + rng.uniform(0, 1.0))
        next_explain = time.time() + rng.uniform(0, 60) if explain else float("inf")
        while time.time() < window.until:
            if time.time() >= next_explain:
                next_explain += 60
                log.explains += 1
                pending.add(asyncio.create_task(_explain(rpc, uri, log)))
            rate = rng.uniform(4, 8)
            burst = rng.randint(3, 20)
            last: asyncio.Future[tuple[float, bool] | None] | None = None
            for _ in range(burst):
                position = cursor.type(rpc, typing[rng.randrange(len(typing))])
                measured = window.measured(time.time())
                log.requests += measured
                last = asyncio.ensure_future(_complete(rpc, uri, position, log, measured))
                await asyncio.sleep(1 / rate)
            if last is not None and window.measured(time.time()):
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
    rpc: Rpc, uri: str, position: dict[str, int], log: EditorLog, measured: bool = True
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
    log.shown += measured
    text = items[0].get("insertText")
    one_line = "\n" not in (text if isinstance(text, str) else "")
    return (time.perf_counter() - sent) * 1000, one_line


async def _record(last: asyncio.Future[tuple[float, bool] | None], log: EditorLog) -> None:
    answer = await last
    if answer is not None:
        log.latencies_ms.append(answer[0])
        (log.single_line_ms if answer[1] else log.multi_line_ms).append(answer[0])


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
    host_busy: float  # share of the host's CPU time busy during the step (all cores)
    api_busy: float  # vLLM's API server process: CPU seconds per second (1.0: a core full)

    @property
    def latencies(self) -> list[float]:
        return [x for log in self.logs for x in log.latencies_ms]

    @property
    def single_line(self) -> list[float]:
        return [x for log in self.logs for x in log.single_line_ms]

    @property
    def multi_line(self) -> list[float]:
        return [x for log in self.logs for x in log.multi_line_ms]

    @property
    def p95_single_line(self) -> float:
        return percentile(self.single_line, 0.95) if self.single_line else float("inf")

    @property
    def errors(self) -> list[str]:
        return [e for log in self.logs for e in log.errors]

    @property
    def keystrokes(self) -> int:
        return sum(log.requests for log in self.logs)

    @property
    def shown(self) -> int:
        return sum(log.shown for log in self.logs)

    def delta(self, name: str) -> float:
        return self.after.counters.get(name, 0.0) - self.before.counters.get(name, 0.0)

    def mean_of(self, *histograms: str) -> float:
        """Mean of the first of vLLM's histograms (by its _sum/_count) that moved, seconds."""
        for name in histograms:
            count = self.delta(f"{name}_count")
            if count:
                return self.delta(f"{name}_sum") / count
        return float("nan")

    @property
    def itl_s(self) -> float:
        # vLLM 0.26 calls it inter_token_latency; older releases time_per_output_token.
        return self.mean_of(
            "vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"
        )

    @property
    def ttft50_s(self) -> float:
        return bucket_percentile(self.before.ttft_buckets, self.after.ttft_buckets, 0.5)

    def floor_ms(self, tokens: float) -> float:
        """What a suggestion of ``tokens`` tokens takes at this step's batch with no queueing:
        the debounce, the median TTFT and the rest of its tokens at the mean inter-token
        latency."""
        return DEBOUNCE_MS + (self.ttft50_s + (tokens - 1) * self.itl_s) * 1000

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 0.95) if self.latencies else float("inf")

    def row(self) -> str:
        generated = self.delta("vllm:generation_tokens_total")
        computed = self.delta("vllm:prompt_tokens_total") - self.delta(
            "vllm:prefix_cache_hits_total"
        )
        finished = max(1, self.delta("vllm:request_success_total"))
        ttft95 = bucket_percentile(self.before.ttft_buckets, self.after.ttft_buckets, 0.95)
        multi = percentile(self.multi_line, 0.95) if self.multi_line else float("nan")
        kv, gpu = self.gauges["kv"], self.gauges["gpu"]
        running, waiting = self.gauges["running"], self.gauges["waiting"]
        return (
            f"{self.editors:>6} {self.config:>6} {self.p95_single_line:>7.0f} "
            f"{self.floor_ms(MEAN_SINGLE_LINE):>7.0f} {multi:>7.0f} "
            f"{self.floor_ms(MEAN_MULTI_LINE):>7.0f} "
            f"{self.ttft50_s * 1000:>6.0f} {ttft95 * 1000:>6.0f} {self.itl_s * 1000:>6.1f} "
            f"{len(self.latencies) / self.seconds:>7.1f} {computed / finished:>8.0f} "
            f"{generated / max(1, self.keystrokes):>6.1f} {generated / max(1, self.shown):>6.1f} "
            f"{max(kv) if kv else float('nan'):>5.1f} "
            f"{statistics.mean(running) / self.editors if running else float('nan'):>6.2f} "
            f"{max(running) if running else float('nan'):>4.0f} "
            f"{statistics.mean(waiting) if waiting else float('nan'):>5.1f} "
            f"{statistics.mean(gpu) if gpu else float('nan'):>5.0f} "
            f"{self.host_busy * 100:>5.0f} {self.api_busy * 100:>5.0f} "
            f"{self.daemon_cpu_s * 1000 / max(1, self.keystrokes):>6.2f} {self.keystrokes:>6} "
            f"{len(self.errors):>6}"
        )


HEADER = (
    f"{'editors':>6} {'config':>6} {'p95 1l':>7} {'floor':>7} {'p95 ml':>7} {'floor':>7} "
    f"{'ttft50':>6} {'ttft95':>6} {'itl ms':>6} {'sugg/s':>7} {'computed':>8} "
    f"{'t/key':>6} {'t/sugg':>6} {'kv%':>5} {'run/ed':>6} {'run^':>4} {'wait':>5} "
    f"{'gpu%':>5} {'host%':>5} {'api%':>5} {'cpu ms':>6} "
    f"{'keys':>6} {'errors':>6}"
)
LEGEND = (
    "p95 1l / p95 ml: p95 latency of single-line / multi-line suggestions (last keystroke to "
    "the editor, ms), each beside its floor (debounce + median TTFT + mean length x mean "
    "inter-token latency at that step); ttft: vLLM's time to first token (histogram bound, "
    "ms); itl: vLLM's mean inter-token latency; computed: prompt tokens vLLM computed (not "
    "from its cache) per finished request; t/key, t/sugg: tokens vLLM decoded per keystroke "
    "and per suggestion that reached an editor; kv%: KV cache usage, max; run/ed: vLLM's "
    "running requests per editor, mean (engine.deploy.editors sizes --max-num-seqs by it); "
    "run^: running requests, max; wait: requests waiting at vLLM, mean; gpu%: nvidia-smi "
    "utilization; host%: the host's CPU busy (all cores: editors, daemons, vLLM's API "
    "server); api%: vLLM's API server process, % of one core (the frontend is one Python "
    "process: at 100% it is the limit whatever host% says); cpu ms: daemon CPU per keystroke; "
    "keys: keystrokes typed (each an inline request)"
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
        "bench_fixed_lengths = true\n"
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
    processes: int,
) -> Step:
    # Connecting and opening files is set-up, not load: editors do it first, then all start
    # typing at one time, and the first seconds of typing are not measured either.
    setup_s = SETUP_S + editors * SETUP_PER_EDITOR_S
    window = Window(time.time() + setup_s, WARMUP_S, time.time() + setup_s + WARMUP_S + seconds)
    typing = asyncio.ensure_future(all_editors(port, tokens, editors, window, processes))
    await asyncio.sleep(max(0.0, window.measured_from - time.time()))
    before = await vllm_snapshot(root)
    gauges: dict[str, list[float]] = {"kv": [], "gpu": [], "running": [], "waiting": []}
    stop = asyncio.Event()
    sampler = asyncio.create_task(sample_gauges(root, stop, gauges))
    cpu_from, api_from = cpu_seconds(daemon.pid), api_server_cpu()
    idle_from, total_from = machine_idle()
    await asyncio.sleep(max(0.0, window.until - time.time()))
    cpu, api = cpu_seconds(daemon.pid) - cpu_from, api_server_cpu() - api_from
    idle_to, total_to = machine_idle()
    stop.set()
    await sampler
    after = await vllm_snapshot(root)
    logs = await typing  # the answers still on their way come in after the window
    busy = 1 - (idle_to - idle_from) / max(1, total_to - total_from)
    return Step(
        config.name, editors, seconds, logs, before, after, gauges, cpu, busy, api / seconds
    )


async def all_editors(
    port: int, tokens: list[str], editors: int, window: Window, processes: int
) -> list[EditorLog]:
    if processes <= 1:
        return await editors_here(port, tokens, range(editors), window)
    parts = await asyncio.gather(
        *(
            editors_elsewhere(port, tokens, range(k, editors, processes), window)
            for k in range(processes)
        )
    )
    return [log for part in parts for log in part]


def api_server_cpu() -> float:
    """CPU seconds of vLLM's API server process on this host (the frontend every request
    goes through, one Python process), 0 when it runs elsewhere."""
    total = 0.0
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
            if b"vllm.entrypoints.openai.api_server" not in words and b"serve" not in words[1:3]:
                continue
            if not any(b"vllm" in word for word in words[:3]):
                continue
            total += process_cpu_seconds(int(cmdline.parent.name))
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
    return total


async def editors_here(
    port: int, tokens: list[str], numbers: range, window: Window
) -> list[EditorLog]:
    return list(
        await asyncio.gather(
            *(
                open_loop_editor(port, tokens[n], n, window, seed=n, explain=n % 10 == 0)
                for n in numbers
            )
        )
    )


async def editors_elsewhere(
    port: int, tokens: list[str], numbers: range, window: Window
) -> list[EditorLog]:
    """Editors in a process of their own (one event loop cannot type for hundreds)."""
    job = {"port": port, "window": asdict(window), "editors": [[n, tokens[n]] for n in numbers]}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.capacity",
        "--editor-job",
        json.dumps(job),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        return [EditorLog(errors=[f"editor process exited with {process.returncode}"])]
    return [EditorLog(**fields) for fields in json.loads(out)]


async def editor_job(job: dict[str, object]) -> None:
    """The child's side of ``editors_elsewhere``: its editors' logs as JSON on stdout."""
    pairs: list[list[object]] = job["editors"]  # type: ignore[assignment]
    logs = await asyncio.gather(
        *(
            open_loop_editor(
                int(job["port"]),  # type: ignore[call-overload]
                str(token),
                int(n),  # type: ignore[call-overload]
                Window(**job["window"]),  # type: ignore[arg-type]
                seed=int(n),  # type: ignore[call-overload]
                explain=int(n) % 10 == 0,  # type: ignore[call-overload]
            )
            for n, token in pairs
        )
    )
    print(json.dumps([asdict(log) for log in logs]))


def capacity(steps: list[Step]) -> int:
    """The largest N whose single-line p95 met the target without errors."""
    return max(
        (s.editors for s in steps if s.p95_single_line <= TARGET_MS and not s.errors), default=0
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--editors", default="2,4", help="comma-separated sweep of N")
    parser.add_argument("--seconds", type=float, default=30, help="per step")
    parser.add_argument("--workers", type=int, default=1, help="daemon worker processes")
    parser.add_argument(
        "--editor-processes", type=int, default=1, help="processes the editors are spread over"
    )
    parser.add_argument("--vllm-root", help="reuse a running vLLM")
    parser.add_argument("--editor-job", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.editor_job:
        await editor_job(json.loads(args.editor_job))
        return
    sweep = [int(n) for n in args.editors.split(",")]
    steps: list[Step] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        async with tiny_vllm(work, args.vllm_root) as (root, model):
            daemons: dict[str, tuple[asyncio.subprocess.Process, int, list[str]]] = {}
            try:
                for config in CONFIGS:
                    files = daemon_files(work, config, root, model, max(sweep))
                    daemon, port = await start_daemon(files, args.workers)
                    daemons[config.name] = (daemon, port, files.tokens)
                print(HEADER, flush=True)
                for editors in sweep:
                    for config in CONFIGS:
                        daemon, port, tokens = daemons[config.name]
                        step = await run_step(
                            config,
                            daemon,
                            port,
                            tokens,
                            editors,
                            args.seconds,
                            root,
                            args.editor_processes,
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
    single = sum(len(s.single_line) for s in steps)
    multi = sum(len(s.multi_line) for s in steps)
    print(
        f"suggestions: {single / max(1, single + multi):.0%} single-line "
        f"({BENCH_SINGLE_LINE[0]}-{BENCH_SINGLE_LINE[1]} tokens), "
        f"{multi / max(1, single + multi):.0%} multi-line "
        f"({BENCH_MULTI_LINE[0]}-{BENCH_MULTI_LINE[1]}), lengths fixed by the daemon"
    )
    found = {c.name: capacity([s for s in steps if s.config == c.name]) for c in CONFIGS}
    for config in CONFIGS:
        mine = [s for s in steps if s.config == config.name]
        print(
            f"capacity, {config.name}: {found[config.name]} editors with single-line p95 <= "
            f"{TARGET_MS:.0f} ms and no errors (largest N tried {max(s.editors for s in mine)})"
        )
    if found["plain"]:
        print(f"ours / plain at the same p95 target: {found['ours'] / found['plain']:.2f}x")
    for message in sorted({e for s in steps for e in s.errors})[:5]:
        print(f"  error: {message}")
    print(json.dumps({"steps": [[s.config, s.editors, s.p95_single_line] for s in steps]}))


if __name__ == "__main__":
    asyncio.run(main())
