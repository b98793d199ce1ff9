"""Session fixtures: a tiny random model, served by a real vLLM (CPU build) on loopback."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from engine.local.vllm_process import LocalVllmServer, LocalVllmSpec
from tests.support.tiny_model import build_tiny_model

TINY_MODEL_NAME = "tiny-qwen2.5-coder"


@dataclass(frozen=True)
class VllmEndpoint:
    base_url: str
    root_url: str
    model: str


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
async def vllm(
    tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[VllmEndpoint]:
    # For quick local iterations, point at a tiny-model server already running.
    reuse = os.environ.get("IQUEST_TEST_VLLM_ROOT")
    if reuse:
        yield VllmEndpoint(
            f"{reuse}/v1", reuse, os.environ.get("IQUEST_TEST_VLLM_MODEL", TINY_MODEL_NAME)
        )
        return
    server = LocalVllmServer(
        LocalVllmSpec(
            model_dir=tiny_model_dir,
            served_model_name=TINY_MODEL_NAME,
            work_dir=tmp_path_factory.mktemp("vllm"),
            # Long enough that a cancelled stream is still running when the cancel lands, even
            # on two busy cores: the cancellation tests ask for 20,000 tokens.
            max_model_len=24576,
            block_size=32,
            extra_args=(
                "--kv-cache-memory-bytes",
                "256M",
                "--scheduling-policy",
                "priority",
                # Random weights under a JSON grammar emit whitespace forever otherwise.
                "--structured-outputs-config",
                '{"backend": "xgrammar", "disable_any_whitespace": true}',
                # Said at /server_info (dev mode): the actions' budget is derived from it.
                "--max-num-seqs",
                "64",
                # No graph compilation: healthy in half the time (36 s instead of 71 on two
                # cores), for a model this small no slower to serve.
                "--enforce-eager",
            ),
            extra_env=(("VLLM_SERVER_DEV_MODE", "1"),),
        )
    )
    await server.start(timeout_s=300)
    try:
        yield VllmEndpoint(server.base_url, server.root_url, TINY_MODEL_NAME)
    finally:
        await server.stop()
