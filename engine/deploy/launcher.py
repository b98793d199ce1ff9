"""Start the planned vLLM servers, wait until they are healthy, and stop them cleanly.

Each server runs in its own process group (tensor parallel workers included), so a stop
reaches every process it started; a server that fails to come up stops the others, and
nothing is left half-started."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from engine.backends.errors import BackendError
from engine.backends.vllm_extras import ServerInfo, server_root
from engine.config import EndpointConfig
from engine.deploy.command import ServerLaunch
from engine.local.vllm_process import ServerExited, log_tail, wait_healthy

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0


class LaunchError(RuntimeError):
    pass


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
            with log_path.open("wb") as out:
                process = await asyncio.create_subprocess_exec(
                    *launch.argv(),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=out,
                    stderr=asyncio.subprocess.STDOUT,
                    env=launch.environment(),
                    start_new_session=True,  # its own process group: stopped as one
                )
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
    """SIGTERM to each server's process group, SIGKILL to what is left after a grace."""
    for server in servers:
        _signal_group(server.pid, signal.SIGTERM)
    for server in servers:
        try:
            await asyncio.wait_for(server.process.wait(), STOP_GRACE_S)
        except TimeoutError:
            log.warning("vLLM (%s) ignored SIGTERM: killing it", server.launch.role)
        # Workers (tensor parallel ranks, helpers) may outlive the API process: the group
        # goes too, and the launcher returns only once it is gone.
        _signal_group(server.pid, signal.SIGKILL)
        if server.process.returncode is None:
            await server.process.wait()
        await _group_gone(server.pid)


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
