"""The devices a server will run on: GPUs as ``nvidia-smi`` lists them (or as the user says),
or vLLM's CPU build."""

from __future__ import annotations

import asyncio
import logging
import shutil
from dataclasses import dataclass

log = logging.getLogger(__name__)

GIB = 1024**3


class HardwareError(ValueError):
    pass


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_bytes: int


@dataclass(frozen=True)
class Hardware:
    """GPUs to use, or none for vLLM's CPU build (then ``kv_space_bytes`` is its KV cache)."""

    gpus: tuple[Gpu, ...]
    kv_space_bytes: int = 0

    @property
    def cpu(self) -> bool:
        return not self.gpus

    @property
    def memory_bytes(self) -> int:
        """Memory of the smallest GPU (vLLM sizes every rank alike)."""
        return min(g.memory_bytes for g in self.gpus)

    def describe(self) -> str:
        if self.cpu:
            return f"CPU (vLLM's CPU build), KV cache space {self.kv_space_bytes / GIB:.2f} GiB"
        names = sorted({g.name for g in self.gpus})
        indices = ",".join(str(g.index) for g in self.gpus)
        return (
            f"{len(self.gpus)} x {' / '.join(names)}, "
            f"{self.memory_bytes / GIB:.1f} GiB each (GPUs {indices})"
        )

    def split(self) -> tuple[Hardware, Hardware]:
        """Two servers side by side: half the GPUs each."""
        half = len(self.gpus) // 2
        return Hardware(self.gpus[:half]), Hardware(self.gpus[half:])


async def list_gpus() -> list[Gpu]:
    """What ``nvidia-smi`` reports; empty where there is none (or it fails)."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return []
    process = await asyncio.create_subprocess_exec(
        binary,
        "--query-gpu=index,name,memory.total",
        "--format=csv,noheader,nounits",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        log.info("nvidia-smi failed (%s): no GPUs listed", process.returncode)
        return []
    return parse_nvidia_smi(out.decode(errors="replace"))


def parse_nvidia_smi(text: str) -> list[Gpu]:
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 3 or not parts[0].isdigit():
            continue
        try:
            mib = float(parts[2])
        except ValueError:
            continue
        gpus.append(Gpu(int(parts[0]), parts[1], int(mib * 1024**2)))
    return gpus


def choose_hardware(
    listed: list[Gpu],
    device: str,
    wanted: tuple[int, ...] | None,
    memory_gib: float | None,
) -> Hardware:
    """``device`` auto/cuda/cpu; ``wanted``: GPU indices (``--gpus``); ``memory_gib``: each
    GPU's memory as the user says it (``--gpu-memory``), or the CPU build's KV space."""
    if device == "cpu" or (device == "auto" and not listed and memory_gib is None):
        return Hardware((), int((memory_gib or 1.0) * GIB))
    if memory_gib is not None:
        indices = wanted if wanted is not None else tuple(g.index for g in listed) or (0,)
        names = {g.index: g.name for g in listed}
        return Hardware(tuple(Gpu(i, names.get(i, "GPU"), int(memory_gib * GIB)) for i in indices))
    if not listed:
        raise HardwareError(
            "no GPU found (nvidia-smi lists none): say each GPU's memory with --gpu-memory GIB, "
            "or use --device cpu for vLLM's CPU build"
        )
    if wanted is None:
        return Hardware(tuple(listed))
    by_index = {g.index: g for g in listed}
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise HardwareError(
            f"GPU {', '.join(map(str, missing))} not found (nvidia-smi lists "
            f"{', '.join(str(g.index) for g in listed)})"
        )
    return Hardware(tuple(by_index[i] for i in wanted))
