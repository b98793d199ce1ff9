"""Session fixtures: a tiny random model, served by a real vLLM (CPU build) on loopback."""

from __future__ import annotations

import asyncio
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


# A second replica of the test server for the router tests, started beside the first when
# any collected test asks for it (two starting together take ~40 s on two cores, one ~36 s).
_SECOND_REPLICA: dict[str, LocalVllmServer] = {}


@pytest.fixture(scope="session")
async def vllm(
    request: pytest.FixtureRequest,
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[VllmEndpoint]:
    # For quick local iterations, point at a tiny-model server already running.
    reuse = os.environ.get("IQUEST_TEST_VLLM_ROOT")
    if reuse:
        yield VllmEndpoint(
            f"{reuse}/v1", reuse, os.environ.get("IQUEST_TEST_VLLM_MODEL", TINY_MODEL_NAME)
        )
        return
    server = _test_server(tiny_model_dir, tmp_path_factory)
    starting = [server]
    if any("vllm_second" in item.fixturenames for item in request.session.items):
        _SECOND_REPLICA["server"] = _test_server(tiny_model_dir, tmp_path_factory)
        starting.append(_SECOND_REPLICA["server"])
    await asyncio.gather(*(each.start(timeout_s=300) for each in starting))
    try:
        yield VllmEndpoint(server.base_url, server.root_url, TINY_MODEL_NAME)
    finally:
        await asyncio.gather(*(each.stop() for each in starting))


@pytest.fixture(scope="session")
async def vllm_second(vllm: VllmEndpoint) -> VllmEndpoint:
    """Another replica of ``vllm`` (same model, same flags), for tests of routers."""
    server = _SECOND_REPLICA.get("server")
    if server is None:
        pytest.skip("no second replica (IQUEST_TEST_VLLM_ROOT points at one server)")
    return VllmEndpoint(server.base_url, server.root_url, TINY_MODEL_NAME)


def _test_server(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> LocalVllmServer:
    return LocalVllmServer(
        LocalVllmSpec(
            model_dir=model_dir,
            served_model_name=TINY_MODEL_NAME,
            work_dir=tmp_path_factory.mktemp("vllm"),
            # Long enough that a cancelled stream is still running when the cancel lands, even
            # on two busy cores: the cancellation tests ask for 20,000 tokens.
            max_model_len=24576,
            block_size=32,
            extra_args=(
                "--kv-cache-memory-bytes",
                "256M",
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
