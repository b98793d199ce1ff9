"""vllm-router (the vLLM project's Rust router) as a child process, in front of test servers."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from engine.deploy.launcher import ServerExited, free_port, log_tail, wait_healthy


def router_command() -> str | None:
    """The ``vllm-router`` launcher beside this interpreter (the test extra installs it)."""
    beside = Path(sys.executable).parent / "vllm-router"
    return str(beside) if beside.exists() else shutil.which("vllm-router")


@contextlib.asynccontextmanager
async def vllm_router(workers: list[str], policy: str, log_path: Path) -> AsyncIterator[str]:
    """A router over ``workers`` (server roots) with ``policy``; yields its root URL."""
    command = router_command()
    if command is None:
        raise RuntimeError("vllm-router is not installed (pip install -e '.[test]')")
    port = free_port()
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            command,
            *("--worker-urls", *workers),
            *("--policy", policy),
            *("--host", "127.0.0.1", "--port", str(port)),
            *("--log-level", "warning", "--disable-retries"),
            stdout=log,
            stderr=log,
        )
    root = f"http://127.0.0.1:{port}"
    try:
        try:
            await wait_healthy(process, root, timeout_s=15, poll_s=0.1)
        except ServerExited as exited:
            raise RuntimeError(f"vllm-router {exited}: {log_tail(log_path, 30)}") from None
        except TimeoutError:
            raise RuntimeError(f"vllm-router not healthy: {log_tail(log_path, 30)}") from None
        yield root
    finally:
        if process.returncode is None:
            process.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), 10)
        if process.returncode is None:
            process.kill()
            await process.wait()
