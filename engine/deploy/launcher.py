"""The one way vLLM servers are started, waited for and stopped: the planned servers of
``iquest-lsp vllm``, the embedded model's server (``demo``, engine.local.vllm_process), and
the test suite's and benchmarks' servers through it.

Each server runs in its own process group (tensor parallel workers included), so a stop
reaches every process it started; a server that fails to come up stops the others, and
nothing is left half-started."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from engine.backends.errors import BackendError
from engine.backends.vllm_extras import ServerInfo, server_root
from engine.config import EndpointConfig
from engine.deploy.command import ServerLaunch

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0


class LaunchError(RuntimeError):
    pass


class ServerExited(RuntimeError):
    def __init__(self, returncode: int) -> None:
        super().__init__(f"exited with {returncode}")
        self.returncode = returncode


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def spawn(
    argv: Sequence[str], env: dict[str, str], log_path: Path
) -> asyncio.subprocess.Process:
    """A server process writing to ``log_path``, in its own process group (stopped as one)."""
    with log_path.open("wb") as out:
        return await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=out,
            stderr=asyncio.subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


async def wait_healthy(
    process: asyncio.subprocess.Process, root_url: str, timeout_s: float, poll_s: float
) -> None:
    """Until ``root_url``/health answers 200. Raises ServerExited when the process ends
    first, TimeoutError after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise ServerExited(process.returncode)
            try:
                if (await client.get(f"{root_url}/health")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(poll_s)
    raise TimeoutError(f"not healthy after {timeout_s:.0f} s")


def log_tail(path: Path, lines: int) -> str:
    """The last ``lines`` of a server's log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class RunningServer:
    launch: ServerLaunch
    log_path: Path
    process: asyncio.subprocess.Process

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 25) -> str:
        return log_tail(self.log_path, lines)


async def start_servers(
    launches: list[ServerLaunch], log_dir: Path, timeout_s: float
) -> list[RunningServer]:
    """All healthy, or none left running (LaunchError says which failed and why).
    ``log_dir`` exists: each server's output goes to a file there."""
    running: list[RunningServer] = []
    try:
        for launch in launches:
            log_path = log_dir / f"vllm-{launch.role}-{launch.port}.log"
            process = await spawn(launch.argv(), launch.environment(), log_path)
            running.append(RunningServer(launch, log_path, process))
        await asyncio.gather(*(_wait_healthy(server, timeout_s) for server in running))
    except BaseException:
        await stop_servers(running)
        raise
    return running


async def _wait_healthy(server: RunningServer, timeout_s: float) -> None:
    root = server_root(server.launch.base_url)
    role = server.launch.role
    try:
        await wait_healthy(server.process, root, timeout_s, poll_s=1.0)
    except ServerExited as exited:
        raise LaunchError(
            f"vLLM ({role}) exited with {exited.returncode} before it was healthy; the end "
            f"of {server.log_path}:\n{server.log_tail()}"
        ) from None
    except TimeoutError:
        raise LaunchError(
            f"vLLM ({role}) not healthy after {timeout_s:.0f} s; the end of "
            f"{server.log_path}:\n{server.log_tail()}"
        ) from None


async def stop_servers(servers: list[RunningServer]) -> None:
    await stop_processes([(server.launch.role, server.process) for server in servers])


async def stop_processes(
    processes: Sequence[tuple[str, asyncio.subprocess.Process]], grace_s: float = STOP_GRACE_S
) -> None:
    """SIGTERM to each server's process group, SIGKILL to what is left after a grace."""
    for _, process in processes:
        _signal_group(process.pid, signal.SIGTERM)
    for name, process in processes:
        try:
            await asyncio.wait_for(process.wait(), grace_s)
        except TimeoutError:
            log.warning("vLLM (%s) ignored SIGTERM: killing it", name)
        # Workers (tensor parallel ranks, helpers) may outlive the API process: the group
        # goes too, and the launcher returns only once it is gone.
        _signal_group(process.pid, signal.SIGKILL)
        if process.returncode is None:
            await process.wait()
        await _group_gone(process.pid)


async def _group_gone(pgid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        await asyncio.sleep(0.05)
    log.warning("processes of vLLM's group %d are still there after SIGKILL", pgid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass(frozen=True)
class KvCheck:
    planned_tokens: int
    reported_tokens: int | None

    @property
    def ratio(self) -> float | None:
        if not self.reported_tokens:
            return None
        return self.planned_tokens / self.reported_tokens

    def describe(self) -> str:
        if self.reported_tokens is None:
            return "vLLM's KV cache size: not reported (no vllm:cache_config_info)"
        ratio = self.ratio or 0.0
        # The plan against vLLM's figure: "planned 1.1% less" reads one way only.
        difference = abs(ratio - 1) * 100
        side = "as much as" if difference < 0.05 else ("more than" if ratio > 1 else "less than")
        amount = "" if side == "as much as" else f"{difference:.1f}% "
        return (
            f"KV cache: vLLM allocated {self.reported_tokens:,} tokens; the plan counted "
            f"{self.planned_tokens:,} ({amount}{side} vLLM's)"
        )


async def check_kv(server: RunningServer) -> KvCheck:
    """The KV cache vLLM allocated (its metrics: blocks x block size) beside the plan's."""
    info = ServerInfo(EndpointConfig(base_url=server.launch.base_url))
    try:
        cache = await info.cache_config()
    except BackendError:
        cache = None
    finally:
        await info.aclose()
    tokens = cache.kv_tokens if cache is not None else None
    return KvCheck(server.launch.plan.kv_tokens, tokens)
