"""Shared by the benchmarks: a real vLLM on the tiny model, a team daemon process, and an LSP
client session."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from lsprotocol import types
from pygls.lsp.client import LanguageClient

from engine import metrics
from engine.backends.vllm_extras import ServerInfo
from engine.config import EndpointConfig
from engine.local.vllm_process import LocalVllmServer, LocalVllmSpec
from tests.support.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[1]
TINY_NAME = "tiny-qwen2.5-coder"


async def start_team_daemon(
    *arguments: str, python: tuple[str, ...] = ()
) -> tuple[asyncio.subprocess.Process, int, int]:
    """``iquest-lsp --serve`` on free ports, as deployed (its own process): the process and its
    TCP and WebSocket ports, read from its banner. ``arguments``: more of its flags;
    ``python``: interpreter options before ``-m lsp`` (a profiler)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *python,
        *("-m", "lsp", "--serve", "--port", "0", "--ws-port", "0"),
        *arguments,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    banner = (await asyncio.wait_for(process.stdout.readline(), 120)).decode()
    ports = re.search(r"tcp://[^:]+:(\d+) wss?://[^:]+:(\d+)", banner)
    if ports is None:
        process.kill()
        await process.wait()
        raise RuntimeError(f"a daemon did not start: {banner!r}")
    return process, int(ports.group(1)), int(ports.group(2))


@asynccontextmanager
async def tiny_vllm(
    work: Path, reuse_root: str | None, block_size: int = 32, extra_args: tuple[str, ...] = ()
) -> AsyncIterator[tuple[str, str]]:
    """(root URL, model name) of a vLLM CPU server on the tiny model: reused or started."""
    if reuse_root:
        async with httpx.AsyncClient() as client:
            model = (await client.get(f"{reuse_root}/v1/models")).json()["data"][0]["id"]
        yield reuse_root, model
        return
    model_dir = build_tiny_model(work / "tiny-model")
    server = LocalVllmServer(
        LocalVllmSpec(
            model_dir=model_dir,
            served_model_name=TINY_NAME,
            work_dir=work / "vllm",
            block_size=block_size,
            extra_args=("--kv-cache-memory-bytes", "512M", *extra_args),
        )
    )
    print(f"starting vLLM (CPU) on the tiny model, block size {block_size} ...", flush=True)
    await server.start()
    try:
        yield server.root_url, TINY_NAME
    finally:
        await server.stop()


async def vllm_counters(root: str) -> dict[str, float]:
    """vLLM's Prometheus samples summed over labels, as the daemon reads them."""
    info = ServerInfo(EndpointConfig(base_url=f"{root}/v1"))
    try:
        return await info.metrics()
    finally:
        await info.aclose()


@asynccontextmanager
async def lsp_client(workspace: Path, options: dict[str, Any]) -> AsyncIterator[LanguageClient]:
    client = LanguageClient("iquest-bench", "0.1")

    @client.feature(types.WINDOW_LOG_MESSAGE)
    def log_message(params: types.LogMessageParams) -> None:
        if params.type <= types.MessageType.Warning:
            print(f"[daemon] {params.message}", flush=True)

    @client.feature("iquest/explanation")
    def explanation(params: Any) -> None:
        pass  # rendered by editor plugins; the benchmarks only time actions

    @client.feature(types.WINDOW_SHOW_MESSAGE)
    def show_message(params: types.ShowMessageParams) -> None:
        print(f"[daemon] {params.message}", flush=True)

    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path, "IQUEST_CONFIG": str(workspace / "none.toml")}
    await client.start_io(sys.executable, "-m", "lsp", env=env)
    await client.initialize_async(
        types.InitializeParams(
            capabilities=types.ClientCapabilities(
                text_document=types.TextDocumentClientCapabilities(
                    inline_completion=types.InlineCompletionClientCapabilities()
                )
            ),
            workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
            initialization_options={"iquest": options},
        )
    )
    client.initialized(types.InitializedParams())
    try:
        yield client
    finally:
        await client.shutdown_async(None)
        client.exit(None)
        await asyncio.sleep(0.2)
        await client.stop()


async def daemon_stats(client: LanguageClient) -> dict[str, Any]:
    result = await client.protocol.send_request_async("iquest/stats", None)
    return result._asdict() if hasattr(result, "_asdict") else dict(result)


async def kv_block_size(root: str) -> str:
    """The server's KV cache block size, from vLLM's cache_config_info metric labels."""
    info = ServerInfo(EndpointConfig(base_url=f"{root}/v1"))
    try:
        block = (await info.cache_config()).block_size
    finally:
        await info.aclose()
    return str(block) if block is not None else "?"


def percentile(samples: list[float], share: float) -> float:
    """As the daemon computes it (engine.metrics), NaN for no samples: printable either way."""
    value = metrics.percentile(samples, share)
    return float("nan") if value is None else value
