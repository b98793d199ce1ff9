"""``iquest-lsp vllm``'s arguments. Imports nothing of the engine: the CLI builds its parser
before ``--serve --workers`` sets PROMETHEUS_MULTIPROC_DIR, which prometheus_client reads
once, at import.

    iquest-lsp vllm --model PATH_OR_ID [--role instruct|reasoning|both] [--profile NAME]
        [--editors N] [--tp N|auto] [--quantization fp8|awq|gptq] [--kv-cache-dtype auto|fp8]
        [--gpus 0,1]
        [--gpu-memory GIB] [--port P] [--dry-run] [-- extra vLLM args]
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    vllm = commands.add_parser(
        "vllm",
        help="start vLLM sized for this machine (profiles: completion, agent, review); "
        "arguments after -- go to vLLM",
        description="Plan and start the vLLM server(s) the daemon talks to. Arguments after "
        "-- are passed to vLLM as they are.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    vllm.add_argument("--model", required=True, help="model folder, or a hub id in the local cache")
    vllm.add_argument(
        "--role",
        choices=("instruct", "reasoning", "both"),
        default="instruct",
        help="which model the server serves: inline completions (instruct), actions "
        "(reasoning), or one server of each",
    )
    vllm.add_argument(
        "--reasoning-model", help="--role both: the reasoning (Thinking) model's folder or id"
    )
    vllm.add_argument(
        "--profile",
        help="workload profile (default: completion for instruct, agent for reasoning)",
    )
    vllm.add_argument(
        "--editors",
        type=int,
        metavar="N",
        help="editors the instruct server is for: --max-num-seqs is sized from them "
        "(what one editor asks of vLLM, measured by bench/capacity.py)",
    )
    vllm.add_argument("--tp", default="auto", help="tensor parallel size, or auto (default)")
    vllm.add_argument("--quantization", choices=("fp8", "awq", "gptq"))
    vllm.add_argument("--kv-cache-dtype", choices=("auto", "fp8"), default="auto")
    vllm.add_argument("--gpus", help="GPU indices to use, e.g. 0,1 (default: all)")
    vllm.add_argument(
        "--gpu-memory",
        type=float,
        metavar="GIB",
        help="each GPU's memory in GiB instead of nvidia-smi's figure "
        "(with --device cpu: the KV cache space; default 1)",
    )
    vllm.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    vllm.add_argument("--host", default="127.0.0.1")
    vllm.add_argument("--port", type=int, default=8000, help="--role both: reasoning on PORT+1")
    vllm.add_argument("--log-dir", type=Path, help="vLLM's logs (default: the user log directory)")
    vllm.add_argument("--start-timeout", type=float, default=900.0, metavar="SECONDS")
    vllm.add_argument(
        "--dry-run", action="store_true", help="print the plan and the commands; start nothing"
    )


def split_extra(argv: list[str]) -> tuple[list[str], tuple[str, ...]]:
    """``... -- --load-format dummy``: what follows ``--`` is vLLM's."""
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], tuple(argv[at + 1 :])
    return argv, ()
