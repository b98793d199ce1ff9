"""``iquest-lsp vllm``: the sizing arithmetic against hand-computed values, the dry run for the
IQuest-Coder-V1 shapes on H100 / H200 / 2 x H200, bad input, and (real vLLM CPU build) a
launch the daemon completes against, that doctor checks and that Ctrl-C stops completely."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

from engine.config import LaunchProfile
from engine.deploy.hardware import GIB, Gpu, Hardware, parse_nvidia_smi
from engine.deploy.model_shape import read_shape
from engine.deploy.profiles import builtin_profiles
from engine.deploy.sizing import SizingError, overhead_bytes, plan_server
from engine.local.vllm_process import free_port
from tests.support.lsp_session import (
    REPO,
    end_position,
    inline_completion,
    items_of,
    lsp_session,
    open_document,
)

# IQuest-Coder-V1's dense shapes (Llama architecture; notes/vllm-and-models.md).
LAYERS = {"7B": 14, "14B": 28, "40B": 80}
H100 = 81559  # MiB, as nvidia-smi reports an H100 80GB HBM3
H200 = 143771  # MiB, an H200


def iquest_shape(folder: Path, size: str, **extra: object) -> Path:
    model = folder / f"IQuest-Coder-V1-{size}-Instruct"
    model.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": 5120,
        "intermediate_size": 27648,
        "num_hidden_layers": LAYERS[size],
        "num_attention_heads": 40,
        "num_key_value_heads": 8,
        "head_dim": 128,
        "vocab_size": 76800,
        "max_position_embeddings": 131072,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        **extra,
    }
    (model / "config.json").write_text(json.dumps(config))
    return model


def gpus(count: int, mib: int) -> Hardware:
    return Hardware(tuple(Gpu(i, "H", mib * 1024**2) for i in range(count)))


def completion() -> LaunchProfile:
    return builtin_profiles()["completion"]


def test_the_40b_arithmetic_matches_a_hand_computation(tmp_path: Path):
    shape = read_shape(iquest_shape(tmp_path, "40B"))
    # Per layer: q 5120x5120, k and v 5120x1024 each, o 5120x5120, MLP 3 x 5120x27648.
    per_layer = 26_214_400 + 2 * 5_242_880 + 26_214_400 + 424_673_280
    assert shape.linear_params() == 80 * per_layer == 39_007_027_200
    # Embeddings and an untied output head: 2 x 76,800 x 5,120; norms 2 per layer + 1.
    assert shape.params() == 39_007_027_200 + 786_432_000 + 80 * 2 * 5120 + 5120
    assert shape.weight_bytes() == 2 * 39_794_283_520
    assert shape.kv_bytes_per_token() == 2 * 80 * 8 * 128 * 2 == 327_680  # 320 KiB
    assert shape.kv_bytes_per_token("fp8") == 163_840
    # fp8 online: the layers' matrices at one byte, embeddings and norms at two.
    assert shape.weight_bytes("fp8") == 39_007_027_200 + 2 * (786_432_000 + 824_320)

    overhead = overhead_bytes(shape, 2, 8192, 32)
    # One 8,192-token chunk: (4 x hidden + 2 x 27,648 / 2) x 2 bytes each; 32 x 76,800 float32
    # logits (twice); CUDA's 1.5 GiB and NCCL's 0.5 GiB.
    assert overhead == 8192 * (4 * 5120 + 27648) * 2 + 32 * 76800 * 8 + 2 * GIB

    plan = plan_server(shape, gpus(2, H200), completion())
    assert plan.tp == 2
    budget = int(H200 * 1024**2 * 0.9)
    room = budget - 79_588_567_040 // 2 - overhead
    assert plan.kv_tokens == room * 2 // 327_680
    assert plan.max_num_seqs == 32 and plan.max_model_len == 8192


def test_the_smallest_tensor_parallel_size_that_holds_the_batch_is_chosen(tmp_path: Path):
    seven = read_shape(iquest_shape(tmp_path, "7B"))
    forty = read_shape(iquest_shape(tmp_path, "40B"))
    assert plan_server(seven, gpus(2, H200), completion()).tp == 1
    # One H200: the 40B's weights fit; its KV holds 162,411 tokens: 19 full 8k requests, not 32.
    alone = plan_server(forty, gpus(1, H200), completion())
    assert alone.tp == 1 and alone.max_num_seqs == alone.kv_tokens // 8192 == 19
    assert any("lowered to 19" in reason for reason in alone.reasons)
    assert plan_server(forty, gpus(2, H200), completion()).tp == 2
    # Four H100s: at TP=2 the KV holds 208,854 tokens, under 32 x 8,192: TP=4.
    four = plan_server(forty, gpus(4, H100), completion())
    assert four.tp == 4 and "at TP=2 the KV left (208,854 tokens)" in four.reasons[0]
    with pytest.raises(SizingError, match=r"does not fit even at TP=1.*74\.1 GiB"):
        plan_server(forty, gpus(1, H100), completion())
    with pytest.raises(SizingError, match="--tp 3 does not divide the model's 40 attention"):
        plan_server(forty, gpus(4, H200), completion(), tp=3)
    with pytest.raises(SizingError, match="--tp 4 needs 4 GPUs; 2 are given"):
        plan_server(forty, gpus(2, H200), completion(), tp=4)
    # The KV at fp8 holds twice the tokens: the 40B's batch fits one H200 at TP=1.
    fp8 = plan_server(forty, gpus(1, H200), completion(), kv_cache_dtype="fp8")
    assert fp8.max_num_seqs == 32 and fp8.kv_tokens == pytest.approx(2 * alone.kv_tokens, 0.01)


def test_quantization_flags_only_where_the_checkpoint_or_fp8_asks(tmp_path: Path):
    plain = read_shape(iquest_shape(tmp_path / "plain", "7B"))
    awq = read_shape(
        iquest_shape(
            tmp_path / "awq",
            "7B",
            torch_dtype="float16",
            quantization_config={"quant_method": "awq", "bits": 4, "group_size": 128},
        )
    )
    with pytest.raises(SizingError, match="--quantization awq needs a checkpoint quantized"):
        plan_server(plain, gpus(1, H200), completion(), quantization="awq")
    with pytest.raises(SizingError, match="already awq-quantized"):
        plan_server(awq, gpus(1, H200), completion(), quantization="fp8")
    quantized = plan_server(awq, gpus(1, H200), completion(), quantization="awq")
    # 4-bit layers with a scale per group (3% more); embeddings and norms stay 16-bit.
    linear = 14 * (26_214_400 + 2 * 5_242_880 + 26_214_400 + 424_673_280)
    other = 786_432_000 + 14 * 2 * 5120 + 5120
    assert quantized.weight_bytes == int(linear * 0.5 * 1.03 + other * 2)
    assert plain.weight_bytes() == 2 * (linear + other)


def test_nvidia_smi_lines_are_read(tmp_path: Path):
    listed = parse_nvidia_smi(
        "0, NVIDIA H200, 143771\n1, NVIDIA H200, 143771\nNo devices were found\n"
    )
    assert [(g.index, g.name, g.memory_bytes) for g in listed] == [
        (0, "NVIDIA H200", 143771 * 1024**2),
        (1, "NVIDIA H200", 143771 * 1024**2),
    ]


def vllm_cli(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    import subprocess

    done = subprocess.run(
        [sys.executable, "-m", "lsp", "vllm", *args],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize(
    ("size", "devices", "mib", "tp"),
    [
        ("7B", "0", H100, 1),
        ("7B", "0", H200, 1),
        ("14B", "0", H100, 1),
        ("14B", "0,1", H200, 1),
        ("40B", "0", H200, 1),
        ("40B", "0,1", H200, 2),
    ],
)
def test_dry_run_prints_the_plan_and_the_command(
    tmp_path: Path, size: str, devices: str, mib: int, tp: int
):
    model = iquest_shape(tmp_path, size)
    code, out, err = vllm_cli(
        *("--model", str(model), "--gpus", devices, "--gpu-memory", str(mib / 1024)),
        *("--port", "8100", "--dry-run", "--", "--load-format", "dummy"),
    )
    assert code == 0, err
    [command] = [line for line in out.splitlines() if "vllm.entrypoints.openai" in line]
    assert f"--tensor-parallel-size {tp}" in command
    assert f"CUDA_VISIBLE_DEVICES={','.join(devices.split(',')[:tp])} " in command
    for flag in (
        "--enable-prefix-caching",
        "--enable-prompt-tokens-details",
        "--scheduling-policy priority",
        f"--served-model-name IQuest-Coder-V1-{size}-Instruct",
        "--max-model-len 8192",
        "--port 8100",
    ):
        assert flag in command
    assert command.endswith("--load-format dummy")
    assert "--quantization" not in command and "--reasoning-parser" not in command
    kv = re.search(r"KV cache +([\d,]+) tokens = (\d+) full 8,192-token requests", out)
    assert kv, out
    seqs = int(re.search(r"--max-num-seqs (\d+)", command).group(1))
    assert seqs == min(32, int(kv.group(1).replace(",", "")) // 8192)
    assert f"max_num_seqs = {seqs}" in out  # the daemon's settings, to paste
    assert 'base_url = "http://127.0.0.1:8100/v1"' in out
    assert f"{LAYERS[size]} layers x 8 KV heads x 128 x 2 bytes" in out


def test_both_roles_split_the_gpus_and_name_both_endpoints(tmp_path: Path):
    instruct = iquest_shape(tmp_path / "i", "7B")
    thinking = iquest_shape(tmp_path / "t", "14B")
    code, out, err = vllm_cli(
        *("--model", str(instruct), "--role", "both", "--reasoning-model", str(thinking)),
        *("--gpus", "0,1", "--gpu-memory", "140", "--dry-run"),
    )
    assert code == 0, err
    commands = [line for line in out.splitlines() if "vllm.entrypoints.openai" in line]
    assert len(commands) == 2
    assert commands[0].startswith("CUDA_VISIBLE_DEVICES=0 ") and "--port 8000" in commands[0]
    assert commands[1].startswith("CUDA_VISIBLE_DEVICES=1 ") and "--port 8001" in commands[1]
    assert "--reasoning-parser qwen3" in commands[1]
    assert "--max-model-len 32768" in commands[1]  # the reasoning server's agent profile
    assert "[instruct]" in out and "[reasoning]" in out
    # One GPU: both share it by memory fraction.
    code, out, _ = vllm_cli(
        *("--model", str(instruct), "--role", "both", "--reasoning-model", str(thinking)),
        *("--gpus", "0", "--gpu-memory", "140", "--dry-run"),
    )
    shared = [line for line in out.splitlines() if "vllm.entrypoints.openai" in line]
    assert code == 0 and all("--gpu-memory-utilization 0.45" in line for line in shared)


def test_bad_input_gets_a_clear_error_and_starts_nothing(tmp_path: Path):
    model = iquest_shape(tmp_path, "40B")
    empty = tmp_path / "no-config"
    empty.mkdir()
    cases = [
        (("--model", str(model), "--profile", "huge"), "unknown profile 'huge'"),
        (("--model", str(empty)), "has no config.json"),
        (("--model", str(model), "--tp", "3", "--gpus", "0,1,2,3"), "does not divide"),
        (("--model", str(model), "--gpus", "0"), "does not fit even at TP=1"),
        (("--model", "IQuestLab/Not-Downloaded"), "not in the local Hugging Face cache"),
        (("--model", str(model), "--gpus", "zero"), "give indices like 0,1"),
    ]
    for args, message in cases:
        code, out, err = vllm_cli(
            *args, "--gpu-memory", "80", env={"HF_HUB_CACHE": str(tmp_path / "hf")}
        )
        assert code == 2, (args, out, err)
        assert message in err, (args, err)
        assert "vllm.entrypoints" not in out


def test_a_hub_id_is_read_from_the_local_cache_and_profiles_come_from_the_config(tmp_path: Path):
    cache = tmp_path / "hf"
    snapshot = cache / "models--IQuestLab--IQuest-Coder-V1-7B-Instruct" / "snapshots" / "abc123"
    iquest_shape(snapshot.parent, "7B").rename(snapshot)
    (cache / "models--IQuestLab--IQuest-Coder-V1-7B-Instruct" / "refs").mkdir()
    (cache / "models--IQuestLab--IQuest-Coder-V1-7B-Instruct" / "refs" / "main").write_text(
        "abc123"
    )
    config = tmp_path / "config.toml"
    config.write_text("[profiles.pairing]\nmax_model_len = 16384\nmax_num_seqs = 6\n")
    code, out, err = vllm_cli(
        *("--model", "IQuestLab/IQuest-Coder-V1-7B-Instruct", "--profile", "pairing"),
        *("--gpu-memory", "80", "--dry-run"),
        env={"HF_HUB_CACHE": str(cache), "IQUEST_CONFIG": str(config)},
    )
    assert code == 0, err
    assert f"--model {snapshot}" in out
    assert "--served-model-name IQuestLab/IQuest-Coder-V1-7B-Instruct" in out
    assert "--max-model-len 16384 " in out and "--max-num-seqs 6 " in out


async def test_a_launch_serves_the_daemon_doctor_checks_it_and_ctrl_c_stops_it(
    tiny_model_dir: Path, tmp_path: Path
):
    port = free_port()
    launcher = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "lsp", "vllm", "--model", str(tiny_model_dir)),
        *("--device", "cpu", "--gpu-memory", "0.25", "--profile", "completion"),
        *("--port", str(port), "--log-dir", str(tmp_path / "logs")),
        # Passed through to vLLM: a server that forgot prefix caching, for doctor to find.
        *("--", "--block-size", "32", "--no-enable-prefix-caching", "--enforce-eager"),
        cwd=REPO,
        env={
            **os.environ,
            "PYTHONPATH": str(REPO),
            "IQUEST_CONFIG": str(tmp_path / "absent.toml"),
            # vLLM's CPU build, as the test server runs it (one process: a quicker start).
            "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
            "VLLM_HOST_IP": "127.0.0.1",
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert launcher.stdout is not None
    lines: list[str] = []
    try:
        while not lines or not lines[-1].startswith("ready"):
            line = (await asyncio.wait_for(launcher.stdout.readline(), 300)).decode()
            assert line, "the launcher ended early:\n" + "".join(lines)
            lines.append(line.rstrip("\n"))
        text = "\n".join(lines)
        assert "--kv-cache-memory-bytes 268435456" in text
        pid = int(re.search(r"ready at \S+, pid (\d+)", text).group(1))
        assert re.search(
            r"KV cache: vLLM allocated [\d,]+ tokens; the plan counted [\d,]+ \(", text
        )

        base_url = f"http://127.0.0.1:{port}/v1"
        endpoint = {"base_url": base_url, "model": tiny_model_dir.name}
        uri = (tmp_path / "w.py").as_uri()
        source = "def total(values):\n    return "
        options = {"instruct": endpoint, "completion": {"debounce_ms": 0, "temperature": 0.0}}
        async with lsp_session(options, tmp_path) as client:
            open_document(client, uri, source)
            assert items_of(await inline_completion(client, uri, end_position(source)))

        config = tmp_path / "daemon.toml"
        config.write_text(
            f'[instruct]\nbase_url = "{base_url}"\nmodel = "{tiny_model_dir.name}"\n'
            "max_num_seqs = 32\n"
            '[completion]\ntemplate = "qwen"\n'
        )
        doctor = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "lsp", "--config", str(config), "doctor"),
            *("--profile", "completion", "--editors", "500"),
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        report = (await asyncio.wait_for(doctor.communicate(), 60))[0].decode()
        assert doctor.returncode == 1, report
        assert "[FAIL] prefix caching: OFF: start vLLM with --enable-prefix-caching" in report
        assert "[ok  ] context length: 8,192 tokens" in report
        # The launcher started it with --scheduling-policy priority: doctor knows (issue 25).
        assert "[ok  ] priority scheduling: on" in report, report
        assert re.search(r"\[ok  \] KV cache: [\d,]+ tokens \([\d,]+ blocks of 32\)", report)
        # 32 sequences are too few for 500 editors: said with what to run instead.
        assert re.search(
            r"\[FAIL\] sequences for editors: .*32 serves ~\d+ editors, fewer than 500: .*"
            r"iquest-lsp vllm --editors 500",
            report,
        ), report
    finally:
        launcher.send_signal(signal.SIGINT)
        tail = (await asyncio.wait_for(launcher.stdout.read(), 60)).decode()
        await asyncio.wait_for(launcher.wait(), 60)
    assert launcher.returncode == 0, tail
    assert "vLLM stopped" in tail
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing of its process group either


def test_the_printed_daemon_config_is_toml_whatever_the_model_folder_is_called(tmp_path: Path):
    """A folder named with a quote and a line break injected an ``api_key_env`` line into the
    printed config.toml (issue 23): it is written by a TOML writer."""
    import tomllib

    model = iquest_shape(tmp_path, "7B")
    hostile = model.parent / 'Coder"\napi_key_env = "HOME'
    model.rename(hostile)
    code, out, err = vllm_cli(
        *("--model", str(hostile), "--gpus", "0", "--gpu-memory", str(H200 / 1024)),
        *("--port", "8100", "--dry-run"),
    )
    assert code == 0, err
    settings = tomllib.loads(out.split("# the daemon's settings (config.toml):\n", 1)[1])
    assert set(settings) == {"instruct"}
    assert set(settings["instruct"]) == {"base_url", "model", "max_num_seqs"}
    assert settings["instruct"]["model"] == hostile.name


def test_the_first_hour_outputs_of_the_plan_read_right(tmp_path: Path):
    """Issue 25: the KV comparison read backwards ("planned 23,301 (-50.0%)"), a CPU plan
    lowered --max-num-seqs below the profile's minimum, and --gpus on a machine without GPUs
    planned for the CPU without a word."""
    from engine.deploy.hardware import Hardware
    from engine.deploy.launcher import KvCheck

    assert KvCheck(23_301, 46_592).describe() == (
        "KV cache: vLLM allocated 46,592 tokens; the plan counted 23,301 (50.0% less than vLLM's)"
    )
    assert "1.1% more than vLLM's" in KvCheck(10_110, 10_000).describe()
    seven = read_shape(iquest_shape(tmp_path, "7B"))
    profile = completion()
    small_cpu = Hardware((), 2 * seven.kv_bytes_per_token() * 8192 + 1)  # two full requests
    plan = plan_server(seven, small_cpu, profile)
    assert plan.max_num_seqs == profile.min_num_seqs == 8
    assert any("kept at the profile's minimum 8" in reason for reason in plan.reasons)
    if shutil.which("nvidia-smi") is None:
        code, _, err = vllm_cli("--model", str(iquest_shape(tmp_path, "14B")), "--gpus", "0,1")
        assert code == 2 and "nvidia-smi lists no GPU" in err and "Traceback" not in err


def test_editors_size_the_sequence_limit_and_the_plan_says_so(tmp_path: Path):
    from engine.deploy.editors import editors_served, sequences_for

    model = iquest_shape(tmp_path, "7B")
    limits = {}
    for editors in (20, 200):
        code, out, err = vllm_cli(
            *("--model", str(model), "--editors", str(editors)),
            *("--gpus", "0", "--gpu-memory", "140", "--dry-run"),
        )
        assert code == 0, err
        command = next(line for line in out.splitlines() if "vllm.entrypoints.openai" in line)
        limits[editors] = int(re.search(r"--max-num-seqs (\d+)", command).group(1))
        assert f"sized for {editors} editors" in out
        assert f"max_num_seqs = {limits[editors]}" in out  # the daemon is told the same
    assert limits[20] == sequences_for(20).max_num_seqs and limits[20] % 8 == 0
    assert limits[200] > limits[20]
    # The sizing and its inverse agree: the limit serves at least the editors asked for.
    assert editors_served(sequences_for(200).max_num_seqs) >= 200
    code, _, err = vllm_cli("--model", str(model), "--editors", "0", "--dry-run")
    assert code == 2 and "--editors 0" in err and "Traceback" not in err
