"""The embedded model's vLLM server (``iquest-lsp demo``), and the test suite's and
benchmarks' servers: a local model folder served on this machine's CPU.

Started, waited for and stopped by the project's one launcher (engine.deploy.launcher), with
the command line every server of the project has (engine.deploy.command)."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from engine.deploy.command import openai_server_argv
from engine.deploy.launcher import (
    ServerExited,
    free_port,
    log_tail,
    spawn,
    stop_processes,
    wait_healthy,
)

log = logging.getLogger(__name__)

__all__ = ["LocalVllmServer", "LocalVllmSpec", "free_port"]

# The CPU server stops in a second or two; a test session stops several.
STOP_GRACE_S = 20.0


@dataclass(frozen=True)
class LocalVllmSpec:
    model_dir: Path
    served_model_name: str
    work_dir: Path
    port: int = 0
    max_model_len: int = 4096
    kv_cache_gib: int = 1
    block_size: int | None = None
    dtype: str = "auto"
    extra_args: tuple[str, ...] = ()
    # More environment for the server (e.g. VLLM_SERVER_DEV_MODE for /server_info).
    extra_env: tuple[tuple[str, str], ...] = ()
    python: str = field(default=sys.executable)


class LocalVllmServer:
    def __init__(self, spec: LocalVllmSpec) -> None:
        self.spec = spec
        self.port = spec.port or free_port()
        self.log_path = spec.work_dir / f"vllm-{self.port}.log"
        self._process: asyncio.subprocess.Process | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        spec = self.spec
        command = openai_server_argv(
            spec.python,
            str(spec.model_dir),
            spec.served_model_name,
            "127.0.0.1",
            self.port,
            spec.max_model_len,
        )
        command += ["--dtype", spec.dtype]
        if spec.block_size:
            command += ["--block-size", str(spec.block_size)]
        return command + list(spec.extra_args)

    def environment(self) -> dict[str, str]:
        tmp = self.spec.work_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return {
            **os.environ,
            # Nothing may come from a model hub: the model is a local folder.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
            "VLLM_CPU_KVCACHE_SPACE": str(self.spec.kv_cache_gib),
            # One process instead of an engine-core child: healthy in about half the time.
            "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_HOST_IP": "127.0.0.1",
            # vLLM leaves vllm_dist_* files in TMPDIR.
            "TMPDIR": str(tmp),
            **dict(self.spec.extra_env),
        }

    async def start(self, timeout_s: float = 300.0) -> None:
        self.spec.work_dir.mkdir(parents=True, exist_ok=True)
        log.info("starting vLLM: %s", " ".join(self.command()))
        self._process = await spawn(self.command(), self.environment(), self.log_path)
        await self._wait_healthy(timeout_s)

    async def _wait_healthy(self, timeout_s: float) -> None:
        assert self._process is not None
        try:
            await wait_healthy(self._process, self.root_url, timeout_s, poll_s=0.5)
        except ServerExited as exited:
            raise RuntimeError(
                f"vLLM exited with {exited.returncode}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            ) from None
        except TimeoutError:
            await self.stop()
            raise TimeoutError(
                f"vLLM not healthy after {timeout_s:.0f} s; see {self.log_path}:\n{self.log_tail()}"
            ) from None

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            await stop_processes([(self.spec.served_model_name, process)], STOP_GRACE_S)
