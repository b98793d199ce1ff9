"""``iquest-lsp vllm``: plan, print and run the vLLM server(s) for the daemon.

iquest-lsp vllm --model PATH_OR_ID [--role instruct|reasoning|both] [--profile NAME]
    [--editors N] [--tp N|auto] [--quantization fp8|awq|gptq] [--kv-cache-dtype auto|fp8]
    [--gpus 0,1]
    [--gpu-memory GIB] [--port P] [--dry-run] [-- extra vLLM args]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path

import platformdirs

from engine.config import APP_NAME
from engine.deploy.command import ServerLaunch, daemon_settings
from engine.deploy.hardware import list_gpus
from engine.deploy.launch_plan import DEFAULT_PROFILE, LaunchRequest, plan_launch
from engine.deploy.launcher import LaunchError, check_kv, start_servers, stop_servers
from engine.deploy.sizing import describe
from lsp.settings import SettingsLayers

log = logging.getLogger(__name__)


def run_vllm(args: argparse.Namespace, extra: tuple[str, ...]) -> int:
    try:
        settings = SettingsLayers(args.config).build()
        request = _request(args, extra)
        listed = [] if args.device == "cpu" or args.gpu_memory else asyncio.run(list_gpus())
        if request.gpus and not listed and not args.gpu_memory and args.device != "cpu":
            raise ValueError(
                f"--gpus {args.gpus}: nvidia-smi lists no GPU on this machine; leave --gpus out "
                "to plan for the CPU, or add --gpu-memory GIB to plan for GPUs elsewhere"
            )
        launches = plan_launch(request, listed, settings.profiles)
    # Settings, model, devices, sizing and profile errors are all ValueErrors, with the words.
    except ValueError as error:
        print(f"iquest-lsp vllm: {error}", file=sys.stderr)
        return 2
    editor_prompt = settings.completion.prompt_token_budget + settings.completion.max_tokens
    for launch in launches:
        print(_plan_text(launch, editor_prompt, request.profile))
    print("\n# the daemon's settings (config.toml):\n" + daemon_settings(launches))
    if args.dry_run:
        return 0
    log_dir = args.log_dir or Path(platformdirs.user_log_dir(APP_NAME)) / "vllm"
    log_dir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_serve(launches, log_dir, args.start_timeout))


def _request(args: argparse.Namespace, extra: tuple[str, ...]) -> LaunchRequest:
    tp = None if args.tp == "auto" else int(args.tp)
    if tp is not None and tp < 1:
        raise ValueError(f"--tp {tp}: must be at least 1")
    gpus = None
    if args.gpus:
        try:
            gpus = tuple(int(part) for part in args.gpus.split(",") if part.strip())
        except ValueError as error:
            raise ValueError(f"--gpus {args.gpus!r}: give indices like 0,1") from error
    if args.editors is not None and args.editors < 1:
        raise ValueError(f"--editors {args.editors}: give the number of editors, at least 1")
    if args.editors is not None and args.role == "reasoning":
        raise ValueError(
            "--editors sizes the inline (instruct) server: leave it out with --role reasoning"
        )
    if args.gpu_memory is not None and args.gpu_memory <= 0:
        raise ValueError(f"--gpu-memory {args.gpu_memory}: must be positive")
    return LaunchRequest(
        model=args.model,
        role=args.role,
        reasoning_model=args.reasoning_model,
        profile=args.profile,
        tp=tp,
        quantization=args.quantization,
        kv_cache_dtype=args.kv_cache_dtype,
        gpus=gpus,
        gpu_memory_gib=args.gpu_memory,
        device=args.device,
        host=args.host,
        port=args.port,
        extra_args=extra,
        editors=args.editors,
    )


def _plan_text(launch: ServerLaunch, editor_prompt: int, profile: str | None) -> str:
    name = profile or DEFAULT_PROFILE[launch.role]
    return (
        f"\n# {launch.role} server: {launch.model.name} (profile {name}), {launch.base_url}\n"
        + describe(launch.plan, launch.shape, launch.hardware, editor_prompt)
        + "\n\n"
        + launch.shell_line()
    )


async def _serve(launches: list[ServerLaunch], log_dir: Path, timeout_s: float) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    starting = asyncio.create_task(start_servers(launches, log_dir, timeout_s))
    stopping = asyncio.create_task(stop.wait())
    print(f"\nstarting vLLM (logs in {log_dir}) ...", flush=True)
    done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if starting not in done:
        starting.cancel()  # start_servers stops whatever it had started
        with contextlib.suppress(asyncio.CancelledError, LaunchError):
            await starting
        print("stopped before vLLM was ready", flush=True)
        return 130
    stopping.cancel()
    try:
        servers = starting.result()
    except LaunchError as error:
        print(f"iquest-lsp vllm: {error}", file=sys.stderr)
        return 1
    for server in servers:
        kv = await check_kv(server)
        print(
            f"vLLM ({server.launch.role}) ready at {server.launch.base_url}, pid {server.pid}; "
            f"{kv.describe()}",
            flush=True,
        )
    print("ready: Ctrl-C stops vLLM", flush=True)
    exits = [asyncio.create_task(server.process.wait()) for server in servers]
    stopping = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({stopping, *exits}, return_when=asyncio.FIRST_COMPLETED)
    code = 0
    if stopping not in done:
        dead = next(s for s, e in zip(servers, exits, strict=True) if e in done)
        print(
            f"vLLM ({dead.launch.role}) exited with {dead.process.returncode}; the end of "
            f"{dead.log_path}:\n{dead.log_tail()}",
            file=sys.stderr,
        )
        code = 1
    stopping.cancel()
    for task in exits:
        task.cancel()
    await stop_servers(servers)
    print("vLLM stopped", flush=True)
    return code
