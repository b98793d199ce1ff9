"""The deployment guide's table, reproduced: transformers ``generate()`` against vLLM.

The guide claims, on 2 x A100 for the 40B: transformers ``generate()`` 85 tok/s at 32% GPU
utilization, vLLM 210 tok/s at 68%, vLLM with TP=2 390 tok/s at 89%. This measures the same
rows on a model folder (dummy weights are fine: lengths are fixed with ``ignore_eos`` /
``min_new_tokens``): prompts of ``--prompt`` random tokens, ``--generate`` tokens each, at each
concurrency, reporting tokens/s, GPU utilization (nvidia-smi, sampled) and p50 time per output
token. vLLM rows are servers already running (``--vllm NAME=ROOT_URL``, e.g. one at TP=1 and one
at TP=2, or FP8); each is measured cold (fresh prompts) and with its prefix cache warm (the
same prompts again).

    .venv/bin/python -m bench.engines --model DIR --prompt 64 --generate 32 --concurrency 1,4
    python3 -m bench.engines --model /tmp/m40b --vllm tp2=http://127.0.0.1:8000 --hf
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import percentile, tiny_vllm

GUIDE = {"transformers generate()": (85, 32), "vLLM": (210, 68), "vLLM TP=2": (390, 89)}


@dataclass(frozen=True)
class Measure:
    row: str
    concurrency: int
    tokens_per_s: float
    gpu_percent: float | None
    per_token_ms: float


class GpuSampler:
    """nvidia-smi's utilization twice a second, in a thread (the measured work may block)."""

    def __init__(self) -> None:
        self.values: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> GpuSampler:
        if shutil.which("nvidia-smi"):
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            values = [float(v) for v in out.split() if v.strip().isdigit()]
            if values:
                self.values.append(statistics.mean(values))

    @property
    def mean(self) -> float | None:
        return statistics.mean(self.values) if self.values else None


def random_prompts(count: int, length: int, vocab: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    # Skip the low ids: the tiny tokenizer keeps its special tokens there.
    return [[rng.randrange(64, vocab) for _ in range(length)] for _ in range(count)]


async def vllm_measure(
    root: str, model: str, prompts: list[list[int]], generate: int
) -> tuple[float, float]:
    """(tokens/s over all streams, p50 ms between a stream's tokens)."""
    gaps: list[float] = []

    async def one(client: httpx.AsyncClient, prompt: list[int]) -> int:
        body = {
            "model": model,
            "prompt": prompt,
            "max_tokens": generate,
            "min_tokens": generate,
            "ignore_eos": True,
            "temperature": 0.0,
            "stream": True,
        }
        tokens, last = 0, None
        async with client.stream("POST", f"{root}/v1/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if not line.startswith("data: {"):
                    continue
                now = time.perf_counter()
                if last is not None:
                    gaps.append((now - last) * 1000)
                last = now
                tokens += 1
        return tokens

    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=None)) as client:
        started = time.perf_counter()
        counts = await asyncio.gather(*(one(client, p) for p in prompts))
        elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, percentile(gaps, 0.5) if gaps else float("nan")


def hf_measure(model_dir: Path, prompts: list[list[int]], generate: int) -> tuple[float, float]:
    """transformers generate() on one batch of the prompts: (tokens/s, ms per output token)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    model = _hf_model(model_dir, device, dtype, AutoConfig, AutoModelForCausalLM)
    batch = torch.tensor(prompts, device=device)
    with torch.inference_mode():
        warm = batch[:, :8]
        model.generate(
            warm,
            attention_mask=torch.ones_like(warm),
            max_new_tokens=4,
            min_new_tokens=4,
            do_sample=False,
            pad_token_id=0,
        )
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        model.generate(
            batch,
            attention_mask=torch.ones_like(batch),
            max_new_tokens=generate,
            min_new_tokens=generate,
            do_sample=False,
            pad_token_id=0,
        )
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
    return len(prompts) * generate / elapsed, elapsed * 1000 / generate


_HF_CACHE: dict[Path, object] = {}


def _hf_model(model_dir, device, dtype, auto_config, auto_model):  # type: ignore[no-untyped-def]
    """The checkpoint when its weights are there, else random weights of its shape (the GPU
    runs use dummy-weight folders); loaded once."""
    if model_dir not in _HF_CACHE:
        has_weights = any(model_dir.glob("*.safetensors")) or any(model_dir.glob("*.bin"))
        if has_weights:
            model = auto_model.from_pretrained(model_dir, dtype=dtype)
        else:
            import torch

            config = auto_config.from_pretrained(model_dir)
            with torch.device(device):  # initialised where it runs: seconds, not minutes
                model = auto_model.from_config(config, dtype=dtype)
        _HF_CACHE[model_dir] = model.to(device).eval()
    return _HF_CACHE[model_dir]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, help="model folder (default: the tiny model)")
    parser.add_argument("--vllm", action="append", default=[], help="NAME=ROOT_URL, repeatable")
    parser.add_argument(
        "--hf", action="store_true", help="measure transformers generate() on --model too"
    )
    parser.add_argument("--prompt", type=int, default=512)
    parser.add_argument("--generate", type=int, default=256)
    parser.add_argument("--concurrency", default="1,8,16,64")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    measures: list[Measure] = []
    with tempfile.TemporaryDirectory() as folder:
        async with contextlib.AsyncExitStack() as stack:
            servers = [tuple(spec.split("=", 1)) for spec in args.vllm]
            tiny = not servers and args.model is None
            if tiny:  # CPU: the tiny model on vLLM's CPU build, and in transformers
                root, _ = await stack.enter_async_context(tiny_vllm(Path(folder), None))
                servers = [("vLLM", root)]
            model_dir = args.model or Path(folder) / "tiny-model"
            vocab = json.loads((model_dir / "config.json").read_text())["vocab_size"]
            for name, root in servers:
                async with httpx.AsyncClient() as client:
                    served = (await client.get(f"{root}/v1/models")).json()["data"][0]["id"]
                for level in levels:
                    prompts = random_prompts(level, args.prompt, vocab, seed=level)
                    # The same prompts twice: first computed, then from the prefix cache.
                    for label in ("cold", "prefix cache warm"):
                        with GpuSampler() as gpu:
                            rate, gap = await vllm_measure(root, served, prompts, args.generate)
                        row = f"{name}, {label}"
                        measures.append(Measure(row, level, rate, gpu.mean, gap))
                        print(f"{row:34} x{level:<4} {rate:9.0f} tok/s", flush=True)
            if args.hf or tiny:
                for level in levels:
                    prompts = random_prompts(level, args.prompt, vocab, seed=level)
                    with GpuSampler() as gpu:
                        rate, per_token = await asyncio.to_thread(
                            hf_measure, model_dir, prompts, args.generate
                        )
                    row = "transformers generate()"
                    measures.append(Measure(row, level, rate, gpu.mean, per_token))
                    print(f"{row:34} x{level:<4} {rate:9.0f} tok/s", flush=True)
    print(
        f"\n{args.prompt}-token prompts, {args.generate} generated; tok/s (GPU %, p50 ms per "
        "output token) at each concurrency"
    )
    rows = list(dict.fromkeys(m.row for m in measures))
    print(f"{'':34} " + " ".join(f"{'x' + str(c):>22}" for c in levels))
    for row in rows:
        cells = []
        for level in levels:
            m = next((m for m in measures if m.row == row and m.concurrency == level), None)
            gpu = f"{m.gpu_percent:.0f}%" if m and m.gpu_percent is not None else "-"
            cells.append(
                f"{m.tokens_per_s:>8.0f} ({gpu:>4}, {m.per_token_ms:5.1f})" if m else " " * 22
            )
        print(f"{row:34} " + " ".join(cells))
    print("\nthe guide (2 x A100, 40B; concurrency not stated):")
    for row, (rate, gpu_share) in GUIDE.items():
        print(f"  {row:32} {rate:>8} tok/s at {gpu_share}% GPU")


if __name__ == "__main__":
    asyncio.run(main())
